"""A projection that records every event it applies, and helpers to write many orders fast."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from uuid import uuid4

import asyncpg

from domain.order import AddItem, CreateOrder, Event, PlaceOrder, decide, fold
from store.log.event_store import EventStore, Metadata, RecordedEvent
from store.read.subscriptions import Connection


class Recorder:
    """Inserts each applied event id under a primary key: applying one twice fails loudly."""

    name = "test_recorder"
    tables: tuple[str, ...] = ("applied_events",)

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent], suffix: str = "") -> None:
        await conn.execute(
            f"INSERT INTO applied_events{suffix} (event_id, position) "
            "SELECT * FROM unnest($1::uuid[], $2::bigint[])",
            [e.event_id for e in events],
            [e.position for e in events],
        )


def order_events(order_id: str, customer: str, items: int, *, place: bool) -> list[Event]:
    """A realistic order's events, produced by the decider itself."""
    state = fold([])
    events: list[Event] = []
    commands = [CreateOrder(order_id, customer, random.choice(["EUR", "USD"]))]
    commands += [
        AddItem(order_id, f"SKU-{i}", f"Item {i}", random.randint(1, 5000), random.randint(1, 5))
        for i in range(items)
    ]
    if place:
        commands.append(PlaceOrder(order_id))
    for command in commands:
        new = decide(command, state)
        state = fold(new, state)
        events += new
    return events


async def write_orders(store: EventStore, count: int, items: int = 8, *, concurrency: int = 8) -> list[str]:
    """`count` orders of `items` + 1 events each (+ 1 for the seven in ten placed), one append each."""
    order_ids = [str(uuid4()) for _ in range(count)]
    queue = list(order_ids)

    async def writer() -> None:
        while queue:
            order_id = queue.pop()
            events = order_events(
                order_id, f"customer-{random.randint(1, 40)}", items, place=random.random() < 0.7
            )
            await store.append(order_id, 0, events, uuid4(), Metadata(actor="test"), fold(events))

    await asyncio.gather(*(writer() for _ in range(concurrency)))
    return order_ids


async def insert_unknown_event(pool: asyncpg.Pool) -> None:
    """An event of a type this release does not know, as a newer release might write."""
    await pool.execute(
        "INSERT INTO events (stream_id, version, event_id, type, schema_version, data) "
        "VALUES ('from-the-future', 1, $1, 'OrderTeleported', 1, '{}')",
        uuid4(),
    )
