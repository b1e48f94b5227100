"""A projection with a bug that refuses chosen orders, for the tests of parked streams."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import UUID, uuid4

import asyncpg

from domain.order import AddItem, decide, fold
from store.log.event_store import EventStore, Metadata, RecordedEvent
from store.read.subscriptions import Connection, Projection
from tests.support.subscriptions import order_events


async def create_applied_in_order(pool: asyncpg.Pool) -> None:
    # The primary key refuses an event applied twice; `n` keeps the order they were applied in.
    await pool.execute(
        "CREATE TABLE applied_in_order (n bigint GENERATED ALWAYS AS IDENTITY, "
        "event_id uuid PRIMARY KEY, stream_id text NOT NULL, version int NOT NULL)"
    )


class Refuses:
    """Records each event it applies, in order; refuses every event of the orders in `broken` (the bug)."""

    name = "test_refuser"
    tables: tuple[str, ...] = ("applied_in_order",)

    def __init__(self, *broken: str) -> None:
        self.broken = set(broken)
        self.only_version: int | None = None  # refuse only this version of a broken order
        self.tries: dict[tuple[str, int], int] = {}  # single-event applies of a broken order's event

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent], suffix: str = "") -> None:
        for e in events:
            if e.stream_id in self.broken and self.only_version in (None, e.version):
                if len(events) == 1:
                    key = (e.stream_id, e.version)
                    self.tries[key] = self.tries.get(key, 0) + 1
                raise RuntimeError(f"cannot apply {e.type} v{e.version}")
        await conn.execute(
            "INSERT INTO applied_in_order (event_id, stream_id, version) "
            "SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[])",
            [e.event_id for e in events],
            [e.stream_id for e in events],
            [e.version for e in events],
        )


async def new_order(store: EventStore, customer: str = "ada") -> str:
    """A draft with two items, in one append."""
    order_id = f"order-{uuid4()}"
    events = order_events(order_id, customer, 2, place=False)
    await store.append(order_id, 0, events, uuid4(), Metadata(actor="test"), fold(events))
    return order_id


async def add_item(store: EventStore, order_id: str, sku: str) -> None:
    stream = await store.read_stream(order_id)
    state = fold(e.event for e in stream)
    events = decide(AddItem(order_id, sku, f"Item {sku}", 100, 1), state)
    await store.append(order_id, len(stream), events, uuid4(), Metadata(actor="test"), fold(events, state))


class Faulty:
    """A real workflow (or projection) with a fault: it cannot handle the events `refuses` picks.

    It records every event it handled.
    """

    def __init__(self, real: Projection, refuses: Callable[[RecordedEvent], bool]) -> None:
        self.real = real
        self.name = real.name
        self.tables = real.tables
        self.refuses = refuses
        self.handled: list[UUID] = []  # event ids, in the order handled

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent], suffix: str = "") -> None:
        for e in events:
            if self.refuses(e):
                raise RuntimeError(f"cannot handle {e.type} v{e.version}")
        await self.real.apply(conn, events, suffix)
        self.handled.extend(e.event_id for e in events)
