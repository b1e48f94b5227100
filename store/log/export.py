"""Audit export: the log as NDJSON or CSV, streamed through a server-side cursor.

Rows are fetched a page at a time inside one read-only transaction, so an
export of a million events holds no more than a page in memory and sees one
consistent snapshot of the log.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import asyncpg
import msgspec

FORMATS = ("ndjson", "csv")
CSV_COLUMNS = (
    "position",
    "stream_id",
    "version",
    "event_id",
    "type",
    "schema_version",
    "recorded_at",
    "data",
    "metadata",
    "hash",
)
PAGE = 1000

_SELECT = """
SELECT position, stream_id, version, event_id::text, type, schema_version, recorded_at,
       data::text, metadata::text, encode(hash, 'hex')
FROM events WHERE ($1::text IS NULL OR stream_id = $1) ORDER BY position
"""


class ExportedEvent(msgspec.Struct, frozen=True):
    """One line of the NDJSON export: the event exactly as stored (old shapes not upcast)."""

    position: int
    stream_id: str
    version: int
    event_id: str
    type: str
    schema_version: int
    recorded_at: str
    data: msgspec.Raw
    metadata: msgspec.Raw
    hash: str | None = None  # the stream's hash chain at this event, hex (store/log/integrity.py)


_encoder = msgspec.json.Encoder()


async def export(pool: asyncpg.Pool, fmt: str, stream_id: str | None = None) -> AsyncIterator[bytes]:
    """Yield the export in chunks of about PAGE events."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        if fmt == "csv":
            yield _csv_rows([CSV_COLUMNS])
        cursor = conn.cursor(_SELECT, stream_id, prefetch=PAGE)
        page: list[asyncpg.Record] = []
        async for row in cursor:
            page.append(row)
            if len(page) == PAGE:
                yield _chunk(fmt, page)
                page = []
        if page:
            yield _chunk(fmt, page)


def _chunk(fmt: str, rows: list[asyncpg.Record]) -> bytes:
    if fmt == "csv":
        return _csv_rows([(*r[:6], r[6].isoformat(), r[7], r[8], r[9]) for r in rows])
    out = bytearray()
    for r in rows:
        line = ExportedEvent(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6].isoformat(),
            msgspec.Raw(r[7].encode()),
            msgspec.Raw(r[8].encode()),
            r[9],
        )
        out += _encoder.encode(line)
        out += b"\n"
    return bytes(out)


def _csv_rows(rows: list[tuple[object, ...]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()
