"""Orders to tamper with, and changes made behind the app's back as an intruder with SQL access would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import uuid4

import asyncpg

from domain.order import AddItem, CancelOrder, CreateOrder, PlaceOrder
from store.log.commands import handle
from store.log.event_store import EventStore


async def orders(store: EventStore, count: int = 3) -> list[str]:
    """Orders in every state: a draft with two lines, a placed one, a cancelled one, …"""
    ids = []
    for n in range(count):
        order_id = str(uuid4())
        await handle(store, CreateOrder(order_id, f"customer-{n}", "EUR"), command_id=uuid4())
        await handle(store, AddItem(order_id, "TEA-1", "Green tea", 350, 2), command_id=uuid4())
        await handle(store, AddItem(order_id, "CUP-1", "Cup ☕ \u202e", 1200, 1), command_id=uuid4())
        if n % 3 == 1:
            await handle(store, PlaceOrder(order_id), command_id=uuid4())
        elif n % 3 == 2:
            await handle(store, CancelOrder(order_id, "Changed my mind"), command_id=uuid4())
        ids.append(order_id)
    return ids


@asynccontextmanager
async def behind_the_apps_back(pool: asyncpg.Pool) -> AsyncIterator[Any]:
    """A connection with the immutability trigger lifted, as an intruder with the owner's rights would."""
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_refuse_change")
        try:
            yield conn
        finally:
            await conn.execute("ALTER TABLE events ENABLE TRIGGER events_refuse_change")


async def change(conn: Any, stream_id: str, version: int, assignment: str) -> None:
    await conn.execute(
        f"UPDATE events SET {assignment} WHERE stream_id = $1 AND version = $2", stream_id, version
    )
