"""Liveness for load balancers: 200 when the database answers, 503 when it does not."""

from __future__ import annotations

from litestar import MediaType, Response, get
from litestar.datastructures import State

from store.database import ping


@get("/healthz", media_type=MediaType.TEXT, include_in_schema=False)
async def healthz(state: State) -> Response[str]:
    if not await ping(state.pool):
        return Response("database unavailable\n", status_code=503, headers={"Retry-After": "5"})
    return Response("ok\n")
