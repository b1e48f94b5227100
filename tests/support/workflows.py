"""Workflows under test: their runners as tasks, senders that record or fail, orders made by commands."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import asyncpg

from domain.order import AddItem, CancelOrder, CreateOrder, PlaceOrder
from store.log.commands import CommandResult, handle
from store.log.event_store import EventStore
from store.workflows.outbox import Notification


@contextlib.asynccontextmanager
async def running(*jobs: Any) -> AsyncIterator[None]:
    """Run each job's `run()` as a task for the duration of the block."""
    tasks = [asyncio.create_task(job.run()) for job in jobs]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class RecordingSender:
    """Remembers every notification it was given."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        self.sent.append(notification)


class FlakySender(RecordingSender):
    """Fails the first `failures` sends of each notification, then delivers."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.tries: dict[int, int] = {}

    async def send(self, notification: Notification) -> None:
        self.tries[notification.id] = self.tries.get(notification.id, 0) + 1
        if self.tries[notification.id] <= self.failures:
            raise ConnectionError(f"mail server unreachable (try {self.tries[notification.id]})")
        await super().send(notification)


async def draft(store: EventStore, customer: str = "alice", *items: tuple[str, int, int]) -> str:
    """A draft order with `items` (sku, unit price in cents, quantity), one command each."""
    order_id = str(uuid4())
    await handle(store, CreateOrder(order_id, customer, "EUR"), command_id=uuid4())
    for sku, price, quantity in items or (("TEA-1", 350, 2),):
        await handle(store, AddItem(order_id, sku, f"Item {sku}", price, quantity), command_id=uuid4())
    return order_id


async def place(store: EventStore, order_id: str) -> CommandResult:
    return await handle(store, PlaceOrder(order_id), command_id=uuid4())


async def cancel(store: EventStore, order_id: str, reason: str = "Changed my mind") -> CommandResult:
    return await handle(store, CancelOrder(order_id, reason), command_id=uuid4())


async def outbox_rows(pool: asyncpg.Pool, order_id: str | None = None) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM outbox WHERE $1::text IS NULL OR order_id = $1 ORDER BY id", order_id
    )
