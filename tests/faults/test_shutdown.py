"""Stopping `orders serve` as supervisors do (SIGTERM) and people do (Ctrl-C, SIGINT): one graceful stop.

Each test runs the real command on an embedded PostgreSQL in a folder of its own,
and checks afterwards what an operator would: the exit status, the time it took,
and that no process of the folder's PostgreSQL is left (the process table,
`postmaster.pid`, a connection attempt).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from store.database import UNAVAILABLE, embedded_postgres
from tests.support.accounts import session_on, token_on
from tests.support.customers import register_at
from tests.support.embedded_serving import (
    ORDERS,
    Serving,
    accepts_connections,
    assert_postgres_stopped,
    orders_env,
    orders_serve,
    own_data_dir,
    postgres_processes,
    postmaster,
    users_listed,
)
from tests.support.figures import record
from tests.support.servers import ROOT, free_port
from tests.support.waiting import eventually
from web.access import SESSION_COOKIE

# What a stop may take beyond the grace period: the app's shutdown, closing the pool, and
# PostgreSQL's own stop (a checkpoint), on a busy two-core machine.
STOP_OVERHEAD = 8.0


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with own_data_dir() as folder:
        yield folder


@pytest.mark.parametrize(
    ("signum", "workers", "group"),
    [
        (signal.SIGTERM, 1, False),  # systemd, Docker, Kubernetes, kill
        (signal.SIGINT, 1, False),
        (signal.SIGTERM, 2, False),
        (signal.SIGINT, 2, True),  # Ctrl-C in a terminal: the parent and its workers at once
    ],
)
def test_a_stop_signal_ends_serve_and_its_postgres(
    data_dir: Path, signum: int, workers: int, group: bool
) -> None:
    with orders_serve(data_dir, "--workers", str(workers), "--grace", "3") as serving:
        running = postmaster(serving.folder)
        assert running is not None
        pid, url = running
        assert pid in postgres_processes(serving.folder)
        assert users_listed(serving.folder) == [serving.process.pid]

        took = serving.stop(signum, group=group)

        assert serving.process.returncode == 0
        assert serving.output().rstrip().endswith("orders: stopped")
    assert took < 3 + STOP_OVERHEAD, f"the stop took {took:.1f} s"
    assert_postgres_stopped(serving.folder, url)
    how = f"{signal.Signals(signum).name} to the {'process group' if group else 'process'}"
    record(f"stop of an idle serve: {how}, {workers} worker(s) (s)", f"{took:.2f}")


def test_a_killed_serve_no_longer_keeps_the_next_ones_postgres_running(data_dir: Path) -> None:
    """The bug as found: a serve killed outright stays listed as a user of the folder, and before
    the fix no later clean stop ever stopped that folder's PostgreSQL again."""
    with orders_serve(data_dir) as killed:
        killed.stop(signal.SIGKILL)
    assert killed.folder.joinpath("postmaster.pid").exists(), "PostgreSQL outlives a SIGKILL, as expected"
    assert users_listed(killed.folder) == [killed.process.pid]

    with orders_serve(data_dir) as serving:
        running = postmaster(serving.folder)
        assert running is not None
        assert users_listed(serving.folder) == [serving.process.pid], "the dead pid is still listed"
        serving.stop(signal.SIGTERM)
        assert serving.process.returncode == 0
    assert_postgres_stopped(serving.folder, running[1])


def test_a_dead_process_listed_as_using_the_folder_does_not_keep_its_postgres_running(
    data_dir: Path,
) -> None:
    folder = data_dir / "postgres"
    dead = _pid_of_an_ended_process()
    with embedded_postgres(folder) as url:
        listed = users_listed(folder)
        (folder / ".handle_pids.json").write_text(json.dumps([dead, *listed]))
        assert accepts_connections(url)
    assert_postgres_stopped(folder, url)


