"""A Litestar hello-world, served by uvicorn exactly as the app is: the ceiling for a page."""

from __future__ import annotations

from litestar import Litestar, MediaType, get


@get("/", media_type=MediaType.TEXT)
async def hello() -> str:
    return "Hello, world!"


@get("/healthz", media_type=MediaType.TEXT)
async def healthz() -> str:
    return "ok\n"


def create_app() -> Litestar:
    return Litestar(route_handlers=[hello, healthz])
