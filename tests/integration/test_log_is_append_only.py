"""The events table refuses every change but an insert, and each append wakes listeners."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import asyncpg
import pytest

from domain.errors import OrderAlreadyExists
from domain.order import AddItem, CreateOrder
from store.access.access_log import AccessLog
from store.log.commands import handle
from store.log.event_store import EventStore
from store.log.notifier import EVENTS_CHANNEL

ALL_EVENTS = "SELECT position, stream_id, version, type, data::text, metadata::text FROM events ORDER BY 1"


async def given_an_order_with_two_events(store: EventStore, order_id: str) -> None:
    await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=uuid4())
    await handle(store, AddItem(order_id, "W-1", "Widget", 250, 2), command_id=uuid4())


@pytest.mark.parametrize(
    "statement",
    [
        'UPDATE events SET metadata = metadata || \'{"actor": "mallory"}\' WHERE version = 2',
        "DELETE FROM events WHERE version = 2",
        "TRUNCATE events",
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


async def test_an_append_notifies_listeners_and_a_repeat_or_a_refusal_does_not(
    store: EventStore, database_url: str, order_id: str
) -> None:
    received: list[str] = []
    woken = asyncio.Event()

    def on_notify(conn: object, pid: int, channel: str, payload: object) -> None:
        received.append(str(payload))
        woken.set()

    async def next_notification() -> str:
        await asyncio.wait_for(woken.wait(), timeout=5)
        woken.clear()
        return received[-1]

    create_id = uuid4()
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener(EVENTS_CHANNEL, on_notify)
        await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=create_id)
        first = await next_notification()

        # Neither a repeated command nor a refused one appends, so neither notifies.
        await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=create_id)
        with pytest.raises(OrderAlreadyExists):
            await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=uuid4())
        # Notifications arrive in commit order: once this one is here, any earlier one would be too.
        await handle(store, AddItem(order_id, "W-1", "Widget", 250, 1), command_id=uuid4())
        second = await next_notification()
    finally:
        await listener.close()

    assert first.split()[0] == second.split()[0] == order_id
    assert len(received) == 2


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE access_log SET actor_name = 'mallory'",
        "DELETE FROM access_log",
        "TRUNCATE access_log",
    ],
)
async def test_the_access_log_refuses_every_change_but_an_insert(pool: asyncpg.Pool, statement: str) -> None:
    log = AccessLog(pool)
    await log.record("signed in", None, "ada", "", "127.0.0.1")
    before = await pool.fetch("SELECT * FROM access_log ORDER BY entry_id")

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="the access log is append-only"):
        await pool.execute(statement)
    assert await pool.fetch("SELECT * FROM access_log ORDER BY entry_id") == before
