"""The record of each `orders verify` run: what it found, and the head of every stream it found sound,
which the next run checks is still there."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

# The findings a run keeps for the admin page; the report printed by `orders verify` has them all.
KEPT_FINDINGS = 100


class Finding(msgspec.Struct, frozen=True):
    kind: str
    stream_id: str
    detail: str


class Report(msgspec.Struct):
    started_at: datetime
    finished_at: datetime
    streams: int
    events: int
    read_model_rows: int
    digest: str
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings


_SAVE_ANCHORS = """
INSERT INTO verified_heads (stream_id, version, hash, verified_at)
SELECT * FROM unnest($1::text[], $2::int[], $3::bytea[], $4::timestamptz[])
ON CONFLICT (stream_id) DO UPDATE SET
    version = EXCLUDED.version, hash = EXCLUDED.hash, verified_at = EXCLUDED.verified_at
"""
_SAVE_RUN = """
INSERT INTO verify_runs (started_at, finished_at, streams, events, problems, findings, digest)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
"""
_LAST_RUN = """
SELECT started_at, finished_at, streams, events, problems, findings::text, digest
FROM verify_runs ORDER BY id DESC LIMIT 1
"""


class VerifyRun(msgspec.Struct, frozen=True):
    """A run as recorded for the admin page."""

    started_at: datetime
    finished_at: datetime
    streams: int
    events: int
    problems: int
    findings: list[Finding]
    digest: str

    @property
    def ok(self) -> bool:
        return self.problems == 0


async def record_run(pool: asyncpg.Pool, report: Report, heads: list[tuple[str, int, bytes]]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        for start in range(0, len(heads), 10_000):
            chunk = heads[start : start + 10_000]
            await conn.execute(
                _SAVE_ANCHORS,
                [h[0] for h in chunk],
                [h[1] for h in chunk],
                [h[2] for h in chunk],
                [report.finished_at] * len(chunk),
            )
        await conn.execute(
            _SAVE_RUN,
            report.started_at,
            report.finished_at,
            report.streams,
            report.events,
            len(report.findings),
            msgspec.json.encode(report.findings[:KEPT_FINDINGS]).decode(),
            report.digest,
        )


async def last_run(pool: asyncpg.Pool) -> VerifyRun | None:
    """The most recent verify run, or None when there has been none."""
    row = await pool.fetchrow(_LAST_RUN)
    if row is None:
        return None
    started, finished, streams, events, problems, findings, digest = row
    return VerifyRun(started, finished, streams, events, problems, _findings.decode(findings), digest)


_findings = msgspec.json.Decoder(list[Finding])
