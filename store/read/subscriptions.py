"""Catch-up subscriptions: read the log in commit-safe order and apply it exactly once.

A reader that walks the log by `position` alone can skip an event: positions
are taken when a row is inserted, not when its transaction commits, so a
transaction that took position 10 may commit after position 11 was read.
Instead a subscription reads only rows whose transaction is older than every
transaction still running (`tx_id < pg_snapshot_xmin(pg_current_snapshot())`),
in `(tx_id, position)` order, and keeps that pair as its checkpoint. A row can
no longer appear behind the checkpoint once its transaction is below that
horizon.

An event the projection cannot apply is tried again per the runner's retry
policy; when it still fails, its order's stream is parked for this
subscription (store/read/parking): its later events wait behind it while
the other orders' events go on.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from store.leader import JobFailed, Leader
from store.log.event_store import EVENT_COLUMNS, RecordedEvent, recorded_event
from store.log.notifier import EVENTS_CHANNEL
from store.read.parking import (
    NOT_THE_EVENTS_FAULT,
    SUBSCRIPTION_RETRY,
    RetryPolicy,
    describe,
    park,
    parked_streams_of,
)

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
# its lock, or a rebuild that swapped tables meanwhile, finds no row and its
# transaction is rolled back with the effects it made. The row lock it takes
# also makes a retry or skip of a parked stream (store/read/parking) wait, or
# this batch wait for it.
_FENCE = """
SELECT 1 FROM subscriptions WHERE name = $1 AND tx_id = $2::text::xid8 AND position = $3 FOR UPDATE
"""

_ADVANCE = """
UPDATE subscriptions
SET tx_id = $2::text::xid8, position = $3, events_applied = events_applied + $4,
    last_event_at = $5, updated_at = now(), leader = $6
