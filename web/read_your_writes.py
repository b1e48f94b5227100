"""Read-your-writes over replicas, in HTTP: where a write left the primary goes back to its client.

After a request that may have written (any method but GET and HEAD) and
succeeded, the response carries the primary's WAL position: a short-lived
cookie for pages, an `X-Orders-LSN` header for the API (a program sends it
back on its next reads). A read that carries one is served by a replica that
has replayed that far, or by the primary (store/replicas.py).
Only when replicas are configured; without them, nothing is added.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request
from litestar.datastructures import Cookie
from litestar.exceptions import ValidationException
from litestar.types import Message, Scope

from store.application import Orders
from store.replicas import Replicas, lsn_text, parse_lsn
from web.access import for_api

LSN_COOKIE = "orders_lsn"
LSN_HEADER = "x-orders-lsn"
# Long enough for any replica worth reading from to catch up (one further behind is skipped).
COOKIE_SECONDS = 60
SAFE_METHODS = frozenset({"GET", "HEAD"})


def reading_for(request: Request[Any, Any, Any], orders: Orders) -> Orders:
    """The application layer reading where this request may: replicas for a plain read, else the primary.

    A request that may write reads its own result (and the 409 "what changed" view) from
    the primary. So does a live page's update: the notification that prompted it came
    from the primary, and a replica may not have replayed that event yet.
    """
    if orders.replicas is None or request.method not in SAFE_METHODS:
        return orders
    if request.url.path.endswith("/live-update"):
        return orders
    return orders.reading_from_replicas(_written_at(request))


def _written_at(request: Request[Any, Any, Any]) -> int | None:
    header = request.headers.get(LSN_HEADER)
    if header is not None:
        position = parse_lsn(header)
        if position is None:
            raise ValidationException(
                f"{LSN_HEADER}: {header[:40]!r} is not a WAL position; send back the value "
                "a write's response gave (such as 0/16B3748), or nothing."
            )
        return position
    # Quoted, as a cookie value with a slash is; a mangled one is as good as none.
    return parse_lsn(request.cookies.get(LSN_COOKIE, "").strip('"'))


async def remember_write(message: Message, scope: Scope) -> None:
    """A before-send hook: a successful request that may have written gets the primary's position."""
    if message["type"] != "http.response.start" or scope.get("method", "GET") in SAFE_METHODS:
        return
    if message["status"] >= 400:
        return
    replicas: Replicas | None = Litestar.from_scope(scope).state.get("replicas")
    if replicas is None:
        return
    position = await replicas.commit_position()
    if position is None:
        return
    lsn = lsn_text(position)
    path = str(scope.get("path", ""))
    if for_api(path):
        header = (LSN_HEADER.encode(), lsn.encode())
    else:
        secure = scope.get("scheme") == "https"
        cookie = Cookie(
            key=LSN_COOKIE,
            value=lsn,
            max_age=COOKIE_SECONDS,
            httponly=True,
            samesite="lax",
            secure=secure,
            path="/",
        )
        header = (b"set-cookie", cookie.to_header(header="").strip().encode())
    message["headers"] = [*message.get("headers", []), header]
