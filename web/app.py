"""The Litestar application: pool and store on start-up, routes, templates, security."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.plugins.htmx import HTMXPlugin, HTMXRequest
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE
from litestar.template.config import TemplateConfig

from domain.errors import DomainError
from store.application import Orders
from store.database import UNAVAILABLE, DatabaseUnavailable, connect_pool
from store.log.event_store import EventStore, Notifier
from store.log.live import LiveFeed
from store.log.snapshots import Snapshots, every_from_environment
from store.migrations import migrate
from store.read.projections import PROJECTIONS
from store.read.read_model import ReadModel
from store.read.subscriptions import SubscriptionRunner
from store.workflows.outbox import Sender
from store.workflows.runners import workflow_runners
from web.admin import AdminController
from web.api import api_router
from web.api import problems as api_problems
from web.api.docs import SwaggerUI
from web.customers import CustomerController
from web.events import EventLogController
from web.health import healthz
from web.history import HistoryController, export_log
from web.live import LiveController
from web.notifications import NotificationController, register_workflow_globals
from web.orders import OrderController
from web.presentation import register_filters
from web.ratelimit import RateLimit, WriteLimiter, parse_limit
from web.refusals import status_of
from web.sales import SalesController
from web.security import security_headers

ROOT = Path(__file__).resolve().parent.parent
MAX_BODY_BYTES = 64 * 1024


def create_app(
    database_url: str,
    *,
    csrf_secret: str,
    pool_size: int = 10,
    subscriptions: bool = True,
    write_limit: RateLimit | None = None,
    allowed_hosts: Sequence[str] = (),
    notification_sender: Sender | None = None,
    draft_expiry: float | None = None,
) -> Litestar:
    """The app; `subscriptions` runs this instance's candidates for the subscription runners.

    `write_limit` limits each client's writes (none when None); `allowed_hosts`, when
    given, are the only Host headers answered (as sent, with the port: `localhost:8000`).
    """

    async def open_database(app: Litestar) -> None:
        pool = await connect_pool(database_url, min_size=min(2, pool_size), max_size=pool_size)
        async with pool.acquire() as conn:
            await migrate(conn)
        app.state.pool = pool
        notifier = Notifier(pool)
        app.state.store = EventStore(pool, notifier=notifier)
        app.state.read_model = ReadModel(pool)
        app.state.snapshots = Snapshots(pool, app.state.store, every=every_from_environment())
        app.state.orders = Orders(pool, snapshot_every=every_from_environment(), notifier=notifier)
        app.state.feed = LiveFeed(database_url, pool)
        app.state.runners = (
            [SubscriptionRunner(database_url, pool, projection) for projection in PROJECTIONS.values()]
            if subscriptions
            else []
        )
        # The workflows (notifications and their relay, draft expiry): see store/workflows.
        app.state.workflows = (
            workflow_runners(
                database_url, app.state.orders, sender=notification_sender, draft_expiry=draft_expiry
            )
            if subscriptions
            else []
        )
        app.state.rebuilds = set()
        app.state.background = [
            asyncio.create_task(job.run())
            for job in (notifier, app.state.feed, *app.state.runners, *app.state.workflows)
        ]

    async def close_database(app: Litestar) -> None:
        # Also runs after a failed start-up, when open_database set none of these.
        tasks = [*app.state.get("background", []), *app.state.get("rebuilds", [])]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)  # a stuck task must not hold the shutdown
        if "pool" in app.state:
            await app.state.pool.close()

    return Litestar(
        route_handlers=[
            OrderController,
            EventLogController,
            HistoryController,
            export_log,
            LiveController,
            CustomerController,
            SalesController,
            AdminController,
            NotificationController,
            api_router,
            healthz,
            home,
            create_static_files_router(path="/static", directories=[ROOT / "static"]),
        ],
        on_startup=[open_database],
        on_shutdown=[close_database],
        dependencies={
            "store": Provide(_store, sync_to_thread=False),
            "read_model": Provide(_read_model, sync_to_thread=False),
            "feed": Provide(_feed, sync_to_thread=False),
            "snapshots": Provide(_snapshots, sync_to_thread=False),
            "orders": Provide(_orders, sync_to_thread=False),
        },
        template_config=TemplateConfig(
            directory=ROOT / "templates",
            engine=JinjaTemplateEngine,
            engine_callback=_template_functions,
        ),
        csrf_config=CSRFConfig(secret=csrf_secret, cookie_httponly=True, cookie_samesite="strict"),
        plugins=[HTMXPlugin()],
        request_class=HTMXRequest,
        request_max_body_size=MAX_BODY_BYTES,
        before_send=[security_headers],
        guards=[WriteLimiter(write_limit)] if write_limit else [],
        allowed_hosts=AllowedHostsConfig(list(allowed_hosts), www_redirect=False) if allowed_hosts else None,
        # Only the JSON API (web/api) is documented; its router opts back in.
        include_in_schema=False,
        openapi_config=OpenAPIConfig(
            title="Orders API",
            version="1.0.0",
            description="The order service's commands and queries for programs. "
            "Errors are RFC 9457 problem details; an order's version is its ETag.",
            path="/schema",
            render_plugins=[SwaggerUI()],
        ),
        exception_handlers={
            HTTPException: http_error,
            DomainError: refused,
            DatabaseUnavailable: database_unavailable,
            **{error: database_unavailable for error in UNAVAILABLE},
            Exception: server_error,
        },
    )


def app_from_environment() -> Litestar:
    """The factory uvicorn calls in each worker; `orders serve` sets the environment."""
    hosts = [host.strip() for host in os.environ.get("ORDERS_ALLOWED_HOSTS", "").split(",") if host.strip()]
    return create_app(
        os.environ["DATABASE_URL"],
        csrf_secret=os.environ["ORDERS_SECRET"],
        write_limit=parse_limit(os.environ.get("ORDERS_WRITE_LIMIT")),
        allowed_hosts=hosts,
    )


def _template_functions(engine: JinjaTemplateEngine) -> None:
    register_filters(engine)
    register_workflow_globals(engine)


def _store(state: State) -> EventStore:
    store: EventStore = state.store
    return store


def _read_model(state: State) -> ReadModel:
    read_model: ReadModel = state.read_model
    return read_model


def _snapshots(state: State) -> Snapshots:
    snapshots: Snapshots = state.snapshots
    return snapshots


def _orders(state: State) -> Orders:
    orders: Orders = state.orders
    return orders


def _feed(state: State) -> LiveFeed:
    feed: LiveFeed = state.feed
    return feed


@get("/", include_in_schema=False)
async def home() -> Redirect:
    return Redirect("/orders", status_code=303)


# The pages' titles for HTTP's errors; the API's problems use HTTP's own phrases.
PAGE_TITLES = {
    400: "Bad request",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    429: "Too many requests",
}


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    detail = exc.detail
    if exc.status_code == 413:
        detail = (
            api_problems.too_large(request)
            if _for_api(request)
            else f"The request is larger than {MAX_BODY_BYTES // 1024} KiB."
        )
    title = PAGE_TITLES.get(exc.status_code, "Error")
    return _error(request, exc.status_code, title, detail, exc.headers)


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
