"""The app killed with SIGKILL a hundred times while writers send commands: nothing acknowledged is lost.

Real uvicorn processes on one database, forked warm by tests/faults/zygote.py
so that a restart takes a fraction of a second. Writers send commands with
their own command ids and expected versions; an answer lost to a kill is sent
again, unchanged, until one comes back. Afterwards the log is read directly.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import uuid4

import asyncpg
import httpx
import pytest

from store.database import connect_pool
from store.log.integrity import verify
from store.personal import MasterKey
from tests.support.accounts import session_at
from tests.support.customers import register_at
from tests.support.figures import record
from tests.support.servers import ROOT
from web.access import SESSION_COOKIE

pytestmark = pytest.mark.reliability

KILLS = 100
DURING_START_UP = 10  # of the kills, how many land while the app is still starting
WRITERS = 4


class Zygote:
    """The app-server forker: `spawn` starts a server on the shared socket, `kill` ends it with SIGKILL."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        assert process.stdout is not None
        self.port = int(process.stdout.readline())
        self.pid: int | None = None

    def spawn(self) -> int:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("spawn\n")
        self.process.stdin.flush()
        self.pid = int(self.process.stdout.readline())
        return self.pid

    def kill(self) -> None:
        assert self.pid is not None
        os.kill(self.pid, signal.SIGKILL)
        self.pid = None


