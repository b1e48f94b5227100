"""The client's CPU per operation: append, load and replay beside their raw baselines.

    uv run --group bench python -m bench.client_cpu [--appends N] [--replay-events N]

On a machine busy with other work, rates swing with every round, but the CPU
time this process spends per operation (time.process_time) hardly moves: it
is the Python side's cost, which is what the store can cut. Run it in two
checkouts for a before/after. Starts its own embedded PostgreSQL (or uses
DATABASE_URL's server, in a scratch database it drops).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import uvloop

from bench import workload
from bench.append import PLACED, RAW_APPEND
from bench.history import RAW_READ, stream_of
from bench.lab import raw_pool, with_database
from bench.read_side_data import bulk_orders
from domain.order import fold
from store.database import connect_pool, embedded_postgres
from store.log.event_store import EventStore
from store.log.notifier import Notifier
from store.migrations import migrate
from store.read.replay import rebuild

NARROW_SCAN = (
    "SELECT stream_id, version, type, schema_version, data::text, recorded_at, tx_id::text, position "
    "FROM events ORDER BY position"
)


async def per_op(operation: Callable[[], Awaitable[int]], count: int, tasks: int = 1) -> tuple[float, float]:
    """(wall µs, client CPU µs) per unit of `operation`, `tasks` at a time, after a warm-up
    at the same concurrency (every connection has prepared its statements)."""

    async def run(each: int) -> tuple[int, float, float]:
        done = [0]

        async def worker() -> None:
            for _ in range(each):
                units = await operation()  # not `done[0] += await …`: that reads done[0] before the await
                done[0] += units

        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(tasks)))
        return done[0], time.perf_counter() - wall, time.process_time() - cpu

    await run(max(3, count // tasks // 5))
    done, wall, cpu = await run(max(1, count // tasks))
    return wall / done * 1e6, cpu / done * 1e6


async def appends(url: str, tasks: int, count: int) -> list[tuple[str, float, float]]:
    """EventStore.append as web/app.py runs it (with a Notifier), and the raw INSERT."""
    pool = await connect_pool(url, min_size=tasks + 1, max_size=tasks + 1)
    notifier = Notifier(pool)
    waking = asyncio.create_task(notifier.run())
    store = EventStore(pool, notifier=notifier)
    raw = await raw_pool(url, tasks)

    async def append() -> int:
        order_id, command_id = workload.new_order_id(), uuid.uuid4()
        events = workload.order_events(order_id)
        await store.append(order_id, 0, events, command_id, workload.metadata(command_id), PLACED)
        return 1

    async def insert() -> int:
        order_id = workload.new_order_id()
        await raw.execute(
            RAW_APPEND,
            order_id,
            [uuid.uuid4() for _ in range(5)],
            workload.EVENT_TYPES,
            workload.SCHEMA_VERSIONS,
            workload.event_bodies(order_id),
            workload.metadata_json(uuid.uuid4()),
        )
        return 1

    try:
        return [
            (f"EventStore.append, {tasks} tasks", *await per_op(append, count, tasks)),
            (f"raw INSERT, {tasks} tasks", *await per_op(insert, count, tasks)),
        ]
    finally:
        waking.cancel()
        await asyncio.gather(waking, return_exceptions=True)
        await raw.close()
        await pool.close()


async def measure(url: str, count: int, replay_events: int) -> list[tuple[str, float, float]]:
    results = await appends(url, 1, count) + await appends(url, 16, count)
    pool = await connect_pool(url, min_size=2, max_size=4)
    store = EventStore(pool)
    order_id, events = stream_of(100)
    command_id = uuid.uuid4()
    await store.append(order_id, 0, events, command_id, workload.metadata(command_id), fold(events))
    read_events = getattr(store, "read_events", None)  # not in builds before issue 18

    async def load() -> int:
        if read_events is not None:
            assert fold(await read_events(order_id)).version == 100
        else:
            assert fold(e.event for e in await store.read_stream(order_id)).version == 100
        return 1

    async def fetch() -> int:
        assert len(await pool.fetch(RAW_READ, order_id)) == 100
        return 1

    results.append(("load a 100-event stream", *await per_op(load, count // 2)))
    results.append(("raw fetch of its rows", *await per_op(fetch, count // 2)))

    await bulk_orders(pool, replay_events // 10)
    await pool.execute("VACUUM ANALYZE events")

    async def scan() -> int:
        count = 0
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            async for _ in conn.cursor(NARROW_SCAN, prefetch=2000):
                count += 1
        return count

    async def replay() -> int:
        return await rebuild(pool, "customer_summaries")

    for _ in range(2):
        results.append(("replay, per event", *await per_op(replay, 1)))
        results.append(("raw scan, per event", *await per_op(scan, 1)))
    await pool.close()
    return results


async def run(server: str, appends: int, replay_events: int) -> None:
    name = f"client_cpu_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = with_database(server, name)
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        for what, wall, cpu in await measure(url, appends, replay_events):
            print(f"{what:<34} wall {wall:9.1f} µs   client CPU {cpu:7.1f} µs", flush=True)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--appends", type=int, default=2000, help="operations per append and load figure")
    parser.add_argument("--replay-events", type=int, default=100_000, help="events in the replay's log")
    args = parser.parse_args()
    if os.environ.get("DATABASE_URL"):
        uvloop.run(run(os.environ["DATABASE_URL"], args.appends, args.replay_events))
        return
    with (
        tempfile.TemporaryDirectory(prefix="orders-client-cpu-") as folder,
        embedded_postgres(Path(folder) / "pg", delete=True) as url,
    ):
        uvloop.run(run(url, args.appends, args.replay_events))


if __name__ == "__main__":
    main()
