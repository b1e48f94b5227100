"""Shared steps for the store tests: a fresh order id, and what an auditor would query."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import uuid4

import asyncpg
import pytest

from domain.order import fold
from store.log.event_store import EventStore
from store.read.read_model import OrderSummary, ReadModel

EventRows = Callable[[str], Awaitable[list[asyncpg.Record]]]
ReadModelCheck = Callable[[str], Awaitable[OrderSummary]]
READ_MODEL_FIELDS = "order_id customer_id currency status line_count item_count total_cents version".split()


@pytest.fixture
def order_id() -> str:
    return f"order-{uuid4()}"


@pytest.fixture
def event_rows(pool: asyncpg.Pool) -> EventRows:
    """The stream's rows in `events` as plain SQL shows them, oldest first."""

    async def rows(stream_id: str) -> list[asyncpg.Record]:
        return await pool.fetch(
            """
            SELECT position, stream_id, version, event_id, type, schema_version, data::text AS data,
                   metadata::text AS metadata, recorded_at, tx_id::text AS tx_id
            FROM events WHERE stream_id = $1 ORDER BY version
            """,
            stream_id,
        )

    return rows


@pytest.fixture
def read_model_matches_log(store: EventStore, read_model: ReadModel) -> ReadModelCheck:
    """Assert that the order's read-model row shows the fold of its stream; return the row."""

    async def check(stream_id: str) -> OrderSummary:
        order = fold(e.event for e in await store.read_stream(stream_id))
        row = await read_model.get_order(stream_id)
        assert row is not None, f"no read-model row for {stream_id}"
        shown = {field: getattr(row, field) for field in READ_MODEL_FIELDS}
        assert shown == {
            "order_id": order.order_id,
            "customer_id": order.customer_id,
            "currency": order.currency,
            "status": order.status,
            "line_count": len(order.lines),
            "item_count": order.item_count,
            "total_cents": order.total_cents,
            "version": order.version,
        }
        return row

    return check
