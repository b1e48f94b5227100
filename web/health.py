"""Liveness for load balancers: 200 when the database answers, 503 when it does not.

`/healthz?detail` adds, as JSON, what an operator's monitoring wants: the read
models' lag and the horizon, with the session holding it. That names
sessions, users and their queries, so only an admin may ask: signed in (the
session cookie) or with an admin's API token (`Authorization: Bearer`).
Anyone else asking for the detail gets 401 (nobody known) or 403 (not an
admin), never the plain answer, so a monitor that was given the wrong
credentials fails loudly. Plain `/healthz` stays open to all.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import MediaType, Request, Response, get
from litestar.di import NamedDependency

from domain.access import Actor, may
from store.access.sessions import Sessions
from store.access.tokens import Tokens
from store.operations import Operations
from web.access import PUBLIC, SESSION_COOKIE


@get("/healthz", media_type=MediaType.TEXT, include_in_schema=False, opt=PUBLIC)
async def healthz(
    request: Request[Any, Any, Any],
    operations: NamedDependency[Operations],
    sessions: NamedDependency[Sessions],
    tokens: NamedDependency[Tokens],
) -> Response[Any]:
    if not await operations.available():
        return Response("database unavailable\n", status_code=503, headers={"Retry-After": "5"})
    if "detail" not in request.query_params:
        return Response("ok\n")
    actor = await _caller(request, sessions, tokens)
    if actor is None:
        return Response(
            "/healthz?detail names sessions and users: sign in as an admin or send an admin's API token.\n",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="orders"'},
        )
    if not may(actor, "administer"):
        return Response(f"/healthz?detail is for admins; your role is {actor.role}.\n", status_code=403)
    return Response(await _detail(operations), media_type=MediaType.JSON)


async def _caller(request: Request[Any, Any, Any], sessions: Sessions, tokens: Tokens) -> Actor | None:
    """The admin's token or session asking; the token when both are sent."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return await tokens.actor(token.strip())
    session = request.cookies.get(SESSION_COOKIE)
    return await sessions.resume(session) if session else None


async def _detail(operations: Operations) -> dict[str, Any]:
    runners = {runner.projection.name: runner.state for runner in operations.runners}
    horizon = await operations.horizon()
    return {
        "status": "warning" if horizon.held else "ok",
        "database": "ok",
        "read_models": [
            {
                "name": status.name,
                "kept_by": "append" if status.kind == "inline" else "subscription",
                "runner": runners.get(status.name),
                "lag_events": status.lag_events,
                "lag_seconds": round(status.lag_seconds, 3),
            }
            for status in await operations.read_models()
        ],
        "horizon": msgspec.to_builtins(horizon),
    }
