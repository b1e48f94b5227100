"""The events table refuses every change but an insert, and each append wakes listeners."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import asyncpg
import pytest

from domain.errors import OrderAlreadyExists
from domain.order import AddItem, CreateOrder
from store.commands import handle
from store.event_store import EVENTS_CHANNEL, EventStore

ALL_EVENTS = "SELECT position, stream_id, version, type, data::text, metadata::text FROM events ORDER BY 1"


async def given_an_order_with_two_events(store: EventStore, order_id: str) -> None:
    await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=uuid4())
    await handle(store, AddItem(order_id, "W-1", "Widget", 250, 2), command_id=uuid4())


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET data = '{}'::jsonb",
        "UPDATE events SET metadata = metadata || '{\"actor\": \"mallory\"}' WHERE version = 2",
        "DELETE FROM events",
        "DELETE FROM events WHERE version = 2",
        "TRUNCATE events",
        "TRUNCATE events CASCADE",
    ],
)
async def test_changing_a_recorded_event_is_refused(
    store: EventStore, pool: asyncpg.Pool, order_id: str, statement: str
) -> None:
    await given_an_order_with_two_events(store, order_id)
    before = await pool.fetch(ALL_EVENTS)

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="events are immutable"):
        await pool.execute(statement)

    assert len(before) == 2
    assert await pool.fetch(ALL_EVENTS) == before


async def test_a_refused_change_inside_a_transaction_rolls_it_back(
    store: EventStore, pool: asyncpg.Pool, order_id: str
) -> None:
    await given_an_order_with_two_events(store, order_id)
    before = await pool.fetch(ALL_EVENTS)

    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await conn.execute("UPDATE order_read_model SET status = 'placed'")
                await conn.execute("DELETE FROM events WHERE stream_id = $1", order_id)

    assert await pool.fetch(ALL_EVENTS) == before
    assert await pool.fetchval("SELECT status FROM order_read_model WHERE order_id = $1", order_id) == "draft"


async def test_an_append_notifies_listeners_with_the_stream_id(
    store: EventStore, database_url: str, order_id: str
) -> None:
    received: list[str] = []
    woken = asyncio.Event()

    def on_notify(conn: object, pid: int, channel: str, payload: str) -> None:
        received.append(payload)
        woken.set()

    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener(EVENTS_CHANNEL, on_notify)
        await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=uuid4())
        await asyncio.wait_for(woken.wait(), timeout=5)
    finally:
        await listener.close()

    assert len(received) == 1
    assert received[0].split()[0] == order_id


async def test_a_repeated_or_refused_append_does_not_notify(
    store: EventStore, database_url: str, order_id: str
) -> None:
    create_id = uuid4()
    await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=create_id)
    received: list[str] = []
    woken = asyncio.Event()

    def on_notify(conn: object, pid: int, channel: str, payload: str) -> None:
        received.append(payload)
        woken.set()

    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener(EVENTS_CHANNEL, on_notify)
        await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=create_id)
        with pytest.raises(OrderAlreadyExists):
            await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=uuid4())
        # A marker append afterwards: once its notification arrives, any earlier one would have too.
        await handle(store, AddItem(order_id, "W-1", "Widget", 250, 1), command_id=uuid4())
        await asyncio.wait_for(woken.wait(), timeout=5)
    finally:
        await listener.close()

    assert [p.split()[0] for p in received] == [order_id]
