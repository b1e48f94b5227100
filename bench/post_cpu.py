"""Server CPU per form post, in process: the app over ASGI with its subscriptions and workflows on.

    uv run --group bench python -m bench.post_cpu [--orders 300] [--tasks 1,16] [--rounds 3]
        [--no-subscriptions] [--statements] [--profile [FILTER]]

The order workflow of bench/load.py (create, three items, place: five posts
answering 303) is sent straight to the ASGI app, signed in as a clerk, by
`--tasks` concurrent users, with the subscription runners and workflow loops
running in the same process as `orders serve` runs them. What is counted is
this process's CPU (`time.process_time`, every thread) from the first post
until every subscription has passed the last event and the outbox holds
nothing pending: the posts, and what the process does because of them. No
HTTP server, no load generator: what the app spends, which the shared
machine's load moves far less than it moves a rate.

`--statements` counts the statements this process sends, by kind, per post;
`--profile` prints cProfile's view (CPU time of the event loop's thread),
restricted to the functions whose file matches FILTER when given.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import pstats
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import uvloop
from litestar import Litestar

from bench import workload
from bench.lab import clerk_session
from store.database import embedded_postgres
from store.migrations import migrate
from web.access import SESSION_COOKIE
from web.app import create_app
from web.settings import Settings

ITEMS = (
    ("TEA-1", "Green tea", "3.50", "2"),
    ("CUP-7", "Tea cup", "12.00", "1"),
    ("POT-3", "Tea pot", "39.00", "1"),
)
POSTS_PER_ORDER = 1 + len(ITEMS) + 1

_CAUGHT_UP = """
SELECT coalesce(bool_and((s.tx_id, s.position) >= (e.tx_id, e.position)), true)
       AND NOT EXISTS (SELECT FROM outbox WHERE state = 'pending')
FROM subscriptions s,
     (SELECT tx_id, position FROM events ORDER BY tx_id DESC, position DESC LIMIT 1) e
"""


class Client:
    """A signed-in browser's cookies, calling the ASGI app directly."""

    def __init__(self, app: Litestar, session: str) -> None:
        self.app = app
        self.session = session
        self.csrf = ""

    def _headers(self, body: bytes | None) -> list[tuple[bytes, bytes]]:
        cookie = f"{SESSION_COOKIE}={self.session}" + (f"; csrftoken={self.csrf}" if self.csrf else "")
        headers = [(b"host", b"bench.local"), (b"cookie", cookie.encode())]
        if body is not None:
            headers += [
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"content-length", str(len(body)).encode()),
                (b"x-csrftoken", self.csrf.encode()),
            ]
        return headers

    async def call(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        body = urlencode(form).encode() if form is not None else b""
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": self._headers(body if method == "POST" else None),
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)  # a client that keeps the connection open
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        start: dict[str, Any] = {}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)

        await self.app(scope, receive, send)  # type: ignore[arg-type]
        location = ""
        for name, value in start["headers"]:
            if name == b"location":
                location = value.decode()
            elif name == b"set-cookie" and value.startswith(b"csrftoken="):
                self.csrf = value.split(b";", 1)[0].split(b"=", 1)[1].decode()
        return start["status"], location

    async def expect(self, path: str, form: dict[str, str]) -> str:
        status, location = await self.call("POST", path, form)
        if status != 303:
            raise RuntimeError(f"POST {path}: {status}")
        return location

    async def workflow(self) -> None:
        order = await self.expect("/orders", {"customer_id": workload.CUSTOMER, "currency": "EUR"})
        for sku, name, price, quantity in ITEMS:
            item = {"sku": sku, "name": name, "unit_price": price, "quantity": quantity}
            await self.expect(f"{order}/items", item)
        await self.expect(f"{order}/place", {})


async def caught_up(conn: asyncpg.Connection, subscriptions: bool, timeout: float = 30.0) -> None:
    """Wait until every subscription passed the last event and no message is pending."""
    started = time.perf_counter()
    while subscriptions and not await conn.fetchval(_CAUGHT_UP):
        if time.perf_counter() - started > timeout:
            raise RuntimeError("the subscriptions did not catch up")
        await asyncio.sleep(0.005)