WHERE name = $1
"""


class Fenced(Exception):
    """Another runner or a rebuild moved the checkpoint; start again from the table."""


# Not a failure of any event: the leader starts again, and nothing is counted or parked.
_RAISED_AS_THEY_ARE: tuple[type[Exception], ...] = (Fenced, *NOT_THE_EVENTS_FAULT)


async def read_batch(
    conn: Connection, after: Checkpoint, limit: int
) -> list[tuple[RecordedEvent, Checkpoint]]:
    return [(recorded_event(row), _checkpoint(row)) for row in await read_rows(conn, after, limit)]


async def read_rows(conn: Connection, after: Checkpoint, limit: int) -> list[asyncpg.Record]:
    """The next rows after `after`, still undecoded: an event that cannot be read fails alone."""
    return await conn.fetch(_READ_BATCH, str(after.tx_id), after.position, limit)


def _checkpoint(row: asyncpg.Record) -> Checkpoint:
    return Checkpoint(int(row[9]), row[0])


async def load_checkpoint(conn: Connection, name: str) -> Checkpoint:
    await conn.execute(_ENSURE, name)
    row = await conn.fetchrow(_LOAD_CHECKPOINT, name)
    assert row is not None
    return Checkpoint(int(row[0]), row[1])


def _lock_key(name: str) -> str:
    return f"orders.subscription.{name}"


class SubscriptionRunner(Leader):
    """Runs one projection as a catch-up subscription, on at most one app instance at a time.

    The leader (store/leader) LISTENs for appends and also catches up every
    `poll_interval` seconds; another instance's runner, retrying every
    `lock_retry` seconds, takes over when it is lost. A batch the projection
    refuses is applied again one event at a time; the event that fails is
    tried `retry.attempts` times (counted by this leader), with the policy's
    pauses, then its stream is parked.
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
        retry: RetryPolicy = SUBSCRIPTION_RETRY,
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
            # release) must not stop for good: it retries, says why, and parks it.
            retry_any_error=True,
            backoff=retry.backoff,
            max_backoff=retry.max_backoff,
        )
        self.pool = pool
        self.projection = projection
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retry = retry
        self.on_batch = on_batch
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
        self.attempts: dict[object, int] = {}  # failed tries of an event, by event id
        # The checkpoint as this runner last read or moved it, and when (time.monotonic()).
        self._left: tuple[Checkpoint, float] | None = None

    async def catch_up(self) -> int:
        """Apply everything below the horizon; return the number of events applied.

        The checkpoint is read from the table unless this runner read or moved it less than
        `poll_interval` seconds ago; then it reads on from where it left it, two statements fewer.
        Each batch is fenced on the table's checkpoint either way: a remembered one that moved
        meanwhile (a rebuild swapped its tables in, another instance led) commits nothing, and
        is read again from the table, the batch with it.
        """
        # While leading, on the lock connection: no pool acquire and release a catch-up, and
        # the pool's connections stay free for requests. Called alone (tests, tools), on the pool.
        if self.connection is not None:
            return await self._catch_up(self.connection)
        async with self.pool.acquire() as conn:
            return await self._catch_up(conn)

    async def _catch_up(self, conn: Connection) -> int:
        applied = 0
        left, self._left = self._left, None  # remembered again only when this catch-up ends well
        remembered = left is not None and time.monotonic() - left[1] < self.poll_interval
        if left is not None and remembered:
            checkpoint, known_at = left
        else:
            checkpoint, known_at = await load_checkpoint(conn, self.projection.name), time.monotonic()
        while True:
            rows = await read_rows(conn, checkpoint, self.batch_size)
            if not rows:
                break
            try:
                checkpoint, count = await self._apply_batch(conn, rows, checkpoint)
            except Fenced:
                if not remembered:
                    raise
                remembered = False
                checkpoint, known_at = await load_checkpoint(conn, self.projection.name), time.monotonic()
                continue
            # Committed: from here on, a fence is another runner's doing, as before.
            remembered, known_at = False, time.monotonic()
            applied += count
            if self.on_batch is not None:
                await self.on_batch(len(rows))
            if len(rows) < self.batch_size:
                break
        self._left = checkpoint, known_at
        self.attempts.clear()
        return applied

    async def _apply_batch(
        self, conn: Connection, rows: list[asyncpg.Record], after: Checkpoint
    ) -> tuple[Checkpoint, int]:
        """The batch at once, else one event at a time (JobFailed: an event failed, to retry)."""
        try:
            return await self._apply(conn, rows, after)
        except _RAISED_AS_THEY_ARE:
            raise
        except Exception:
            checkpoint, count, failure = await self._apply_one_by_one(conn, rows, after)
            if failure is not None:
                raise JobFailed(failure) from failure
            return checkpoint, count

    async def _begin(self, conn: Connection, after: Checkpoint) -> set[str]:
        """In the batch's transaction: fence the checkpoint; the streams parked for this subscription."""
        if await conn.fetchval(_FENCE, self.projection.name, str(after.tx_id), after.position) is None:
            raise Fenced(self.projection.name)
        # A statement of its own, after the lock: its snapshot sees a retry or skip that
        # committed while the lock was waited for (one statement would read the parked
        # streams as they were before it, and hold back an event the retry did not apply).
        return await parked_streams_of(conn, self.projection.name)

    async def _advance(self, conn: Connection, rows: list[asyncpg.Record], count: int) -> Checkpoint:
        last = _checkpoint(rows[-1])
        await conn.execute(
            *(_ADVANCE, self.projection.name, str(last.tx_id), last.position, count, rows[-1][8]),
            self.identity,
        )
        return last

    async def _apply(
        self, conn: Connection, rows: list[asyncpg.Record], after: Checkpoint
    ) -> tuple[Checkpoint, int]:
        """The batch in one transaction with its checkpoint, held events of parked streams left out."""
        async with conn.transaction():
            parked = await self._begin(conn, after)
            events = [recorded_event(row) for row in rows if row[1] not in parked]
            if events:
                await self.projection.apply(conn, events)
            return await self._advance(conn, rows, len(events)), len(events)

    async def _apply_one_by_one(
        self, conn: Connection, rows: list[asyncpg.Record], after: Checkpoint
    ) -> tuple[Checkpoint, int, Exception | None]:
        """Each event in a savepoint of its own; stop at one that fails and has tries left, park it after.

        Returns the new checkpoint, the events applied, and the error to retry after a pause.
        """
        name = self.projection.name
        done: list[asyncpg.Record] = []
        applied = 0
        failure: Exception | None = None
        async with conn.transaction():
            parked = await self._begin(conn, after)
            for row in rows:
                if row[1] not in parked:
                    try:
                        async with conn.transaction():
                            await self.projection.apply(conn, [recorded_event(row)])
                    except NOT_THE_EVENTS_FAULT:
                        raise
                    except Exception as error:
                        tries = self.attempts[row[3]] = self.attempts.get(row[3], 0) + 1
                        where = f"{row[4]} v{row[2]} of order {row[1]}"
                        if tries < self.retry.attempts:
                            log.warning(
                                "%s: %s failed (try %d of %d)", *(name, where, tries, self.retry.attempts)
                            )
                            failure = error
                            break
                        await park(conn, name, row, _checkpoint(row).tx_id, describe(error), tries)
                        log.error(
                            "%s: parked order %s after %d tries of %s: %s",
                            *(name, row[1], tries, where, error),
                        )
                        del self.attempts[row[3]]
                        parked.add(row[1])
                    else:
                        applied += 1
                done.append(row)
            checkpoint = await self._advance(conn, done, applied) if done else after
        return checkpoint, applied, failure
