"""EventStore.read_events: the events a fold needs, the same as read_stream's, upcast alike."""

from __future__ import annotations

from uuid import uuid4

import asyncpg

from domain.order import ItemAdded, OrderCreated, OrderPlaced, fold
from store.log.event_store import EventStore, Metadata


async def test_read_events_gives_read_streams_events_and_the_same_fold(
    pool: asyncpg.Pool, store: EventStore, order_id: str
) -> None:
    events = [
        OrderCreated(order_id, "customer-1", "EUR"),
        ItemAdded("T-1", "Tea", 350, 2),
        ItemAdded("C-1", "Cup", 1200, 1),
        OrderPlaced(1900),
    ]
    command_id = uuid4()
    await store.append(order_id, 0, events, command_id, Metadata(command_id=str(command_id)), fold(events))
    # An item added before line notes existed: schema version 1, no note in its body.
    await pool.execute(
        """
        INSERT INTO events (stream_id, version, event_id, type, schema_version, data)
        VALUES ($1, 5, $2, 'ItemAdded', 1, $3)
        """,
        order_id,
        uuid4(),
        '{"sku": "P-1", "name": "Pot", "unit_price_cents": 3900, "quantity": 1}',
    )

    read = await store.read_events(order_id)

    assert read == [e.event for e in await store.read_stream(order_id)]
    assert read[-1] == ItemAdded("P-1", "Pot", 3900, 1, "")
    assert await store.read_events(order_id, 3, after_version=1) == events[1:3]
    assert fold(read).version == 5
