"""Pages of the log for programs that walk it: one stream by version, the whole log by checkpoint."""

from __future__ import annotations

import asyncpg

from store.log.event_store import EVENT_COLUMNS, RecordedEvent, recorded_event
from store.read.subscriptions import Checkpoint, read_batch

_STREAM_PAGE = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE stream_id = $1 AND version > $2
ORDER BY version
LIMIT $3
"""


async def read_stream_page(
    pool: asyncpg.Pool, stream_id: str, after_version: int, limit: int
) -> list[RecordedEvent]:
    """A stream's events after `after_version`, oldest first.

    Versions of a stream become visible in order (version n + 1 is appended
    only on top of a committed n), so a version is a safe cursor.
    """
    rows = await pool.fetch(_STREAM_PAGE, stream_id, after_version, limit)
    return [recorded_event(row) for row in rows]


async def read_log_page(
    pool: asyncpg.Pool, after: Checkpoint, limit: int
) -> list[tuple[RecordedEvent, Checkpoint]]:
    """The whole log after `after`, in commit-safe order (see store.read.subscriptions)."""
    async with pool.acquire() as conn:
        return await read_batch(conn, after, limit)
