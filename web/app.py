"""The Litestar application: pool and store on start-up, routes, templates, security."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Router, get
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.htmx import HTMXPlugin, HTMXRequest
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from domain.access import NOBODY, Actor
from domain.customer import STREAM_PREFIX, is_customer_stream
from store.access.access_log import AccessLog
from store.access.accounts import Accounts
from store.access.sessions import Sessions
from store.access.setup import SetupLinks
from store.access.standby import SessionsOrStandby, TokensOrStandby
from store.access.throttle import Throttle
from store.access.tokens import Tokens
from store.application import Orders
from store.database import connect_pool
from store.log.live import LiveFeed
from store.log.notifier import Notifier
from store.migrations import migrate
from store.operations import Operations
from store.personal import master as master_keys
from store.read.projections import PROJECTIONS
from store.read.subscriptions import SubscriptionRunner
from store.replicas import Replicas
from store.workflows.outbox import Sender
from store.workflows.runners import workflow_runners
from web.access import PUBLIC, authorize, check_every_route_declares_access
from web.admin import AdminController
from web.admin_accounts import AccountsController
from web.admin_parked import ParkedController
from web.admin_tokens import AccessLogController, TokensController
from web.api import api_router
from web.api.docs import SwaggerUI
from web.customers import CustomerController
from web.errors import EXCEPTION_HANDLERS, MAX_BODY_BYTES
from web.events import EventLogController
from web.health import healthz
from web.history import HistoryController, export_log
from web.live import LiveController, draining
from web.logs import logging_config, request_ids
from web.metrics import metrics, sample_now_and_then, worker_stopped
from web.notifications import NotificationController
from web.orders import OrderController
from web.ratelimit import WriteLimiter
from web.read_your_writes import reading_for, remember_write
from web.render_cache import RenderCache, templates_version
from web.sales import SalesController
from web.security import security_headers
from web.settings import Settings
from web.signin import SignIn
from web.templating import configure_templates

ROOT = Path(__file__).resolve().parent.parent
BEARER = SecurityScheme(
    type="http",
    scheme="bearer",
    description="An API token from `orders tokens add NAME --role ROLE` (or the accounts page).",
)


@dataclass(frozen=True)
class Services:
    """What handlers receive by name: each field is a dependency of that name (see `_provide`)."""

    orders: Orders  # every command and query on orders: the application layer
    feed: LiveFeed  # wakes live pages when events are appended (LISTEN/NOTIFY)
    operations: Operations  # health, read models' standing, rebuilds, the last verify run
    accounts: Accounts  # people: names, roles, passwords
    sessions: Sessions  # who is signed in, in the database so every instance agrees
    tokens: Tokens  # programs' API tokens
    throttle: Throttle  # failed sign-ins, counted to refuse guessing
    access_log: AccessLog  # sign-ins, sign-outs, accounts and tokens changed
    setup_links: SetupLinks  # the one-time link that makes the first admin


def _provide(name: str) -> Provide:
    def service(state: State) -> Any:
        return getattr(state.services, name)

    return Provide(service, sync_to_thread=False)


def _orders(state: State, request: Request[Any, Any, Any]) -> Orders:
    """The application layer acting as whoever made this request (the guard found out who)."""
    orders: Orders = state.services.orders
    actor: Actor | None = request.scope.get("actor")  # type: ignore[assignment]
    return reading_for(request, orders.acting_as(actor or NOBODY))


DEPENDENCIES = {field.name: _provide(field.name) for field in fields(Services)} | {
    "orders": Provide(_orders, sync_to_thread=False)
}


def create_app(settings: Settings, *, notification_sender: Sender | None = None) -> Litestar:
    """The app as `settings` describe it; `notification_sender` delivers the outbox (default: a log)."""
    if not settings.database_url or not settings.csrf_secret:
        raise ValueError("create_app needs the settings' database_url and csrf_secret")
    database_url = settings.database_url

    async def open_database(app: Litestar) -> None:
        pool_size = settings.pool_size
        pool = await connect_pool(
            database_url,
            min_size=min(2, pool_size),
            max_size=pool_size,
            role="web",
            limits=settings.session_limits(),
        )
        async with pool.acquire() as conn:
            await migrate(conn)
        app.state.pool = pool
        notifier = Notifier(pool)
        app.state.replicas = replicas = _replicas(settings, pool)
        if replicas:
            await replicas.check()  # reads use them from the first request
        orders = Orders(
            pool,
            snapshot_every=settings.snapshot_every,
            notifier=notifier,
            replicas=replicas,
            master=master_keys.configured(settings.master_key_file, settings.master_secret),
        )
        app.state.runners = (
            [
                SubscriptionRunner(database_url, pool, projection, retry=settings.subscription_retry)
                for projection in PROJECTIONS.values()
            ]
            if settings.subscriptions
            else []
        )
        idle, longest = (
            timedelta(minutes=settings.session_idle_minutes),
            timedelta(hours=settings.session_hours),
        )
        feed = LiveFeed(database_url, pool)
        feed.watchers.append(_forgetting(orders, app.state.render_cache))
        app.state.services = services = Services(
            orders=orders,
            feed=feed,
            operations=Operations(
                pool,
                app.state.runners,
                horizon_warning=settings.horizon_warning_seconds,
                keyring=orders.keyring,
            ),
            accounts=Accounts(pool),
            # With replicas, who is asking is read on one while the primary is down (store/access/standby.py)
            sessions=SessionsOrStandby(pool, replicas, idle=idle, absolute=longest)
            if replicas
            else Sessions(pool, idle=idle, absolute=longest),
            tokens=TokensOrStandby(pool, replicas) if replicas else Tokens(pool),
            throttle=Throttle(pool),
            access_log=AccessLog(pool),
            setup_links=SetupLinks(pool),
        )
        # The workflows (notifications and their relay, draft expiry): see store/workflows.
        app.state.workflows = (
            workflow_runners(
                database_url,
                orders,
                sender=notification_sender,
                draft_expiry=settings.draft_expiry,
                retry=settings.subscription_retry,
                outbox_retry=settings.outbox_retry,
            )
            if settings.subscriptions
            else []
        )
        leaders = [asyncio.create_task(job.run()) for job in (*app.state.runners, *app.state.workflows)]
        jobs: list[Notifier | LiveFeed | Replicas] = [notifier, services.feed]
        jobs += [replicas] if replicas else []
        app.state.background = [
            *(asyncio.create_task(job.run()) for job in jobs),
            *leaders,
            asyncio.create_task(_step_down_when_draining(app, leaders)),
        ]
        app.state.background.append(asyncio.create_task(sample_now_and_then(pool, app.state.render_cache)))

    async def close_database(app: Litestar) -> None:
        # Also runs after a failed start-up, when open_database set none of these.
        services = app.state.get("services")
        tasks = [*app.state.get("background", []), *(services.operations.rebuilds if services else [])]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)  # a stuck task must not hold the shutdown
        if app.state.get("replicas"):
            await app.state.replicas.close()
        if "pool" in app.state:
            await app.state.pool.close()
        worker_stopped(settings.metrics_folder)

    app = Litestar(
        state=State({"metrics_folder": settings.metrics_folder}),
        route_handlers=[
            SignIn,
            OrderController,
            EventLogController,
            HistoryController,
            export_log,
            LiveController,
            CustomerController,
            SalesController,
            AdminController,
            ParkedController,
            AccountsController,
            TokensController,
            AccessLogController,
            NotificationController,
            api_router,
            healthz,
            metrics,
            home,
            create_static_files_router(path="/static", directories=[ROOT / "static"], opt=PUBLIC),
        ],
        on_startup=[open_database],
        middleware=[request_ids],  # web/logs.py: each request's ids, for log lines and events
        logging_config=logging_config(settings.log_format),
        on_shutdown=[close_database],
        dependencies=DEPENDENCIES,
        template_config=TemplateConfig(
            directory=ROOT / "templates",
            engine=JinjaTemplateEngine,
            engine_callback=partial(configure_templates, development=settings.development),
        ),
        csrf_config=CSRFConfig(secret=settings.csrf_secret, cookie_httponly=True, cookie_samesite="strict"),
        plugins=[HTMXPlugin()],
        request_class=HTMXRequest,
        request_max_body_size=MAX_BODY_BYTES,
        before_send=[security_headers, remember_write],
        guards=[authorize, *([WriteLimiter(settings.write_limit)] if settings.write_limit else [])],
        allowed_hosts=(
            AllowedHostsConfig(list(settings.allowed_hosts), www_redirect=False)
            if settings.allowed_hosts
            else None
        ),
        # Only the JSON API (web/api) is documented; its router opts back in.
        include_in_schema=False,
        openapi_config=OpenAPIConfig(
            title="Orders API",
            version="1.0.0",
            description="The order service's commands and queries for programs. "
            "Errors are RFC 9457 problem details; an order's version is its ETag.",
            path="/schema",
            render_plugins=[SwaggerUI()],
            # The document is open to all; what it describes asks for a token.
            openapi_router=Router(path="/schema", route_handlers=[], opt=PUBLIC),
            components=Components(security_schemes={"bearer": BEARER}),
            security=[{"bearer": []}],
        ),
        exception_handlers=dict(EXCEPTION_HANDLERS),
    )
    app.state.render_cache = RenderCache(0 if settings.development else int(settings.page_cache_mb * 2**20))
    app.state.templates_version = templates_version(ROOT / "templates")
    check_every_route_declares_access(app)
    return app


async def _step_down_when_draining(app: Litestar, leaders: list[asyncio.Task[None]]) -> None:
    """A stopping server drains first (web/live): its leaders stop at once, closing their lock
    connections, so another instance takes their jobs over while requests here finish."""
    await draining(app).wait()
    for task in leaders:
        task.cancel()


def _replicas(settings: Settings, pool: Any) -> Replicas | None:
    """The replicas reads may go to (store/replicas.py); None without ORDERS_REPLICA_URLS."""
    if not settings.replica_urls:
        return None
    return Replicas(
        settings.replica_urls,
        pool,
        settings.snapshot_every,
        max_lag=settings.replica_max_lag_seconds,
        wait=settings.replica_wait_seconds,
        pool_size=settings.pool_size,
        limits=settings.session_limits(),
    )


@get("/", include_in_schema=False, opt=PUBLIC)
async def home() -> Redirect:
    return Redirect("/orders", status_code=303)


def _forgetting(orders: Orders, pages: RenderCache) -> Callable[[str], None]:
    """What drops a customer's key from this instance as soon as any instance appends to their
    stream (forgetting them, on the page, the API or the CLI), not KEY_SECONDS later.

    It drops the rendered pages too: their keys already tell a forgotten customer's pages from
    the ones rendered before (web/order_view.py), but those must not keep the details in memory.
    The watcher knows the stream, not the event, so any customer's event empties the cache
    (customers change rarely; pages are rendered again on demand).
    """

    def watch(stream_id: str) -> None:
        if is_customer_stream(stream_id):
            orders.keyring.drop(stream_id.removeprefix(STREAM_PREFIX))
            pages.clear()

    return watch
