"""The database as a reader of the log sees it: events, handled commands, and the orders' read-model rows."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg


class Ledger:
    """What a reader of the database sees: events, handled commands and read-model rows."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def event_count(self) -> int:
        count: int = await self.pool.fetchval("SELECT count(*) FROM events")
        return count

    async def counts(self) -> tuple[int, int]:
        """How many events and how many handled commands the database holds."""
        row = await self.pool.fetchrow(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM commands)"
        )
        assert row is not None
        return row[0], row[1]

    async def events(self, order_id: str) -> list[tuple[str, dict[str, Any]]]:
        rows = await self.pool.fetch(
            "SELECT type, data::text FROM events WHERE stream_id = $1 ORDER BY version", order_id
        )
        return [(row["type"], json.loads(row["data"])) for row in rows]

    async def event_types(self, order_id: str) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT type FROM events WHERE stream_id = $1 ORDER BY version", order_id
        )
        return [row["type"] for row in rows]

    async def row(self, order_id: str | None) -> dict[str, Any] | None:
        if order_id is None:
            return None
        row = await self.pool.fetchrow("SELECT * FROM order_read_model WHERE order_id = $1", order_id)
        return None if row is None else dict(row)

    @asynccontextmanager
    async def unchanged(self, order_id: str | None = None) -> AsyncIterator[None]:
        """Assert that the block writes no event or command and leaves the order's read-model row alone."""
        before = (await self.counts(), await self.row(order_id))
        yield
        after = (await self.counts(), await self.row(order_id))
        assert after == before, "the request wrote to the database"