def _pid_of_an_ended_process() -> int:
    """The pid of a process that ran and ended, as a killed `orders` process leaves in the list."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    return ended.pid


@pytest.mark.parametrize("workers", [1, 2])
def test_an_open_live_stream_gets_a_retry_hint_and_ends_without_holding_the_stop(
    data_dir: Path, workers: int
) -> None:
    grace = 20.0
    with orders_serve(data_dir, "--grace", str(grace), "--workers", str(workers)) as serving:
        running = postmaster(serving.folder)
        assert running is not None
        viewer = {SESSION_COOKIE: session_on(running[1], "watcher", "viewer")}
        lines: list[str] = []
        with (
            httpx.Client(base_url=serving.url, cookies=viewer, timeout=30) as client,
            client.stream("GET", "/events/live") as stream,
        ):
            assert stream.status_code == 200
            received = stream.iter_lines()
            assert next(received) == ": connected"
            started = time.monotonic()
            serving.process.send_signal(signal.SIGTERM)
            lines.extend(received)  # to the end of the stream: it must end
            ended = time.monotonic() - started
        serving.process.wait(30)
        stopped = time.monotonic() - started
    retries = [line for line in lines if line.startswith("retry: ")]
    assert len(retries) == 1, lines
    assert 500 <= int(retries[0].removeprefix("retry: ")) <= 2500
    assert ended < 3, f"the stream ended {ended:.1f} s after the signal"
    assert stopped < grace / 2, f"the open stream held the stop up for {stopped:.1f} s"
    assert serving.process.returncode == 0
    assert_postgres_stopped(serving.folder, running[1])
    record(f"stop with an open SSE stream, grace 20 s, {workers} worker(s) (s)", f"{stopped:.2f}")


def test_a_write_in_flight_at_the_stop_finishes_and_is_kept(data_dir: Path) -> None:
    """New connections are refused at once, while the write already in flight gets its answer."""
    with orders_serve(data_dir, "--grace", "10") as serving:
        running = postmaster(serving.folder)
        assert running is not None
        outcome, took = asyncio.run(_write_in_flight_at_the_stop(serving, running[1], hold=1.0))
    assert isinstance(outcome, httpx.Response), outcome
    assert outcome.status_code == 200, outcome.text
    assert serving.process.returncode == 0
    assert took < 10, f"the stop took {took:.1f} s"
    assert_postgres_stopped(serving.folder, running[1])
    assert ("grace", "SLOW-1") in asyncio.run(_items_in_the_log(serving.folder))


def test_a_write_held_past_the_grace_is_cut_off_and_the_stop_ends_in_time(data_dir: Path) -> None:
    grace = 1.0
    with orders_serve(data_dir, "--grace", str(grace)) as serving:
        running = postmaster(serving.folder)
        assert running is not None
        outcome, took = asyncio.run(_write_in_flight_at_the_stop(serving, running[1], hold=grace + 30))
    assert took < grace + STOP_OVERHEAD, f"the stop took {took:.1f} s"
    assert serving.process.returncode == 0
    assert_postgres_stopped(serving.folder, running[1])
    acknowledged = isinstance(outcome, httpx.Response) and outcome.is_success
    assert not acknowledged, "a write held past the grace period was answered as done"
    record("stop with a write held past a 1 s grace (s)", f"{took:.2f}")


ITEM = {"sku": "SLOW-1", "name": "Held", "unit_price": {"amount": "1.00", "currency": "EUR"}, "quantity": 1}


@contextlib.asynccontextmanager
async def _held_write(
    client: httpx.AsyncClient, db_url: str
) -> AsyncIterator[tuple[asyncio.Task[httpx.Response], Callable[[], Awaitable[None]]]]:
    """A write sent through `client` and held in flight by a row lock until `release()` is awaited
    (or the server's PostgreSQL stops): the write's task, and `release`."""
    created = await client.post("/api/orders", json={"customer_id": "grace", "currency": "EUR"})
    assert created.status_code == 201, created.text
    order_id = created.json()["order"]["order_id"]
    locker = await asyncpg.connect(db_url)

    async def release() -> None:
        with contextlib.suppress(*UNAVAILABLE):  # the server's PostgreSQL may have stopped already
            await locker.close(timeout=5)  # its transaction, and the lock, end with it

    try:
        # The append upserts the order's read-model row: holding that row holds the write.
        await locker.execute("BEGIN")
        await locker.execute("SELECT 1 FROM order_read_model WHERE order_id = $1 FOR UPDATE", order_id)
        write = asyncio.create_task(client.post(f"/api/orders/{order_id}/items", json=ITEM))
        await eventually(lambda: _someone_waits_on_a_lock(db_url))
        yield write, release
    finally:
        await release()


async def _write_in_flight_at_the_stop(
    serving: Serving, db_url: str, *, hold: float
) -> tuple[httpx.Response | httpx.HTTPError, float]:
    """A write held in flight when SIGTERM comes, released after `hold` seconds or when the server's
    PostgreSQL stops, whichever is first. Its answer, and the stop's time."""
    token = await asyncio.to_thread(token_on, db_url, "till", "clerk")
    await register_at(db_url, "grace", master=serving.master)  # whom the held write's order is for
    bearer = {"authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=serving.url, headers=bearer, timeout=60) as client,
        _held_write(client, db_url) as (write, release),
    ):
        started = time.monotonic()
        serving.process.send_signal(signal.SIGTERM)
        stopped = asyncio.create_task(asyncio.to_thread(serving.process.wait, 60))
        await eventually(lambda: _refused(serving.url), timeout=10)  # while the write waits
        await asyncio.wait([stopped], timeout=hold)
        await release()
        try:
            outcome: httpx.Response | httpx.HTTPError = await write
        except httpx.HTTPError as error:
            outcome = error
        await stopped
    return outcome, time.monotonic() - started


async def _refused(url: str) -> bool:
    """True when a new connection is refused: the server takes no more."""
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        try:
            await client.get("/healthz")
        except httpx.ConnectError:
            return True
        except (httpx.RemoteProtocolError, httpx.ReadError):
            # Taken in the instant the server was closing its socket, and dropped unanswered:
            # look again until connections are refused outright.
            return False
    return False


async def _someone_waits_on_a_lock(db_url: str) -> bool:
    conn = await asyncpg.connect(db_url)
    try:
        return bool(
            await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        )
    finally:
        await conn.close()


async def _items_in_the_log(folder: Path) -> set[tuple[str, str]]:
    """(customer, sku) of every item added, read from the folder's log after a restart."""
    with embedded_postgres(folder) as url:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT r.customer_id, e.data->>'sku' AS sku FROM events e "
                "JOIN order_read_model r ON r.order_id = e.stream_id WHERE e.type = 'ItemAdded'"
            )
        finally:
            await conn.close()
    return {(row["customer_id"], row["sku"]) for row in rows}


