"""The access log: sign-ins and their failures, sign-outs, accounts, roles and tokens changed.

Append-only (a trigger refuses UPDATE, DELETE and TRUNCATE, as on the events).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from domain.access import Actor


class Entry(msgspec.Struct, frozen=True):
    entry_id: int
    at: datetime
    kind: str
    actor_id: str | None
    actor_name: str | None
    subject: str | None
    detail: str
    client: str | None


_RECORD = """
INSERT INTO access_log (kind, actor_id, actor_name, subject, detail, client) VALUES ($1, $2, $3, $4, $5, $6)
"""
_PAGE = """
SELECT entry_id, at, kind, actor_id, actor_name, subject, detail, client FROM access_log
WHERE entry_id < $1 AND ($2::text IS NULL OR kind = $2) ORDER BY entry_id DESC LIMIT $3
"""
_KINDS = "SELECT DISTINCT kind FROM access_log ORDER BY kind"


async def append_entry(
    db: asyncpg.Pool | asyncpg.Connection | PoolConnectionProxy,
    kind: str,
    actor: Actor | None,
    subject: str | None = None,
    detail: str = "",
    client: str | None = None,
) -> None:
    """One entry; on a connection, inside its transaction (the entry is kept only if the change is)."""
    actor_id, name = (actor.id, actor.name) if actor else (None, None)
    await db.execute(_RECORD, kind, actor_id, name, subject, detail, client)


class AccessLog:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(
        self,
        kind: str,
        actor: Actor | None,
        subject: str | None = None,
        detail: str = "",
        client: str | None = None,
    ) -> None:
        await append_entry(self.pool, kind, actor, subject, detail, client)

    async def page(self, before: int | None = None, kind: str | None = None, limit: int = 50) -> list[Entry]:
        rows = await self.pool.fetch(_PAGE, before or 2**63 - 1, kind, limit)
        return [Entry(*row) for row in rows]

    async def kinds(self) -> list[str]:
        """The kinds of entry the log holds, to filter it by."""
        return [row[0] for row in await self.pool.fetch(_KINDS)]
