"""Liveness for load balancers: 200 when the database answers, 503 when it does not."""

from __future__ import annotations

from litestar import MediaType, Response, get
from litestar.di import NamedDependency

from store.operations import Operations
from web.access import PUBLIC


@get("/healthz", media_type=MediaType.TEXT, include_in_schema=False, opt=PUBLIC)
async def healthz(operations: NamedDependency[Operations]) -> Response[str]:
    if not await operations.available():
        return Response("database unavailable\n", status_code=503, headers={"Retry-After": "5"})
    return Response("ok\n")
