"""The app's CPU per page request, in process: what a worker spends on each page, beside a hello world.

    uv run --group bench python -m bench.page_cpu [--requests N] [--rounds N]

The app is called as an ASGI application (no HTTP server, no client: only the
app's own work and its database driver's), signed in as a clerk, on uvloop as
`orders serve` runs it, with an order of 20 lines and 40 small orders in an
embedded PostgreSQL in a temp folder.
`time.process_time` counts this process alone, so PostgreSQL's share is not in
the figures, and the machine's other work moves them far less than it moves
request rates: run it in two checkouts for a before/after. The hello world is
bench/hello.py's Litestar app; the app's public redirect (`GET /`) is the floor
of the app's middleware with no session and no statement.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop
from litestar import Litestar

from bench.hello import create_app as hello_app
from bench.page_cache import new_order, signed_in
from store.database import embedded_postgres
from web.access import SESSION_COOKIE

Call = Callable[[], Awaitable[int]]


def caller(app: Litestar, path: str, cookie: str, headers: dict[str, str] | None = None) -> Call:
    """One GET of `path` through the ASGI app; its status."""
    query = b""
    if "?" in path:
        path, raw = path.split("?", 1)
        query = raw.encode()
    asked = [(b"host", b"bench.local"), (b"cookie", cookie.encode())]
    asked += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]

    async def call() -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": asked,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        sent: list[dict[str, object]] = []

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        await app(scope, receive, send)  # type: ignore[arg-type]
        status = sent[0]["status"]
        assert isinstance(status, int)
        return status

    return call


async def cpu_per_request(call: Call, requests: int, expected: int = 200) -> float:
    """µs of this process's CPU per request, after a warm-up."""
    for _ in range(max(20, requests // 10)):
        await call()
    started = time.process_time()
    for _ in range(requests):
        status = await call()
    assert status == expected, status
    return (time.process_time() - started) / requests * 1e6


async def measure(url: str, requests: int, rounds: int) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    async with signed_in(url) as (app, http):
        session = http.cookies[SESSION_COOKIE]
        order = await new_order(http, 20)
        for _ in range(40):
            await new_order(http, 2)
        cookie = f"{SESSION_COOKIE}={session}; csrftoken={http.cookies['csrftoken']}"
        hello = hello_app()
        calls = {
            "Litestar hello world": caller(hello, "/", ""),
            "the app's public redirect (GET /)": caller(app, "/", cookie),
            "order page, 20 lines": caller(app, order, cookie),
            "order page, htmx partial": caller(app, order, cookie, {"HX-Request": "true"}),
            "slider: the snapshot at version 10": caller(
                app, f"{order}/history?version=10", cookie, {"HX-Request": "true", "HX-Target": "snapshot"}
            ),
            "list page": caller(app, "/orders", cookie),
        }
        figures: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(rounds):
            for name, call in calls.items():
                expected = 303 if name.startswith("the app's public redirect") else 200
                figures[name].append(await cpu_per_request(call, requests, expected))
    width = max(map(len, figures))
    print(f"{'request':<{width}}  µs CPU (median)  each round")
    for name, values in figures.items():
        rounds_text = ", ".join(f"{v:.0f}" for v in values)
        print(f"{name:<{width}}  {statistics.median(values):>15.0f}  {rounds_text}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.page_cpu", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per page and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="orders-page-cpu-") as folder,
        embedded_postgres(Path(folder) / "pg", delete=True) as url,
    ):
        uvloop.run(measure(url, args.requests, args.rounds))


if __name__ == "__main__":
    main()
