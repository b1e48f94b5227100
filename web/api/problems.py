"""RFC 9457 problem details: every refusal of the JSON API, with the messages the pages show."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from domain.access import Forbidden
from domain.errors import DomainError, NotFound
from web import forms
from web.api import explain
from web.forms import FormError
from web.refusals import status_of

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:orders:problem:"


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    """A problem detail (RFC 9457); `errors` names the offending fields."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] = []
    current_version: int | None = None


class ApiProblem(Exception):
    def __init__(self, problem: Problem, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.headers = dict(headers or {})


# RFC 9110's names where Python's http module still has the older ones.
TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


def title(status: int) -> str:
    return TITLES.get(status) or HTTPStatus(status).phrase


def http_problem(status: int, detail: str, **extra: Any) -> ApiProblem:
    """A problem that HTTP's own status says all about (type about:blank)."""
    return ApiProblem(Problem("about:blank", title(status), status, detail, **extra))


def invalid(status: int, errors: list[FieldError]) -> ApiProblem:
    detail = " ".join(e.message if e.message.endswith(".") else f"{e.message}." for e in errors)
    heading = "The request has invalid fields"
    return ApiProblem(Problem(f"{TYPE_PREFIX}invalid-request", heading, status, detail, errors=errors))


# What a refusal's status means, as its problem's title (web/refusals.py decides the status).
REFUSAL_TITLES = {
    422: "The order's rules refuse this value",
    409: "The order's current state refuses this command",
}


def refused(error: DomainError, field: str | None = None) -> ApiProblem:
    """A domain refusal as a problem, in the domain's words; its type is named after the error."""
    status = status_of(error)
    if isinstance(error, NotFound | Forbidden):
        return http_problem(status, error.message)
    kind = re.sub(r"(?<!^)(?=[A-Z])", "-", type(error).__name__).lower()
    named = field or error.field
    errors = [FieldError(explain.API_FIELDS.get(named, named), error.message)] if named else []
    problem = Problem(f"{TYPE_PREFIX}{kind}", REFUSAL_TITLES[status], status, error.message, errors=errors)
    return ApiProblem(problem)


def stale(expected: int, actual: int, *, precondition: bool) -> ApiProblem:
    """The order moved on: 412 for If-Match, 409 for expected_version in the body."""
    detail = (
        f"This order changed: the request expected version {expected}, it is now at version {actual}. "
        "Nothing was changed; read the order again and decide anew."
    )
    if precondition:
        return http_problem(412, detail, current_version=actual)
    problem = Problem(f"{TYPE_PREFIX}stale-version", "The order changed", 409, detail, current_version=actual)
    return ApiProblem(problem)


def responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The problem answers an operation documents."""
    return {
        status: ResponseSpec(
            Problem, description=title(status), media_type=PROBLEM_JSON, generate_examples=False
        )
        for status in statuses
    }


# -------------------------------------------------------- exception handlers

# Query, path and header values that Litestar refuses are explained again by
# the parser the pages use, so both say the same thing.
EXPLAIN_PARAMETERS: dict[str, Callable[[str], object]] = {
    "version": forms.parse_version,
    "at": forms.parse_moment,
    "quantity": explain.quantity,
    "sku": explain.sku,
}
PARAMETER_MESSAGES = {
    "Idempotency-Key": "The Idempotency-Key header is 1 to 255 visible ASCII characters, such as a UUID.",
    "after": "after takes the next_after of the page before.",
    "limit": "The limit is a whole number within the bounds the API documents.",
    "status": "The status is draft, placed or cancelled.",
    "at": "The moment is an ISO 8601 date and time, such as 2026-11-28T09:30:00+01:00.",
}
HEADERS = {"idempotency_key": "Idempotency-Key", "if_match": "If-Match", "if_none_match": "If-None-Match"}


def _parameter_error(request: Request[Any, Any, Any], item: Mapping[str, Any]) -> FieldError:
    key, message = str(item.get("key", "")), str(item.get("message", "Invalid value"))
    name = HEADERS.get(key, key)
    if key in HEADERS:
        raw = request.headers.get(name)
    elif key in request.path_params:
        raw = str(request.path_params[key])
    else:
        raw = request.query_params.get(key)
    explain_value = EXPLAIN_PARAMETERS.get(name)
    if explain_value is not None and raw is not None:
        try:
            explain_value(raw)
        except (DomainError, FormError) as error:
            return FieldError(name, error.message)
    return FieldError(name, PARAMETER_MESSAGES.get(name, message))


def respond(
    request: Request[Any, Any, Any], exc: ApiProblem, headers: Mapping[str, str] | None = None
) -> Response[Problem]:
    problem = msgspec.structs.replace(exc.problem, instance=request.url.path)
    headers = {**exc.headers, **(headers or {})}
    return Response(problem, status_code=problem.status, media_type=PROBLEM_JSON, headers=headers)


def on_invalid_parameters(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Problem]:
    items = exc.extra if isinstance(exc.extra, list) else []
    errors = [_parameter_error(request, item) for item in items if isinstance(item, Mapping)]
    if not errors:
        return respond(request, http_problem(400, exc.detail))
    return respond(request, invalid(400, errors))


def too_large(request: Request[Any, Any, Any]) -> str:
    limit = request.route_handler.resolve_request_max_body_size() or 0
    return f"The request body is larger than {limit // 1024} KiB."


# HTTP's own errors, a database that does not answer and unexpected errors are
# answered by the app's handlers (web/app.py), as problems under /api.
EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ApiProblem: respond,
    ValidationException: on_invalid_parameters,
}
