"""Catch-up subscriptions: read the log in commit-safe order and apply it exactly once.

A reader that walks the log by `position` alone can skip an event: positions
are taken when a row is inserted, not when its transaction commits, so a
transaction that took position 10 may commit after position 11 was read.
Instead a subscription reads only rows whose transaction is older than every
transaction still running (`tx_id < pg_snapshot_xmin(pg_current_snapshot())`),
in `(tx_id, position)` order, and keeps that pair as its checkpoint. A row can
no longer appear behind the checkpoint once its transaction is below that
horizon.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from store.leader import Leader
from store.log.event_store import EVENT_COLUMNS, RecordedEvent, recorded_event
from store.log.notifier import EVENTS_CHANNEL

log = logging.getLogger("orders.subscriptions")

Connection = asyncpg.Connection | PoolConnectionProxy


class Checkpoint(msgspec.Struct, frozen=True, order=True):
    tx_id: int = 0
    position: int = 0


class Projection(Protocol):
    """A read model kept by a subscription: `apply` folds a batch into its tables."""

    name: str
    tables: tuple[str, ...]

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent], suffix: str = "") -> None: ...


# Only rows below the horizon, in commit-safe order, after the checkpoint.
# (ORDER BY names the table's column: a bare `tx_id` would sort by the text
# output column below, and "1000" sorts before "999".)
_READ_BATCH = f"""
SELECT {EVENT_COLUMNS}, tx_id::text AS tx_id_text FROM events
WHERE (tx_id, position) > ($1::text::xid8, $2)
  AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY events.tx_id, events.position
LIMIT $3
"""

_ENSURE = "INSERT INTO subscriptions (name) VALUES ($1) ON CONFLICT (name) DO NOTHING"

_LOAD_CHECKPOINT = "SELECT tx_id::text, position FROM subscriptions WHERE name = $1"

# The checkpoint moves only from where this runner read it: a runner that lost
# its lock, or a rebuild that swapped tables meanwhile, updates no row and its
# transaction is rolled back with the effects it made.
_ADVANCE = """
UPDATE subscriptions
SET tx_id = $2::text::xid8, position = $3, events_applied = events_applied + $4,
    last_event_at = $5, updated_at = now(), leader = $8
WHERE name = $1 AND tx_id = $6::text::xid8 AND position = $7
"""


class Fenced(Exception):
    """Another runner or a rebuild moved the checkpoint; start again from the table."""


async def read_batch(
    conn: Connection, after: Checkpoint, limit: int
) -> list[tuple[RecordedEvent, Checkpoint]]:
    rows = await conn.fetch(_READ_BATCH, str(after.tx_id), after.position, limit)
    return [(recorded_event(row), Checkpoint(int(row[9]), row[0])) for row in rows]


async def load_checkpoint(conn: Connection, name: str) -> Checkpoint:
    await conn.execute(_ENSURE, name)
    row = await conn.fetchrow(_LOAD_CHECKPOINT, name)
    assert row is not None
    return Checkpoint(int(row[0]), row[1])


async def apply_batch(
    conn: Connection,
    projection: Projection,
    batch: list[tuple[RecordedEvent, Checkpoint]],
    after: Checkpoint,
    leader: str,
) -> Checkpoint:
    """Apply a batch and advance the checkpoint in one transaction; return the new checkpoint."""
    last = batch[-1][1]
    async with conn.transaction():
        status = await conn.execute(
            _ADVANCE,
            projection.name,
            str(last.tx_id),
            last.position,
            len(batch),
            batch[-1][0].recorded_at,
            str(after.tx_id),
            after.position,
            leader,
        )
        if status != "UPDATE 1":
            raise Fenced(projection.name)
        await projection.apply(conn, [event for event, _ in batch])
    return last


def _lock_key(name: str) -> str:
    return f"orders.subscription.{name}"


class SubscriptionRunner(Leader):
    """Runs one projection as a catch-up subscription, on at most one app instance at a time.

    The leader (store/leader) LISTENs for appends and also catches up every
    `poll_interval` seconds; another instance's runner, retrying every
    `lock_retry` seconds, takes over when it is lost.
    """

    def __init__(
        self,
        url: str,
        pool: asyncpg.Pool,
        projection: Projection,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        lock_retry: float = 1.0,
        on_batch: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(
            url,
            _lock_key(projection.name),
            self.catch_up,
            name=f"subscription {projection.name}",
            log=log,
            channel=EVENTS_CHANNEL,
            interval=poll_interval,
            lock_retry=lock_retry,
            retry_on=(Fenced,),
            # A projection that cannot apply an event (a bug, an event of a newer
            # release) must not stop for good: it retries, and says why meanwhile.
            retry_any_error=True,
        )
        self.pool = pool
        self.projection = projection
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.on_batch = on_batch
        self.identity = f"{socket.gethostname()}:{os.getpid()}"

    async def catch_up(self) -> int:
        """Apply everything below the horizon; return the number of events applied."""
        applied = 0
        async with self.pool.acquire() as conn:
            checkpoint = await load_checkpoint(conn, self.projection.name)
            while True:
                batch = await read_batch(conn, checkpoint, self.batch_size)
                if not batch:
                    return applied
                checkpoint = await apply_batch(conn, self.projection, batch, checkpoint, self.identity)
                applied += len(batch)
                if self.on_batch is not None:
                    await self.on_batch(len(batch))
                if len(batch) < self.batch_size:
                    return applied