_LEADERS = "SELECT objid::bigint, pid FROM pg_locks WHERE locktype = 'advisory' AND granted"


async def _leaders(db_url: str) -> dict[int, int]:
    """Each held leader lock (the subscriptions', the workflows'), and the backend holding it."""
    conn = await asyncpg.connect(db_url)
    try:
        return {row["objid"]: row["pid"] for row in await conn.fetch(_LEADERS)}
    finally:
        await conn.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stopping_instance_hands_its_leadership_over_before_its_requests_finish(
    data_dir: Path, workers: int
) -> None:
    """Two instances on one database: the one that leads (with two workers, whichever of them holds
    each job) is stopped while a write of its own is in flight, and the other takes every job over
    at once, before that write is even answered."""
    with orders_serve(data_dir, "--workers", str(workers)) as first:
        running = postmaster(first.folder)
        assert running is not None
        db_url = running[1]
        with orders_serve(data_dir) as second:
            handed_over, jobs, write = asyncio.run(_hand_over(first, db_url))
            assert first.process.returncode == 0
            assert postmaster(first.folder) == running, "the first instance's stop stopped a shared database"
            assert httpx.get(second.url + "/healthz", timeout=10).status_code == 200
            second.stop(signal.SIGTERM)
            assert second.process.returncode == 0
    assert_postgres_stopped(first.folder, db_url)
    assert write.status_code == 200, write.text
    assert handed_over < 5, f"the other instance took over {handed_over:.1f} s after the signal"
    record(
        f"leadership handed over, {jobs} jobs of {workers} worker(s), a write in flight: after the signal"
        " (s)",
        f"{handed_over:.2f}",
    )


async def _hand_over(first: Serving, db_url: str) -> tuple[float, int, httpx.Response]:
    led_by_first = await _leaders(db_url)  # it was alone long enough to take every job
    assert led_by_first
    first_backends = set(led_by_first.values())

    async def taken_over() -> bool:
        now = await _leaders(db_url)
        return all(now.get(key, -1) not in (-1, *first_backends) for key in led_by_first)

    token = await asyncio.to_thread(token_on, db_url, "till", "clerk")
    await register_at(db_url, "grace", master=first.master)  # whom the held write's order is for
    bearer = {"authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=first.url, headers=bearer, timeout=60) as client,
        _held_write(client, db_url) as (write, release),
    ):
        started = time.monotonic()
        first.process.send_signal(signal.SIGTERM)
        await eventually(taken_over, timeout=30, interval=0.02)
        handed_over = time.monotonic() - started
        assert first.process.poll() is None, "the first instance ended before it handed over"
        await release()
        answer = await write
    await asyncio.to_thread(first.process.wait, 60)
    return handed_over, len(led_by_first), answer


def test_a_stop_signal_while_postgres_starts_leaves_no_postgres(data_dir: Path) -> None:
    """SIGTERM the moment `orders serve` begins to start its PostgreSQL (initdb, then the server)."""
    env = orders_env(data_dir)
    command = [str(ORDERS), "serve", "--port", str(free_port())]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    with process:
        assert process.stderr.readline().startswith("orders: starting the embedded PostgreSQL")
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        assert process.returncode != 0, "it stopped before it served: not a clean serve"
    folder = data_dir / "postgres"
    assert_postgres_stopped(folder, f"postgresql://postgres:@/postgres?host={folder}")
