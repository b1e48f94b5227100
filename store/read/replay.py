"""Rebuild a read model from the log into shadow tables, then swap them in atomically.

Reads keep using the old tables until the swap, which is one short
transaction: rename old away, rename new in, drop old, move the checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any, cast

import asyncpg

from domain.order import Event, fold
from store.customers import refold_customers
from store.log.event_store import EVENT_COLUMNS, RecordedEvent, recorded_event
from store.read.log_reader import log_below_horizon
from store.read.projections import PROJECTIONS, OrderFolds
from store.read.replayer import Replayer
from store.read.subscriptions import Checkpoint, Connection, read_batch

SUFFIX = "_rebuild"
ORDER_READ_MODEL = "order_read_model"
CUSTOMERS = "customers"
READ_MODELS = (ORDER_READ_MODEL, CUSTOMERS, *PROJECTIONS)

Progress = Callable[[int, int], Awaitable[None]]


class UnknownReadModel(Exception):
    pass


class RebuildInProgress(Exception):
    pass


async def _noop(_done: int, _total: int) -> None:
    return None


async def rebuild(
    pool: asyncpg.Pool,
    name: str,
    progress: Progress = _noop,
    batch_size: int = 2000,
    hold: int = 20_000,
    window: int = 1000,
) -> int:
    """Rebuild the read model `name`; return the number of events replayed.

    `hold`: how many orders' folds a subscription's rebuild keeps in memory
    before it writes them out (with their rows on the way, about 3 KB an
    order: 20,000 raised a rebuild's peak RSS by about 65 MB). `window`: an
    order not changed while that many others were has its row written early
    (store/read/replayer.py; 0: never).
    """
    if name not in READ_MODELS:
        raise UnknownReadModel(f"no read model called {name!r}; there are {', '.join(READ_MODELS)}")
    async with pool.acquire() as lock:
        # One rebuild of a read model at a time, across every app instance.
        if not await lock.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", f"orders.rebuild.{name}"):
            raise RebuildInProgress(f"{name} is already being rebuilt")
        try:
            return await _rebuild(pool, lock, name, progress, batch_size, (hold, window))
        finally:
            await lock.execute("SELECT pg_advisory_unlock(hashtext($1))", f"orders.rebuild.{name}")


async def _rebuild(
    pool: asyncpg.Pool,
    books: Connection,
    name: str,
    progress: Progress,
    batch_size: int,
    hold: tuple[int, int],
) -> int:
    """Rebuild, keeping the books of it in projection_rebuilds through `books` (idle otherwise)."""
    total = await books.fetchval("SELECT count(*) FROM events")
    await books.execute(
        """
        INSERT INTO projection_rebuilds (name, state, events_total) VALUES ($1, 'running', $2)
        ON CONFLICT (name) DO UPDATE SET state = 'running', events_done = 0, events_total = $2,
            started_at = now(), finished_at = NULL, error = NULL
        """,
        name,
        total,
    )

    async def report(done: int) -> None:
        await books.execute("UPDATE projection_rebuilds SET events_done = $2 WHERE name = $1", name, done)
        await progress(done, total)

    try:
        if name == ORDER_READ_MODEL:
            done = await _rebuild_order_read_model(pool, report, batch_size)
        elif name == CUSTOMERS:
            done = await _rebuild_customers(pool, report, batch_size)
        else:
            done = await _rebuild_projection(pool, PROJECTIONS[name], report, batch_size, hold)
    except BaseException as error:
        await books.execute(
            "UPDATE projection_rebuilds SET state = 'failed', error = $2, finished_at = now() "
            "WHERE name = $1",
            name,
            str(error)[:500] or type(error).__name__,
        )
        raise
    await books.execute(
        "UPDATE projection_rebuilds SET state = 'done', events_done = $2, finished_at = now() "
        "WHERE name = $1",
        name,
        done,
    )
    await progress(done, max(total, done))
    return done


async def _create_shadows(conn: Connection, tables: tuple[str, ...]) -> None:
    for table in tables:
        await conn.execute(f"DROP TABLE IF EXISTS {table}{SUFFIX}")
        await conn.execute(f"CREATE TABLE {table}{SUFFIX} (LIKE {table} INCLUDING ALL)")


async def _swap_in(conn: Connection, tables: tuple[str, ...]) -> None:
    for table in tables:
        await conn.execute(f"ALTER TABLE {table} RENAME TO {table}_old")
        await conn.execute(f"ALTER TABLE {table}{SUFFIX} RENAME TO {table}")
        await conn.execute(f"DROP TABLE {table}_old")


class Throttled:
    """Calls `report` with the count done at most every `interval` seconds."""

    def __init__(self, report: Callable[[int], Awaitable[None]], interval: float = 0.2) -> None:
        self.report = report
        self.interval = interval
        self.last = 0.0

    async def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            await self.report(done)


async def _catch_up(
    conn: Connection,
    projection: OrderFolds[Any],
    checkpoint: Checkpoint,
    done: int,
    batch_size: int,
    progress: Callable[[int], Awaitable[None]],
) -> tuple[Checkpoint, int]:
    """Apply to the shadow tables what is after `checkpoint`; the new checkpoint and count done.

    Nobody else writes the shadow tables, so a batch needs no transaction of its own.
    """
    while batch := await read_batch(conn, checkpoint, batch_size):
        await projection.apply(conn, [event for event, _ in batch], SUFFIX)
        checkpoint = batch[-1][1]
        done += len(batch)
        await progress(done)
    return checkpoint, done


async def _rebuild_projection(
    pool: asyncpg.Pool,
    projection: OrderFolds[Any],
    report: Callable[[int], Awaitable[None]],
    batch_size: int,
    hold: tuple[int, int],  # the Replayer's capacity and window
) -> int:
    done = 0
    checkpoint = Checkpoint()
    progress = Throttled(report)
    async with pool.acquire() as conn:
        await _create_shadows(conn, projection.tables)
        # The bulk of the log: read ahead on one connection, folded and written on this one.
        async with (
            Replayer(projection, SUFFIX, *hold) as replayer,
            aclosing(log_below_horizon(pool, batch_size)) as batches,
        ):
            async for batch, count, last in batches:
                await replayer.apply(conn, batch)
                checkpoint = last
                done += count
                await progress(done)
            await replayer.finish(conn)
        # What committed meanwhile, through the live path, still away from the live runner.
        checkpoint, done = await _catch_up(conn, projection, checkpoint, done, batch_size, progress)
        await report(done)
        async with conn.transaction():
            # Holding the subscription's row stops its live runner between batches:
            # its next checkpoint update waits here, then finds the checkpoint moved.
            await conn.execute(
                "INSERT INTO subscriptions (name) VALUES ($1) ON CONFLICT DO NOTHING", projection.name
            )
            await conn.execute("SELECT 1 FROM subscriptions WHERE name = $1 FOR UPDATE", projection.name)
            checkpoint, done = await _catch_up(conn, projection, checkpoint, done, batch_size, progress)
            await _swap_in(conn, projection.tables)
            await conn.execute(
                """
                UPDATE subscriptions SET tx_id = $2::text::xid8, position = $3, updated_at = now()
                WHERE name = $1
                """,
                projection.name,
                str(checkpoint.tx_id),
                checkpoint.position,
            )
            # The rebuild applied every event, held ones too: nothing is parked any more.
            await conn.execute("DELETE FROM parked_streams WHERE subscription = $1", projection.name)
    return done


_STREAMS_PAGE = """
SELECT DISTINCT stream_id FROM events WHERE stream_id > $1 AND stream_id NOT LIKE 'customer:%'
ORDER BY stream_id LIMIT $2
"""

_STREAM_EVENTS = f"""
SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ANY($1::text[]) ORDER BY stream_id, version
"""

# Streams whose row in the shadow table is missing or behind the log.
_STALE_STREAMS = f"""
SELECT e.stream_id FROM (
    SELECT stream_id, max(version) AS version FROM events WHERE stream_id NOT LIKE 'customer:%'
    GROUP BY stream_id
) e
LEFT JOIN {ORDER_READ_MODEL}{SUFFIX} r ON r.order_id = e.stream_id
WHERE r.version IS DISTINCT FROM e.version
"""

_UPSERT_ROWS = f"""
INSERT INTO {ORDER_READ_MODEL}{SUFFIX} AS o
    (order_id, customer_id, currency, status, line_count, item_count, total_cents, version,
     created_at, updated_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[],
                     $7::bigint[], $8::int[], $9::timestamptz[], $10::timestamptz[])
ON CONFLICT (order_id) DO UPDATE SET
    status = EXCLUDED.status, line_count = EXCLUDED.line_count, item_count = EXCLUDED.item_count,
    total_cents = EXCLUDED.total_cents, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
"""


async def _refold_streams(conn: Connection, stream_ids: list[str]) -> int:
    rows = await conn.fetch(_STREAM_EVENTS, stream_ids)
    streams: dict[str, list[RecordedEvent]] = {}
    for row in rows:
        recorded = recorded_event(row)
        streams.setdefault(recorded.stream_id, []).append(recorded)
    orders = [(events, fold(cast(Event, e.event) for e in events)) for events in streams.values()]
    await conn.execute(
        _UPSERT_ROWS,
        [o.order_id for _, o in orders],
        [o.customer_id for _, o in orders],
        [o.currency for _, o in orders],
        [o.status for _, o in orders],
        [len(o.lines) for _, o in orders],
        [o.item_count for _, o in orders],
        [o.total_cents for _, o in orders],
        [o.version for _, o in orders],
        [events[0].recorded_at for events, _ in orders],
        [events[-1].recorded_at for events, _ in orders],
    )
    return len(rows)


Refold = Callable[[Connection, list[str]], Awaitable[int]]


async def _rebuild_order_read_model(
    pool: asyncpg.Pool, report: Callable[[int], Awaitable[None]], batch_size: int
) -> int:
    # Appends upsert this table in the same statement as their insert.
    pages = (_STREAMS_PAGE, _STALE_STREAMS, max(1, batch_size // 20))
    return await _rebuild_rows(pool, ORDER_READ_MODEL, pages, _refold_streams, report)


async def _rebuild_rows(
    pool: asyncpg.Pool,
    table: str,
    pages: tuple[str, str, int],
    refold: Refold,
    report: Callable[[int], Awaitable[None]],
) -> int:
    """Fold every stream `pages` names into the shadow of `table` (one row a stream), then catch
    up under a lock and swap. `pages`: the query of a page of streams, the query of the streams
    whose shadow row is missing or behind, and how many streams a page holds."""
    streams_page, stale_streams, per_page = pages
    done = 0
    async with pool.acquire() as conn:
        await _create_shadows(conn, (table,))
        last = ""
        while page := [r[0] for r in await conn.fetch(streams_page, last, per_page)]:
            done += await refold(conn, page)
            last = page[-1]
            await report(done)
        async with conn.transaction():
            # The table is written in the same transaction as its streams' appends, so this
            # lock waits for appends in flight and holds new ones until the swap; reads go on.
            await conn.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
            stale = [r[0] for r in await conn.fetch(stale_streams)]
            for start in range(0, len(stale), per_page):
                done += await refold(conn, stale[start : start + per_page])
            await _swap_in(conn, (table,))
    return done


_CUSTOMER_STREAMS_PAGE = """
SELECT DISTINCT stream_id FROM events WHERE stream_id > $1 AND stream_id LIKE 'customer:%'
ORDER BY stream_id LIMIT $2
"""

_STALE_CUSTOMERS = f"""
SELECT e.stream_id FROM (
    SELECT stream_id, max(version) AS version FROM events WHERE stream_id LIKE 'customer:%'
    GROUP BY stream_id
) e
LEFT JOIN {CUSTOMERS}{SUFFIX} r ON 'customer:' || r.customer_id = e.stream_id
WHERE r.version IS DISTINCT FROM e.version
"""


async def _rebuild_customers(
    pool: asyncpg.Pool, report: Callable[[int], Awaitable[None]], batch_size: int
) -> int:
    """The rows hold what the events hold (sealed fields), and nothing of a forgotten
    customer's: a rebuild after an erasure shows the same erased customer."""

    async def refold(conn: Connection, stream_ids: list[str]) -> int:
        return await refold_customers(conn, f"{CUSTOMERS}{SUFFIX}", stream_ids)

    pages = (_CUSTOMER_STREAMS_PAGE, _STALE_CUSTOMERS, max(1, batch_size // 5))
    return await _rebuild_rows(pool, CUSTOMERS, pages, refold, report)
