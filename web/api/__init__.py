"""The JSON API for programs: the same commands and queries as the pages, under /api.

It takes no cookies, so it sits outside the CSRF check; browsers' cross-site
writes are refused by `same_origin_writes` instead.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Router
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler

from store.idempotency import IdempotencyKeys
from web.api.commands import Writes
from web.api.customers import CustomerApi
from web.api.events import event_log
from web.api.orders import OrderApi
from web.api.problems import EXCEPTION_HANDLERS, http_problem

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def same_origin_writes(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Refuse writes a browser sends on behalf of another site.

    Programs send neither header. Browsers send Sec-Fetch-Site (and Origin) on
    every cross-origin request, including the simple ones a page can make
    without asking first: without this guard, any site a user visits could
    place orders through the API on a server the user can reach.
    """
    if not isinstance(connection, Request) or connection.method in SAFE_METHODS:
        return
    site = connection.headers.get("sec-fetch-site")
    origin = connection.headers.get("origin")
    host = connection.headers.get("host", "")
    if site not in (None, "same-origin", "none") or (
        origin is not None and origin.split("://", 1)[-1] != host
    ):
        raise http_problem(403, "Browsers may write to the API only from this site's own pages.")


def _keys(state: State) -> IdempotencyKeys:
    return IdempotencyKeys(state.pool)


api_router = Router(
    path="/api",
    route_handlers=[OrderApi, CustomerApi, event_log],
    dependencies={
        "keys": Provide(_keys, sync_to_thread=False),
        "writes": Provide(Writes, sync_to_thread=False),
    },
    exception_handlers=EXCEPTION_HANDLERS,
    guards=[same_origin_writes],
    include_in_schema=True,
    # Outside the CSRF check (CSRFConfig's exclude_from_csrf_key): the API sets and reads no cookie.
    opt={"exclude_from_csrf": True},
)
