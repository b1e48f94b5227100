"""The event store: append to a stream, read a stream, read the whole log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from domain.customer import CustomerEvent
from domain.order import Event, Order
from domain.serialization import StoredEvent, decode_event, encode_events
from store.database import BurstConnections
from store.log.notifier import EVENTS_CHANNEL, Notifier
from store.log.recent import RecentStates


class Metadata(msgspec.Struct, frozen=True, gc=False):
    command_id: str = ""
    correlation_id: str = ""
    causation_id: str | None = None
    actor: str = "anonymous"  # the account's name (events from before accounts: "anonymous")
    actor_id: str | None = None  # the account's id, a token's, or system:<name>
    requested_at: str | None = None


class RecordedEvent(msgspec.Struct, frozen=True, gc=False):
    """An event as stored. `gc=False`: no cycles, as for the domain's values."""

    position: int
    stream_id: str
    version: int
    event_id: UUID
    type: str
    schema_version: int
    event: StoredEvent
    data: str
    metadata: Metadata
    recorded_at: datetime


class LogQuery(msgspec.Struct, frozen=True):
    """Which events a reader of the log wants, newest first: `limit` before position `before`."""

    before: int | None = None
    limit: int = 50
    type_name: str | None = None
    stream_id: str | None = None
    customer_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    below_tx: int | None = None  # only transactions below this horizon (xid8)
    actor: str | None = None  # only what this account (or token, or system actor) wrote, by name


class AppendResult(msgspec.Struct, frozen=True):
    stream_id: str
    first_version: int
    last_version: int
    duplicate: bool = False


class ConcurrencyError(Exception):
    def __init__(self, stream_id: str, expected_version: int, actual_version: int) -> None:
        super().__init__(f"stream {stream_id} is at version {actual_version}, not {expected_version}")
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version


metadata_encoder = msgspec.json.Encoder()
_metadata_decoder = msgspec.json.Decoder(Metadata)

# One statement, so one round trip and one implicit transaction: check the
# stream's head, record the command id, insert the events, upsert the order's
# read-model row and notify listeners. A command id seen before inserts
# nothing (ON CONFLICT waits for a concurrent twin to commit, then skips).
# A writer racing for the same version fails on events_stream_version.
# The events come as one JSON array of [type, schema version, body]
# (domain.serialization.encode_events). The event ids are made here
# (`incoming` is MATERIALIZED, so each row's id is made once: the id hashed is
# the id inserted).
# `chained` hashes the new events in version order, each over its content and
# the hash before it, starting from the hash at the head: event_hash() of
# migration 007 written out inline (EXPLAIN ANALYZE: the chain of five took half
# the time it did with a call per event), field by field in the same order, with the same
# "<length>:<text>" framing; tests/integration/test_append_chain.py checks the
# two agree. The time format quotes its colons so that pgbench (bench/pgbench.py)
# does not read ":MI" as one of its variables.
_APPEND = """
WITH RECURSIVE head AS (
    SELECT coalesce(max(version), 0) AS version FROM events WHERE stream_id = $1
), command AS (
    INSERT INTO commands (command_id, stream_id, first_version, last_version)
    SELECT $3::uuid, $1, $2 + 1, $2 + (SELECT count(*) FROM incoming) FROM head WHERE head.version = $2
    ON CONFLICT (command_id) DO NOTHING
    RETURNING last_version
), incoming AS MATERIALIZED (
    SELECT e.n, gen_random_uuid() AS event_id, e.event->>0 AS type, (e.event->>1)::smallint AS schema_version,
           e.event->2 AS data
    FROM jsonb_array_elements($4::jsonb) WITH ORDINALITY AS e(event, n)
), fixed AS (
    SELECT length($1::text) || ':' || $1::text AS stream, $5::jsonb AS metadata,
           length($5::jsonb::text) || ':' || $5::jsonb::text
           || '26:' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":"SS.US') AS tail
), chained AS (
    SELECT 0::bigint AS n, (SELECT hash FROM events WHERE stream_id = $1 AND version = $2) AS hash
    UNION ALL
    SELECT i.n, sha256(coalesce(c.hash, ''::bytea) || convert_to(
               f.stream || length(($2 + i.n)::text) || ':' || ($2 + i.n)::text
               || '36:' || i.event_id::text || length(i.type) || ':' || i.type
               || length(i.schema_version::text) || ':' || i.schema_version::text
               || length(i.data::text) || ':' || i.data::text || f.tail, 'UTF8'))
    FROM chained c JOIN incoming i ON i.n = c.n + 1 CROSS JOIN fixed f
), appended AS (
    INSERT INTO events (stream_id, version, event_id, type, schema_version, data, metadata, recorded_at, hash)
    SELECT $1, $2 + i.n, i.event_id, i.type, i.schema_version, i.data, f.metadata, now(), c.hash
    FROM incoming i JOIN chained c ON c.n = i.n CROSS JOIN fixed f
    WHERE EXISTS (SELECT FROM command)
    RETURNING position
), read_model AS (
    INSERT INTO order_read_model AS o (order_id, customer_id, currency, status, line_count,
                                       item_count, total_cents, version, created_at, updated_at)
    SELECT $1, $6, $7, $8, $9, $10, $11, command.last_version, now(), now() FROM command
    WHERE $8::text IS NOT NULL
    ON CONFLICT (order_id) DO UPDATE SET
        status = EXCLUDED.status, line_count = EXCLUDED.line_count,
        item_count = EXCLUDED.item_count, total_cents = EXCLUDED.total_cents,
        version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
    RETURNING 1
), notified AS (
    SELECT pg_notify($12, $1 || ' ' || command.last_version) FROM command
)
SELECT (SELECT version FROM head) AS head,
       (SELECT last_version FROM command) AS last_version,
       (SELECT max(position) FROM appended) AS last_position,
       (SELECT count(*) FROM read_model) + (SELECT count(*) FROM notified) AS side_effects
"""