@contextmanager
def zygote(database_url: str) -> Iterator[Zygote]:
    env = {**os.environ, "DATABASE_URL": database_url, "ORDERS_SECRET": "kill-test-secret"}
    command = [sys.executable, "-m", "tests.faults.zygote"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    forker = Zygote(process)
    try:
        yield forker
    finally:
        if forker.pid is not None:
            forker.kill()
        assert process.stdin is not None
        process.stdin.close()
        process.wait(10)


class Ledger:
    """What the writers were told: every acknowledged command and the version it should have written."""

    def __init__(self) -> None:
        self.acknowledged: dict[str, tuple[str, int]] = {}  # command id -> (order id, version)
        self.retried: Counter[str] = Counter()  # command id -> answers lost before one came back
        self.in_flight = 0
        self.lost_at_kill: list[int] = []


class Writer:
    def __init__(self, http: httpx.AsyncClient, ledger: Ledger, stop: asyncio.Event) -> None:
        self.http, self.ledger, self.stop = http, ledger, stop

    async def send(self, url: str, form: dict[str, str]) -> httpx.Response:
        """Post until an answer comes back; a lost one is sent again with the same command id."""
        token = self.http.cookies["csrftoken"]
        while True:
            self.ledger.in_flight += 1
            try:
                response = await self.http.post(url, data=form, headers={"x-csrftoken": token})
            except httpx.TransportError:
                self.ledger.retried[form["command_id"]] += 1
                await asyncio.sleep(0.01)
                continue
            finally:
                self.ledger.in_flight -= 1
            assert response.status_code == 303, (url, response.status_code, response.text[:500])
            assert response.headers["location"].startswith("/orders/"), response.headers["location"]
            return response

    async def command(self, url: str, form: dict[str, str], order_id: str | None, version: int) -> str:
        command_id = str(uuid4())
        response = await self.send(url, {**form, "command_id": command_id})
        order_id = order_id or response.headers["location"].rsplit("/", 1)[1]
        self.ledger.acknowledged[command_id] = (order_id, version)
        return order_id

    async def run(self) -> None:
        """Orders one after another: create, add items with expected versions, sometimes place."""
        while not self.stop.is_set():
            order_id = await self.command("/orders", {"customer_id": "kill-test", "currency": "EUR"}, None, 1)
            version = 1
            for line in range(random.randint(1, 4)):
                item = {"sku": f"SKU-{line}", "name": "Tea", "unit_price": "2.50", "quantity": "1"}
                item["expected_version"] = str(version)
                await self.command(f"/orders/{order_id}/items", item, order_id, version + 1)
                version += 1
            if random.random() < 0.5:
                place = {"expected_version": str(version)}
                await self.command(f"/orders/{order_id}/place", place, order_id, version + 1)


def during_start_up(kill: int) -> bool:
    every = KILLS // DURING_START_UP
    return kill < KILLS and kill % every == every - 1


async def until_up(base: str, timeout: float = 30) -> float:
    """Seconds until /healthz answers 200 through the shared socket."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        while True:
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            assert time.monotonic() - started < timeout, "the app did not come back"
            await asyncio.sleep(0.005)


async def test_a_hundred_kills_mid_append_lose_nothing_acknowledged(database_url: str) -> None:
    ledger, stop = Ledger(), asyncio.Event()
    restarts: list[float] = []
    started = time.monotonic()
    with zygote(database_url) as forker:
        base = f"http://127.0.0.1:{forker.port}"
        forker.spawn()
        await until_up(base)
        limits = httpx.Limits(max_connections=WRITERS, max_keepalive_connections=WRITERS)
        clerk = {SESSION_COOKIE: await session_at(database_url, "till", "clerk")}  # kept in the database
        await register_at(database_url, "kill-test", master=MasterKey.from_secret("kill-test-secret"))
        async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits, cookies=clerk) as http:
            await http.get("/orders")  # the CSRF cookie; the secret is the same in every instance
            writers = [asyncio.create_task(Writer(http, ledger, stop).run()) for _ in range(WRITERS)]
            for kill in range(KILLS):
                if during_start_up(kill):  # spawned a moment ago: building the app, pool, migrations
                    await asyncio.sleep(random.uniform(0, 0.15))
                else:  # serving the writers
                    await asyncio.sleep(random.uniform(0.02, 0.15))
                ledger.lost_at_kill.append(ledger.in_flight)
                forker.kill()
                forker.spawn()
                if not during_start_up(kill + 1):
                    restarts.append(await until_up(base))
                assert not any(w.done() for w in writers), [w.exception() for w in writers if w.done()]
            stop.set()
            await asyncio.wait_for(asyncio.gather(*writers), 60)
    elapsed = time.monotonic() - started

    conn = await asyncpg.connect(database_url)
    try:
        events = await conn.fetch(
            "SELECT stream_id, version, metadata->>'command_id' AS command_id FROM events"
        )
        commands = {
            str(row[0]): (row[1], row[2], row[3])
            for row in await conn.fetch(
                "SELECT command_id, stream_id, first_version, last_version FROM commands"
            )
        }
    finally:
        await conn.close()

    # The set-up registered the writers' customer, once, before the first kill; the rest is the orders'.
    registration = [row for row in events if row["stream_id"].startswith("customer:")]
    assert [(row["stream_id"], row["version"]) for row in registration] == [("customer:kill-test", 1)]
    events = [row for row in events if row not in registration]
    del commands[registration[0]["command_id"]]

    # Every acknowledged command is in the log, at the version its writer expected.
    written = {row["command_id"]: (row["stream_id"], row["version"]) for row in events}
    missing = [c for c in ledger.acknowledged if c not in written]
    assert not missing, f"{len(missing)} acknowledged commands are not in the log"
    assert all(written[c] == at for c, at in ledger.acknowledged.items())
    # No command appears twice: one event per command here, and one commands row.
    twice = [c for c, n in Counter(row["command_id"] for row in events).items() if n > 1]
    assert not twice, f"commands written twice: {twice[:5]}"
    assert set(commands) == set(written)
    assert all(commands[c] == (stream, version, version) for c, (stream, version) in written.items())
    # Nothing was written that no writer knows of: no stray orders from retried creates.
    assert set(written) == set(ledger.acknowledged)
    # Every stream's versions run 1..n with no hole.
    versions: dict[str, list[int]] = {}
    for row in events:
        versions.setdefault(row["stream_id"], []).append(row["version"])
    assert all(sorted(v) == list(range(1, len(v) + 1)) for v in versions.values())
    # Chains and read model survived every kill.
    pool = await connect_pool(database_url, min_size=1, max_size=2)
    try:
        report = await verify(pool, record=False)
    finally:
        await pool.close()
    assert report.ok, report.findings[:5]

    retried = [c for c in ledger.retried if c in ledger.acknowledged]
    record("kill -9: kill points survived", f"{KILLS} ({DURING_START_UP} during start-up)")
    record("kill -9: kills with requests in flight", sum(1 for n in ledger.lost_at_kill if n))
    found = f"{len(ledger.acknowledged)} / {len(written)}"
    record("kill -9: commands acknowledged / found in the log exactly once", found)
    record("kill -9: commands whose answer was lost, retried, written once", len(retried))
    record("kill -9: streams, all versions 1..n, chains and read model verified", len(versions))
    median = sorted(restarts)[len(restarts) // 2]
    record("kill -9: restart to first 200 (median / max s)", f"{median:.2f} / {max(restarts):.2f}")
    record("kill -9: test time (s)", f"{elapsed:.1f}")
