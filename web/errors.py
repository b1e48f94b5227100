"""How errors reach their client: problem details under /api, else an error page or its partial."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE

from domain.errors import DomainError
from store.database import UNAVAILABLE, DatabaseUnavailable
from web.access import login_url
from web.api import problems as api_problems
from web.refusals import status_of

MAX_BODY_BYTES = 64 * 1024

# The pages' titles for HTTP's errors; the API's problems use HTTP's own phrases.
PAGE_TITLES = {
    400: "Bad request",
    401: "Sign in",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    429: "Too many requests",
}


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if exc.status_code == 401:
        return not_signed_in(request, exc.detail)
    detail = exc.detail
    if exc.status_code == 413:
        detail = (
            api_problems.too_large(request)
            if _for_api(request)
            else f"The request is larger than {MAX_BODY_BYTES // 1024} KiB."
        )
    title = PAGE_TITLES.get(exc.status_code, "Error")
    return _error(request, exc.status_code, title, detail, exc.headers)


def not_signed_in(request: Request[Any, Any, Any], detail: str) -> Response[Any]:
    """Nobody known: a program (the API, or a bearer token sent anywhere) is told how to
    authenticate, a person is sent to sign in."""
    if _for_api(request) or request.headers.get("authorization", "").lower().startswith("bearer "):
        problem = api_problems.http_problem(401, "Send an API token: Authorization: Bearer <token>.")
        return api_problems.respond(request, problem, {"WWW-Authenticate": 'Bearer realm="orders"'})
    url = login_url(request.url.path, request.url.query)
    if getattr(request, "htmx", False):
        # htmx follows HX-Redirect with a full page load, rather than swapping the sign-in page in.
        return Response(None, status_code=401, headers={"HX-Redirect": url})
    return Redirect(url, status_code=303)


def refused(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    """A refusal no handler answered itself (most often: no such order or version)."""
    if _for_api(request):
        return api_problems.respond(request, api_problems.refused(exc))
    status = status_of(exc)
    return _error(request, status, PAGE_TITLES.get(status, "Refused"), exc.message)


def database_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    detail = "The database is not answering right now. Nothing was changed; try again in a few seconds."
    return _error(request, HTTP_503_SERVICE_UNAVAILABLE, "Database unavailable", detail, {"Retry-After": "5"})


def server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    request.logger.exception("unhandled error on %s %s", request.method, request.url.path)
    detail = "The server failed to answer. The error has been logged."
    return _error(request, HTTP_500_INTERNAL_SERVER_ERROR, "Something went wrong", detail)


def _for_api(request: Request[Any, Any, Any]) -> bool:
    return request.url.path == "/api" or request.url.path.startswith("/api/")


def _error(
    request: Request[Any, Any, Any],
    status: int,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> Response[Any]:
    """An error as its client reads it: problem details under /api (unknown API paths and methods
    too), else an error page, or its partial for htmx."""
    if _for_api(request):
        return api_problems.respond(request, api_problems.http_problem(status, detail), headers)
    headers = {"Retry-After": "5"} if status == HTTP_503_SERVICE_UNAVAILABLE else dict(headers or {})
    return Template(
        template_name="_error.html" if getattr(request, "htmx", False) else "error.html",
        context={"status": status, "title": title, "detail": detail},
        status_code=status,
        headers=headers,
    )


EXCEPTION_HANDLERS: Mapping[Any, Any] = {
    HTTPException: http_error,
    DomainError: refused,
    DatabaseUnavailable: database_unavailable,
    **{error: database_unavailable for error in UNAVAILABLE},
    Exception: server_error,
}
