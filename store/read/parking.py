"""Parked streams: an event a subscription cannot apply after its retries waits, with its order's next.

The subscription's runner (store/read/subscriptions) parks the order's stream
for that subscription: a `parked_streams` row names the failing event, and
from then on the runner holds back every later event of that order while its
checkpoint moves on for the others. Held events are not copied anywhere: they
are the stream's versions from the parked one on, up to the checkpoint, read
again from the log. An admin retries them (after a fix) or skips the failing
one with a reason; every parking, retry and skip is written to the
append-only `parking_log`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg
import msgspec

from domain.access import Actor, require
from store.database import UNAVAILABLE
from store.log.event_store import EVENT_COLUMNS, recorded_event

if TYPE_CHECKING:
    from store.read.subscriptions import Connection, Projection

MAX_ERROR = 500

# Errors that say nothing about the event (the connection, a lost race, a statement
# cancelled or timed out while it waited): retried, never counted against it.
NOT_THE_EVENTS_FAULT: tuple[type[Exception], ...] = (
    *UNAVAILABLE,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.QueryCanceledError,
)


class RetryPolicy(msgspec.Struct, frozen=True):
    """How often a failing event or message is tried before it is parked, and the pauses between."""

    attempts: int = 5
    backoff: float = 1.0  # seconds after the first failure, doubling after each next one
    max_backoff: float = 30.0

    def delay(self, failures: int) -> float:
        return float(min(self.max_backoff, self.backoff * 2 ** (failures - 1)))


SUBSCRIPTION_RETRY = RetryPolicy()
OUTBOX_RETRY = RetryPolicy(attempts=10, backoff=2.0, max_backoff=3600.0)


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_ERROR]


class ParkedStream(msgspec.Struct, frozen=True):
    subscription: str
    stream_id: str
    version: int
    position: int
    event_id: UUID
    event_type: str
    error: str
    attempts: int
    parked_at: datetime
    last_tried_at: datetime
    waiting: int  # the order's later events, held behind the parked one


class ParkingEntry(msgspec.Struct, frozen=True):
    """A line of the parking log: an event or message parked, retried, skipped or dropped."""

    entry_id: int
    at: datetime
    kind: str
    subscription: str
    stream_id: str
    event_id: UUID | None
    version: int | None
    event_type: str | None
    notification_id: int | None
    error: str
    reason: str
    actor_name: str | None


class NotParked(Exception):
    """Nothing of that subscription and order is parked (any more)."""


class Resumed(msgspec.Struct, frozen=True):
    """What a retry or skip did: how many held events it applied, and the stream if it is parked again."""

    applied: int
    parked_again: ParkedStream | None


_PARKED_COLUMNS = (
    "p.subscription, p.stream_id, p.version, p.position, p.event_id, p.event_type, p.error, p.attempts, "
    "p.parked_at, p.last_tried_at, "
    "(SELECT count(*) FROM events e WHERE e.stream_id = p.stream_id AND e.version > p.version)"
)

_LIST = f"SELECT {_PARKED_COLUMNS} FROM parked_streams p ORDER BY p.parked_at, p.subscription, p.stream_id"

_ONE = f"SELECT {_PARKED_COLUMNS} FROM parked_streams p WHERE p.subscription = $1 AND p.stream_id = $2"

_STREAMS_OF = "SELECT stream_id FROM parked_streams WHERE subscription = $1"

_LOG = """
INSERT INTO parking_log (kind, subscription, stream_id, event_id, version, event_type, notification_id,
                         error, reason, actor_id, actor_name)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""

_PARK = """
INSERT INTO parked_streams (subscription, stream_id, version, position, tx_id, event_id, event_type,
                            error, attempts)
VALUES ($1, $2, $3, $4, $5::text::xid8, $6, $7, $8, $9)
"""

# The held events a retry applies: the stream's from `version` on, up to the checkpoint.
# Later ones the runner has not read yet; it applies them itself once the stream is free.
_HELD = f"""
SELECT {EVENT_COLUMNS}, tx_id::text FROM events
WHERE stream_id = $1 AND version >= $2 AND (tx_id, position) <= ($3::text::xid8, $4)
ORDER BY version
"""

_PARK_AGAIN = """
UPDATE parked_streams
SET version = $3, position = $4, tx_id = $5::text::xid8, event_id = $6, event_type = $7, error = $8,
    attempts = CASE WHEN event_id = $6 THEN attempts + 1 ELSE 1 END, last_tried_at = now()
WHERE subscription = $1 AND stream_id = $2
"""

_UNPARK = "DELETE FROM parked_streams WHERE subscription = $1 AND stream_id = $2"

_ENTRIES = """
SELECT entry_id, at, kind, subscription, stream_id, event_id, version, event_type, notification_id,
       error, reason, actor_name
FROM parking_log WHERE kind = ANY($1::text[]) ORDER BY entry_id
"""


