"""Old event shapes are upcast when read and never rewritten."""

from __future__ import annotations

import json
from uuid import uuid4

import asyncpg

from domain.order import ItemAdded, fold
from store.log.event_store import EventStore

V1_ITEM = {"sku": "OLD-1", "name": "Written before notes", "unit_price_cents": 250, "quantity": 2}


async def test_rows_in_the_old_shape_are_upcast_when_read_and_left_as_they_are(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    order_id = str(uuid4())
    await pool.execute(
        """
        INSERT INTO events (stream_id, version, event_id, type, schema_version, data) VALUES
        ($1, 1, $2, 'OrderCreated', 1, $3::jsonb), ($1, 2, $4, 'ItemAdded', 1, $5::jsonb)
        """,
        order_id,
        uuid4(),
        json.dumps({"order_id": order_id, "customer_id": "c-old", "currency": "EUR"}),
        uuid4(),
        json.dumps(V1_ITEM),
    )
    events = await store.read_stream(order_id)
    assert events[1].schema_version == 1
    assert events[1].event == ItemAdded("OLD-1", "Written before notes", 250, 2, note="")
    assert fold(e.event for e in events).lines[0].note == ""
    row = await pool.fetchrow(
        "SELECT schema_version, data FROM events WHERE stream_id = $1 AND version = 2", order_id
    )
    assert row["schema_version"] == 1
    assert json.loads(row["data"]) == V1_ITEM, "the stored row was rewritten"
