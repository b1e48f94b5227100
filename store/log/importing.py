"""Load events into the log as they were: an `orders export` file, or a history the seed made.

Every event's hash chain is checked as it arrives (store/log/integrity.py's
`event_hash`, over the stored text of data and metadata), so a file changed
after its export is refused at the line that no longer fits, and nothing is
written: the whole load is one transaction. Events keep their ids,
recorded_at, metadata (actors, command ids) and hashes; an export's
positions are kept too. Their `tx_id` is this transaction's, so catch-up
readers see them as one new commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from domain.serialization import decode_event
from store.log.export import CSV_COLUMNS, ExportedEvent
from store.log.integrity import event_hash

BATCH = 5000
Connection = asyncpg.Connection | PoolConnectionProxy


class ImportRefused(Exception):
    """The events cannot be loaded as they are; `line` names the first that does not fit (1-based)."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {reason}" if line is not None else reason)
        self.line = line
        self.reason = reason


class LogEvent(msgspec.Struct, frozen=True, gc=False):
    """An event as the log stores it; `position` None lets the log number it."""

    position: int | None
    stream_id: str
    version: int
    event_id: UUID
    type: str
    schema_version: int
    recorded_at: datetime
    data: str  # as PostgreSQL prints the jsonb: the hash covers this text
    metadata: str
    hash: bytes


class ChainCheck:
    """Checks events in the order they will be written: versions 1..n per stream, hashes chained."""

    def __init__(self) -> None:
        self.heads: dict[str, tuple[int, bytes]] = {}
        self.last_position = 0
        self.events = 0

    def check(self, event: LogEvent, line: int | None = None) -> None:
        e = event
        if e.position is not None:
            if e.position <= self.last_position:
                raise ImportRefused(
                    f"position {e.position} comes after position {self.last_position}: "
                    "the lines are out of order",
                    line,
                )
            self.last_position = e.position
        version, previous = self.heads.get(e.stream_id, (0, None))
        if e.version != version + 1:
            raise ImportRefused(
                f"order {e.stream_id} goes from version {version} to version {e.version}: "
                "an event is missing or the lines are out of order",
                line,
            )
        try:
            decode_event(e.type, e.schema_version, e.data)
        except Exception as error:
            raise ImportRefused(
                f"order {e.stream_id} version {e.version} cannot be read: {error}", line
            ) from None
        fields = (e.stream_id, e.version, str(e.event_id), e.type, e.schema_version, e.data, e.metadata)
        if event_hash(previous, *fields, e.recorded_at) != e.hash:
            raise ImportRefused(
                f"order {e.stream_id} version {e.version}: the hash does not match the event and the hash "
                "before it; the event was changed after it was written",
                line,
            )
        self.heads[e.stream_id] = (e.version, e.hash)
        self.events += 1


_line_decoder = msgspec.json.Decoder(ExportedEvent)


def read_export(lines: Iterable[bytes]) -> Iterator[tuple[int, LogEvent]]:
    """The events of an NDJSON export, each with its line number; a line that is no event is refused."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            e = _line_decoder.decode(line)
            if e.hash is None:
                raise ValueError("it has no hash (exported before hashes were exported?)")
            yield (
                number,
                LogEvent(
                    e.position,
                    e.stream_id,
                    e.version,
                    UUID(e.event_id),
                    e.type,
                    e.schema_version,
                    datetime.fromisoformat(e.recorded_at),
                    bytes(e.data).decode(),
                    bytes(e.metadata).decode(),
                    bytes.fromhex(e.hash),
                ),
            )
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as error:
            raise ImportRefused(f"not an exported event: {error}", number) from None


# Every exported column but `position`, which the table assigns unless an import keeps the file's.
_COLUMNS = CSV_COLUMNS[1:]

# The commands the loaded events name, rebuilt from their metadata (the export
# carries no commands table): what keeps a retried command id from writing twice.
_COMMANDS = """
INSERT INTO commands (command_id, stream_id, first_version, last_version, recorded_at)
SELECT (metadata->>'command_id')::uuid, stream_id, min(version), max(version), min(recorded_at)
FROM events
WHERE tx_id = pg_current_xact_id() AND coalesce(metadata->>'command_id', '') <> ''
GROUP BY 1, 2
"""
_SET_POSITION = "SELECT setval(pg_get_serial_sequence('events', 'position'), max(position)) FROM events"
# What was placed or cancelled before the import was told to its customers then:
# the notifications workflow starts after the imported history.
_NOTIFIED_UP_TO = """
INSERT INTO subscriptions (name, tx_id, position) VALUES ('customer_notifications', pg_current_xact_id(), $1)
ON CONFLICT (name) DO UPDATE SET tx_id = EXCLUDED.tx_id, position = EXCLUDED.position, updated_at = now()
"""


async def write_events(
    conn: Connection, events: AsyncIterator[tuple[int | None, LogEvent]], *, notify_history: bool
) -> ChainCheck:
    """Check and write `events` (with their line numbers) inside the caller's transaction.

    Positions are kept when the events carry them (an import into an empty log),
    else numbered in the order given. `notify_history=False` starts the
    customer notifications after these events.
    """
    chain = ChainCheck()
    batch: list[LogEvent] = []
    keep_positions: bool | None = None
    async for line, event in events:
        chain.check(event, line)
        if keep_positions is None:
            keep_positions = event.position is not None
        elif keep_positions != (event.position is not None):
            raise ImportRefused("some events have a position and some do not", line)
        batch.append(event)
        if len(batch) == BATCH:
            await _copy(conn, batch, keep_positions)
            batch = []
    if batch:
        await _copy(conn, batch, bool(keep_positions))
    if not chain.events:
        return chain
    try:
        await conn.execute(_COMMANDS)
    except (asyncpg.UniqueViolationError, asyncpg.InvalidTextRepresentationError) as error:
        raise ImportRefused(f"the events' command ids do not fit together: {error}") from None
    if keep_positions:
        await conn.execute(_SET_POSITION)
    if not notify_history:
        await conn.execute(_NOTIFIED_UP_TO, await conn.fetchval("SELECT max(position) FROM events"))
    return chain


async def _copy(conn: Connection, batch: list[LogEvent], keep_positions: bool) -> None:
    rows = [
        (
            e.stream_id,
            e.version,
            e.event_id,
            e.type,
            e.schema_version,
            e.recorded_at,
            e.data,
            e.metadata,
            e.hash,
        )
        for e in batch
    ]
    try:
        if keep_positions:
            records = [(e.position, *row) for e, row in zip(batch, rows, strict=True)]
            await conn.copy_records_to_table("events", records=records, columns=CSV_COLUMNS)
        else:
            await conn.copy_records_to_table("events", records=rows, columns=_COLUMNS)
    except asyncpg.UniqueViolationError as error:
        raise ImportRefused(f"an event is already in the log: {error.detail or error}") from None


class NotEmpty(ImportRefused):
    pass


async def import_export(pool: asyncpg.Pool, lines: Iterable[bytes]) -> ChainCheck:
    """Load an NDJSON export into an empty log, all or nothing; the caller rebuilds the read models."""

    async def numbered() -> AsyncIterator[tuple[int | None, LogEvent]]:
        for line, event in read_export(lines):
            yield line, event

    async with pool.acquire() as conn, conn.transaction():
        # Nobody appends while the log is loaded: an append would take a position the file holds.
        await conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")
        if await conn.fetchval("SELECT EXISTS (SELECT FROM events)"):
            raise NotEmpty("the database already holds events; import only into an empty database")
        return await write_events(conn, numbered(), notify_history=False)
