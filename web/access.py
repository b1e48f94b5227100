"""Who may use each route: every route declares an access rule, and one guard enforces it.

Deny by default: a route handler without `opt={"access": …}` (from itself, its
controller or its router) makes `create_app` refuse to start, and is refused
at run time too. The rules name the domain's actions (domain/access.py); the
application layer checks them again on every call, and there a customer's
reach ends at their own orders.

People are known by a session cookie (pages), programs by a bearer token
(/api). Nobody known: a page answers 303 to /login, the API 401.
"""

from __future__ import annotations

from typing import Any, Literal, get_args
from urllib.parse import quote

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.routes import HTTPRoute

from domain.access import Action, Actor, may
from web import forms

# public: anyone, signed in or not. The others are domain actions (domain.access.Action).
Access = Literal["public", "read_orders", "write_orders", "read_log", "administer"]
ACCESS_LEVELS: frozenset[str] = frozenset(get_args(Access))
SESSION_COOKIE = "session"


def access(level: Access) -> dict[str, Any]:
    """The `opt` a route handler, controller or router declares its access rule with."""
    return {"access": level}


PUBLIC = access("public")
READ_ORDERS = access("read_orders")
WRITE_ORDERS = access("write_orders")
READ_LOG = access("read_log")
ADMINISTER = access("administer")
# A page of one order: the guard's session check also asks for the order's latest version, in
# the same round trip (see `who`), and `stream_head` hands it to the page.
ORDER_PAGE = {"head_of": "order_id"}


def for_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


async def who(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler | None = None
) -> Actor | None:
    """The actor behind a request: a bearer token on the API, a session cookie on the pages.

    On an order's page (`ORDER_PAGE`) the session's statement also reads the order's latest
    version, which the page asks first: one round trip instead of two (see `stream_head`).
    """
    if "actor" in connection.scope:
        actor: Actor | None = connection.scope["actor"]  # type: ignore[typeddict-item]
        return actor
    services = connection.app.state.services
    actor = None
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    bearer = scheme.lower() == "bearer"
    # A Prometheus scraper sends an admin's token to /metrics, where a person's session works too.
    if for_api(connection.scope["path"]) or (bearer and connection.scope["path"] == "/metrics"):
        if bearer and token.strip():
            actor = await services.tokens.actor(token.strip())
    else:
        session = connection.cookies.get(SESSION_COOKIE)
        stream = _head_asked(connection, handler)
        if session and stream:
            actor, head = await services.sessions.resume_with_head(session, stream)
            connection.scope["stream_head"] = (stream, head)  # type: ignore[typeddict-unknown-key]
        elif session:
            actor = await services.sessions.resume(session)
    connection.scope["actor"] = actor  # type: ignore[typeddict-unknown-key]
    return actor


def _head_asked(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler | None
) -> str | None:
    """The order whose latest version the session's statement may read too: a GET of an
    `ORDER_PAGE` naming a well-formed order, with reads on the primary (no replicas)."""
    param = handler.opt.get("head_of") if handler else None
    if not param or connection.scope.get("method") != "GET" or connection.app.state.get("replicas"):
        return None
    try:
        return forms.order_id(str(connection.path_params.get(param, "")))
    except forms.FormError:
        return None  # the page answers for a malformed id itself


def stream_head(connection: ASGIConnection[Any, Any, Any, Any], stream_id: str) -> int | None:
    """The stream's latest version as the guard read it with the session, once; None if it did not."""
    head: tuple[str, int] | None = connection.scope.pop("stream_head", None)  # type: ignore[typeddict-item]
    return head[1] if head is not None and head[0] == stream_id else None


async def authorize(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The app's one guard: the route's access rule against who is asking."""
    if connection.scope.get("method") == "OPTIONS":
        return  # the methods a path allows are no secret
    level = handler.opt.get("access")
    if level not in ACCESS_LEVELS:
        raise PermissionDeniedException("This route declares no access rule, so nobody may use it.")
    if level == "public":
        # Asks the store for nothing: /healthz must answer for itself while the database is
        # gone, and static files need no session. A public page that greets a signed-in
        # visitor (/login) calls `who` itself.
        return
    actor = await who(connection, handler)
    if actor is None:
        raise NotAuthorizedException("Sign in first.")
    action: Action = level
    if not may(actor, action):
        raise PermissionDeniedException(f"Your role ({actor.role}) may not use this page.")


def login_url(path: str, query: str = "") -> str:
    """Where an anonymous visitor is sent: /login, with the page they asked for as `next`."""
    asked = path + (f"?{query}" if query else "")
    return "/login?next=" + quote(asked, safe="")


def check_every_route_declares_access(app: Litestar) -> None:
    """Refuse to build an app in which some route says nothing about who may use it."""
    undeclared = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method, (handler, _) in route.route_handler_map.items():
            if method != "OPTIONS" and handler.opt.get("access") not in ACCESS_LEVELS:
                undeclared.append(f"{method} {route.path}")
    if undeclared:
        raise RuntimeError("routes without an access rule (web/access.py): " + ", ".join(sorted(undeclared)))


# What the OpenAPI document says of each operation's callers.
WHO_MAY: dict[str, str] = {
    "read_orders": "Who may call it: viewer, clerk and admin tokens; a customer's token for its own orders "
    "only (another customer's order answers 404, as a missing one does).",
    "write_orders": "Who may call it: clerk and admin tokens; a customer's token on its own orders only "
    "(a new order is always its own). A viewer's token gets 403.",
    "read_log": "Who may call it: viewer, clerk and admin tokens; a customer's token gets 403.",
    "administer": "Who may call it: admin tokens.",
}