_FIND_COMMAND = """
SELECT stream_id, first_version, last_version FROM commands WHERE command_id = $1
"""

EVENT_COLUMNS = (
    "position, stream_id, version, event_id, type, schema_version, data::text, metadata::text, recorded_at"
)

_READ_STREAM = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE stream_id = $1 AND version > $3 AND version <= $2
ORDER BY version
"""

# What a fold reads of each event, and nothing else.
FOLD_COLUMNS = "type, schema_version, data::text"

_READ_EVENTS = f"""
SELECT {FOLD_COLUMNS} FROM events
WHERE stream_id = $1 AND version > $3 AND version <= $2
ORDER BY version
"""

_HEAD = "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1"

_VERSION_AT = """
SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1 AND recorded_at <= $2
"""

_READ_ALL = f"""
SELECT {EVENT_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2
"""

_READ_LOG = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE position < $1 AND ($2::text IS NULL OR type = $2) AND ($3::text IS NULL OR stream_id = $3)
  AND ($4::text IS NULL OR stream_id IN (SELECT order_id FROM order_read_model WHERE customer_id = $4))
  AND ($5::timestamptz IS NULL OR recorded_at >= $5) AND ($6::timestamptz IS NULL OR recorded_at < $6)
  AND ($7::text IS NULL OR tx_id < $7::text::xid8) AND ($9::text IS NULL OR metadata->>'actor' = $9)
ORDER BY position DESC LIMIT $8
"""


_ACTORS = """
SELECT DISTINCT metadata->>'actor' FROM events WHERE stream_id = $1 AND version > $2 AND version <= $3
ORDER BY 1
"""


def recorded_event(row: asyncpg.Record) -> RecordedEvent:
    """A row of EVENT_COLUMNS (extra columns after them are ignored)."""
    position, stream_id, version, event_id, type_name, schema_version, data, metadata, at = row[:9]
    return RecordedEvent(
        position,
        stream_id,
        version,
        event_id,
        type_name,
        schema_version,
        decode_event(type_name, schema_version, data),
        data,
        _metadata_decoder.decode(metadata),
        at,
    )


# The same append for a store whose Notifier wakes listeners after the commit.
_APPEND_QUIET = _APPEND.replace(
    "SELECT pg_notify($12, $1 || ' ' || command.last_version) FROM command",
    "SELECT $12::text FROM command",
)
assert _APPEND_QUIET != _APPEND
# The append as the app runs it (web/app.py gives it a Notifier): NOTIFY in the statement when alone.
APPEND_STATEMENTS = {"alone": _APPEND, "among others": _APPEND_QUIET}


class EventStore:
    def __init__(self, pool: asyncpg.Pool, *, notifier: Notifier | None = None) -> None:
        """With a `notifier` (whose run() the caller keeps running), appends notify after commit."""
        self.pool = pool
        self.notifier = notifier
        self.recent = RecentStates()
        self._appending = 0  # appends of this store in flight
        # The Notifier's NOTIFYs go on the same connections as the appends whose streams they name.
        shared = notifier is not None and notifier.pool is pool
        self._burst = notifier.connections if notifier is not None and shared else BurstConnections(pool)

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[StoredEvent],
        command_id: UUID,
        metadata: Metadata,
        order: Order | None = None,
        *,
        conn: asyncpg.Connection | PoolConnectionProxy | None = None,
    ) -> AppendResult:
        """Append `events` after `expected_version`, with the order's new read-model row.

        On `conn` (in the caller's transaction, which a lost race aborts) instead of the pool.
        """
        row: tuple[Any, ...] = (None,) * 6
        if order is not None:
            row = (
                order.customer_id,
                order.currency,
                order.status,
                len(order.lines),
                order.item_count,
                order.total_cents,
            )
        # An append alone in this process NOTIFYs in its own statement: no second
        # statement for the Notifier, and no other append of ours to hold up while
        # its commit keeps the lock NOTIFY takes. With others in flight, the
        # Notifier wakes listeners after the commit, once for all of them. An
        # append in the caller's transaction (`conn`) NOTIFYs in it: delivered
        # when that transaction commits, never before.
        notifier = self.notifier
        quiet = notifier is not None and notifier.running and self._appending > 0 and conn is None
        self._appending += 1
        try:
            result = await (self._burst.fetchrow if conn is None else conn.fetchrow)(
                _APPEND_QUIET if quiet else _APPEND,
                stream_id,
                expected_version,
                command_id,
                # One JSON parameter for all the events: one msgspec call, and no
                # per-element work (asyncpg checks each element of an array it binds).
                encode_events(events).decode(),
                metadata_encoder.encode(metadata).decode(),
                *row,
                EVENTS_CHANNEL,
            )
            assert result is not None
            last_version = result["last_version"]
            if quiet and last_version is not None:
                assert notifier is not None
                if notifier.running:
                    notifier.appended(stream_id, last_version)
                else:  # it stopped (shutting down) while we were appending
                    await notifier.send({stream_id: last_version})
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name != "events_stream_version":
                raise
            # Another writer took the version between our check and insert.
            previous = await self.find_command(command_id)
            if previous is not None:
                return previous
            raise ConcurrencyError(stream_id, expected_version, expected_version + 1) from None
        finally:
            self._appending -= 1
            if notifier is not None and not self._appending:
                notifier.idle()
        if last_version is not None:
            if order is not None and order.version == last_version:
                self.recent.put(stream_id, order)
            else:
                self.recent.forget(stream_id)
            return AppendResult(stream_id, expected_version + 1, last_version)
        previous = await self.find_command(command_id)
        if previous is not None:
            return previous
        raise ConcurrencyError(stream_id, expected_version, result["head"])

    async def find_command(self, command_id: UUID) -> AppendResult | None:
        row = await self.pool.fetchrow(_FIND_COMMAND, command_id)
        if row is None:
            return None
        return AppendResult(row["stream_id"], row["first_version"], row["last_version"], True)

    async def read_stream(
        self, stream_id: str, up_to_version: int | None = None, *, after_version: int = 0
    ) -> list[RecordedEvent]:
        """The stream's events after `after_version`, up to `up_to_version` (default: all)."""
        limit = 2**31 - 1 if up_to_version is None else up_to_version
        rows = await self.pool.fetch(_READ_STREAM, stream_id, limit, after_version)
        return [recorded_event(row) for row in rows]

    async def read_events(
        self, stream_id: str, up_to_version: int | None = None, *, after_version: int = 0
    ) -> list[Event]:
        """An order stream's events as a fold needs them: the domain's events, no envelope."""
        return cast(list[Event], await self._read_events(stream_id, up_to_version, after_version))

    async def read_customer_events(self, stream_id: str) -> list[CustomerEvent]:
        """A customer stream's events (domain/customer.py), for its fold."""
        return cast(list[CustomerEvent], await self._read_events(stream_id, None, 0))

    async def _read_events(
        self, stream_id: str, up_to_version: int | None, after_version: int
    ) -> list[StoredEvent]:
        limit = 2**31 - 1 if up_to_version is None else up_to_version
        rows = await self.pool.fetch(_READ_EVENTS, stream_id, limit, after_version)
        return [decode_event(type_name, schema_version, data) for type_name, schema_version, data in rows]

    async def stream_version(self, stream_id: str) -> int:
        """The stream's latest version (0: no such stream)."""
        version: int = await self.pool.fetchval(_HEAD, stream_id)
        return version

    async def version_at(self, stream_id: str, moment: datetime) -> int:
        """The stream's version as it stood at `moment` (0: it did not exist yet)."""
        version: int = await self.pool.fetchval(_VERSION_AT, stream_id, moment)
        return version

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """Events by global position, oldest first, after the position `after`."""
        rows = await self.pool.fetch(_READ_ALL, after, limit)
        return [recorded_event(row) for row in rows]

    async def actors(self, stream_id: str, after: int, up_to: int) -> list[str]:
        """The names of whoever wrote the stream's versions after `after`, up to `up_to`."""
        return [row[0] for row in await self.pool.fetch(_ACTORS, stream_id, after, up_to)]

    async def read_log(self, query: LogQuery) -> list[RecordedEvent]:
        """Events newest first, for people reading the log."""
        q = query
        if any("\x00" in text for text in (q.type_name, q.stream_id, q.customer_id, q.actor) if text):
            return []  # PostgreSQL text cannot hold NUL, so nothing matches
        start = 2**63 - 1 if q.before is None else q.before
        below = None if q.below_tx is None else str(q.below_tx)
        rows = await self.pool.fetch(
            _READ_LOG,
            start,
            q.type_name,
            q.stream_id,
            q.customer_id,
            q.since,
            q.until,
            below,
            q.limit,
            q.actor,
        )
        return [recorded_event(row) for row in rows]