async def parked_streams_of(conn: Connection, subscription: str) -> set[str]:
    return {row[0] for row in await conn.fetch(_STREAMS_OF, subscription)}


async def park(
    conn: Connection, subscription: str, row: asyncpg.Record, tx_id: int, error: str, attempts: int
) -> None:
    """Park the stream of `row` (a row of EVENT_COLUMNS) for `subscription`, in the caller's transaction."""
    position, stream_id, version, event_id, event_type = row[:5]
    await conn.execute(
        _PARK, subscription, stream_id, version, position, str(tx_id), event_id, event_type, error, attempts
    )
    await conn.execute(
        _LOG, "parked", subscription, stream_id, event_id, version, event_type, None, error, "", None, None
    )


async def log_entry(
    conn: Connection,
    kind: str,
    subscription: str,
    stream_id: str,
    actor: Actor,
    *,
    event_id: UUID | None = None,
    version: int | None = None,
    event_type: str | None = None,
    notification_id: int | None = None,
    error: str = "",
    reason: str = "",
) -> None:
    await conn.execute(
        *(_LOG, kind, subscription, stream_id, event_id, version, event_type, notification_id),
        *(error, reason, actor.id, actor.name),
    )


async def entries(pool: asyncpg.Pool, kinds: Iterable[str]) -> list[ParkingEntry]:
    """The parking log's entries of these kinds, oldest first."""
    return [ParkingEntry(*row) for row in await pool.fetch(_ENTRIES, list(kinds))]


class Parking:
    """The parked streams of the subscriptions in `projections`: list, retry, skip the failing event."""

    def __init__(self, pool: asyncpg.Pool, projections: Mapping[str, Projection]) -> None:
        self.pool = pool
        self.projections = projections

    async def parked(self) -> list[ParkedStream]:
        return [ParkedStream(*row) for row in await self.pool.fetch(_LIST)]

    async def find(self, subscription: str, stream_id: str) -> ParkedStream:
        row = await self.pool.fetchrow(_ONE, subscription, stream_id)
        if row is None or subscription not in self.projections:
            raise NotParked(f"Nothing of order {stream_id[:80]} is parked for {subscription[:80]}.")
        return ParkedStream(*row)

    async def retry(self, subscription: str, stream_id: str, actor: Actor) -> Resumed:
        """Apply the held events in order, the failing one first; one that fails again stays parked."""
        return await self._resume(subscription, stream_id, actor, None)

    async def skip(self, subscription: str, stream_id: str, actor: Actor, reason: str) -> Resumed:
        """Skip the failing event for this subscription (recorded with `reason`) and apply the rest."""
        return await self._resume(subscription, stream_id, actor, reason)

    async def _resume(self, name: str, stream_id: str, actor: Actor, skip_reason: str | None) -> Resumed:
        require(actor, "administer")
        await self.find(name, stream_id)
        projection = self.projections[name]
        async with self.pool.acquire() as conn, conn.transaction():
            # The subscription's row first, as its runner and a rebuild take it: the runner's
            # next batch waits until this is done, and then sees the stream free, so a held
            # event is applied once, here or by the runner, and none is left behind.
            checkpoint = await conn.fetchrow(
                "SELECT tx_id::text, position FROM subscriptions WHERE name = $1 FOR UPDATE", name
            )
            row = await conn.fetchrow(_ONE + " FOR UPDATE OF p", name, stream_id)
            if checkpoint is None or row is None:
                raise NotParked(f"Nothing of order {stream_id[:80]} is parked for {name} any more.")
            parked = ParkedStream(*row)
            first = parked.version
            if skip_reason is not None:
                first += 1
            await log_entry(
                *(conn, "retried" if skip_reason is None else "skipped", name, stream_id, actor),
                event_id=parked.event_id,
                version=parked.version,
                event_type=parked.event_type,
                error=parked.error,
                reason=skip_reason or "",
            )
            applied = 0
            for held in await conn.fetch(_HELD, stream_id, first, checkpoint[0], checkpoint[1]):
                try:
                    async with conn.transaction():
                        await projection.apply(conn, [recorded_event(held)])
                except NOT_THE_EVENTS_FAULT:
                    raise
                except Exception as error:
                    position, _, version, event_id, event_type = held[:5]
                    await conn.execute(
                        *(_PARK_AGAIN, name, stream_id, version, position, held[9], event_id, event_type),
                        describe(error),
                    )
                    again = await conn.fetchrow(_ONE, name, stream_id)
                    assert again is not None
                    return Resumed(applied, ParkedStream(*again))
                applied += 1
            await conn.execute(_UNPARK, name, stream_id)
            return Resumed(applied, None)