async def run(client: Client, orders: int, tasks: int) -> None:
    left = orders

    async def user() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await client.workflow()

    await asyncio.gather(*(user() for _ in range(tasks)))


def count_statements(tally: Counter[str]) -> None:
    """Count every statement any connection of this process sends, by its first words."""
    connection = asyncpg.connection.Connection
    run_prepared, run_simple = connection._execute, connection.execute

    def name(query: str) -> str:
        return " ".join(query.split())[:110]

    async def prepared(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        tally[name(query)] += 1
        return await run_prepared(self, query, *args, **kwargs)

    async def simple(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if not args:  # with arguments, it goes through _execute
            tally[name(query)] += 1
        return await run_simple(self, query, *args, **kwargs)

    connection._execute = prepared  # type: ignore[method-assign]
    connection.execute = simple  # type: ignore[method-assign]


async def measure(args: argparse.Namespace) -> None:
    logging.getLogger("orders.notifications").setLevel(logging.WARNING)  # the log sender's line per order
    url, orders, subscriptions = args.url, args.orders, not args.no_subscriptions
    conn = await asyncpg.connect(url)
    await migrate(conn)
    app = create_app(Settings(database_url=url, csrf_secret="bench", subscriptions=subscriptions))
    async with app.lifespan():
        await workload.register_customers(app.state.services.orders)
        client = Client(app, await clerk_session(url))
        status, _ = await client.call("GET", "/orders")
        if status != 200 or not client.csrf:
            raise RuntimeError(f"GET /orders: {status}, CSRF cookie {client.csrf!r}")
        await run(client, 20, 4)  # warm up
        await caught_up(conn, subscriptions)
        posts = orders * POSTS_PER_ORDER
        for tasks in args.tasks:
            figures: list[float] = []
            for _ in range(args.rounds):
                await asyncio.sleep(0.2)
                cpu = time.process_time()
                await run(client, orders, tasks)
                await caught_up(conn, subscriptions)
                figures.append((time.process_time() - cpu) / posts * 1e6)
            rounds = ", ".join(f"{f:.0f}" for f in figures)
            print(f"{tasks:>2} tasks: {statistics.median(figures):5.0f} µs CPU a post ({rounds})", flush=True)
        if args.statements:
            tally: Counter[str] = Counter()
            count_statements(tally)
            await run(client, orders, args.tasks[-1])
            await caught_up(conn, subscriptions)
            for query, count in tally.most_common(40):
                print(f"{count / posts:6.2f}  {query}")
            print(f"{sum(tally.values()) / posts:6.2f}  in all, a post ({args.tasks[-1]} tasks)")
        if args.profile is not None:
            profile = cProfile.Profile(time.thread_time)
            profile.enable()
            await run(client, orders, args.tasks[-1])
            await caught_up(conn, subscriptions)
            profile.disable()
            stats = pstats.Stats(profile)
            stats.sort_stats("cumulative").print_stats(*([args.profile] if args.profile else []), 70)
            stats.sort_stats("tottime").print_stats(40)
    await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.post_cpu")
    parser.add_argument("--orders", type=int, default=300, help="orders (of five posts) a round")
    parser.add_argument("--tasks", default="1,16", help="concurrent users, one figure each")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-subscriptions", action="store_true", help="no runners, as `serve` never runs")
    parser.add_argument("--statements", action="store_true", help="count the statements sent, by kind")
    parser.add_argument("--profile", nargs="?", const="", default=None, metavar="FILTER")
    parser.add_argument("--url", default="", help="a PostgreSQL server to use (default: an embedded one)")
    args = parser.parse_args()
    args.tasks = [int(t) for t in args.tasks.split(",")]
    if args.url:
        uvloop.run(measure(args))
        return
    with tempfile.TemporaryDirectory() as folder, embedded_postgres(Path(folder) / "pg", delete=True) as url:
        args.url = url
        uvloop.run(measure(args))


if __name__ == "__main__":
    main()
