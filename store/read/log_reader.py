"""The whole log below its horizon, read ahead on a connection of its own, for rebuilds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import cast

import asyncpg

from domain.customer import CUSTOMER_EVENT_TYPES
from domain.order import EVENT_TYPES, Event
from domain.serialization import CURRENT_DECODERS, decode_event
from store.read.projections import Batch, Fact
from store.read.subscriptions import Checkpoint

_ORDER_DECODERS = {name: CURRENT_DECODERS[name] for name in EVENT_TYPES}


# Every event below the horizon of the cursor's snapshot, in the subscriptions'
# order (ORDER BY names the table's columns, as in read_batch); only the
# columns a fold reads, and the checkpoint's.
_READ_BELOW_HORIZON = """
SELECT stream_id, version, type, schema_version, data::text, recorded_at, tx_id::text, position FROM events
WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY events.tx_id, events.position
"""


def _batch(rows: list[asyncpg.Record]) -> tuple[Batch, int]:
    """The rows' order events by order, and how many there are, in one loop (this runs for
    every event of a rebuild)."""
    batch: Batch = {}
    previous = batch.get
    skipped = 0
    for stream_id, version, type_name, schema_version, data, recorded_at, _, _ in rows:
        current = _ORDER_DECODERS.get(type_name)
        if current is not None and current[0] == schema_version:
            event = current[1].decode(data)
        elif type_name in CUSTOMER_EVENT_TYPES:
            skipped += 1  # the order folds read order streams only; customers have a read model of their own
            continue
        else:  # an older version, upcast, or a type this release does not know
            event = cast(Event, decode_event(type_name, schema_version, data))
        batch[stream_id] = Fact(version, event, recorded_at, previous(stream_id))
    return batch, len(rows) - skipped


# What the reader hands over: a batch's order events by order, how many there are, and the
# checkpoint after it.
Read = tuple[Batch, int, Checkpoint]


async def _read_ahead(
    pool: asyncpg.Pool, batch_size: int, queue: asyncio.Queue[Read | Exception | None]
) -> None:
    """Put the log below the horizon on `queue` in batches, then None, or what stopped the reading."""
    try:
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            cursor = await conn.cursor(_READ_BELOW_HORIZON)
            # The server reads the next batch while this one is decoded and folded.
            ahead = asyncio.ensure_future(cursor.fetch(batch_size))
            try:
                while rows := await ahead:
                    ahead = asyncio.ensure_future(cursor.fetch(batch_size))
                    last = Checkpoint(int(rows[-1][6]), rows[-1][7])
                    await queue.put((*_batch(rows), last))
            finally:
                ahead.cancel()
                await asyncio.gather(ahead, return_exceptions=True)
    except Exception as error:  # the reader is waiting for the queue: hand it over
        await queue.put(error)
        return
    await queue.put(None)


async def log_below_horizon(pool: asyncpg.Pool, batch_size: int) -> AsyncGenerator[Read, None]:
    """The log as of now, in batches, read and decoded on another connection while the caller writes.

    One cursor, so one snapshot: every event below its horizon is committed
    and visible, and what commits later is after the last checkpoint yielded.
    """
    queue: asyncio.Queue[Read | Exception | None] = asyncio.Queue(maxsize=2)
    reader = asyncio.create_task(_read_ahead(pool, batch_size, queue))
    try:
        while (batch := await queue.get()) is not None:
            if isinstance(batch, Exception):
                raise batch
            yield batch
    finally:  # also when the caller stops early: the reader may be waiting to put
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
