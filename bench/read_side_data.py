"""Test data for the read-side bench: many orders in bulk, and one very long order."""

from __future__ import annotations

import random
from uuid import uuid4

import asyncpg

from domain.order import AddItem, Command, CreateOrder, Event, RemoveItem, decide, fold
from domain.serialization import encode_event, event_type
from store.log.event_store import EventStore, Metadata, metadata_encoder
from tests.support.subscriptions import order_events

EVENTS_PER_ORDER = 10
TEMPLATES = 64
CUSTOMER_MARK = "customer-TEMPLATE"

# Templates are expanded in SQL: each new order copies a template's events with
# its own order id and customer. No hash chain is written (the column is
# nullable): replay and export do not read it.
_BULK = """
INSERT INTO events (stream_id, version, event_id, type, schema_version, data, metadata)
SELECT o.id, t.version, gen_random_uuid(), t.type, t.schema_version,
       replace(replace(t.data, t.template_id, o.id), $8, o.customer)::jsonb, $9::jsonb
FROM unnest($1::text[], $2::text[], $3::int[]) WITH ORDINALITY AS o(id, customer, template, n)
JOIN unnest($4::int[], $5::int[], $6::text[], $7::text[], $10::smallint[], $11::text[])
     AS t(template, version, type, data, schema_version, template_id)
  ON t.template = o.template
ORDER BY o.n, t.version
"""


def _templates() -> list[tuple[str, list[Event]]]:
    found = []
    for _ in range(TEMPLATES):
        template_id = str(uuid4())
        place = random.random() < 0.7
        events = order_events(template_id, CUSTOMER_MARK, 8 if place else 9, place=place)
        assert len(events) == EVENTS_PER_ORDER
        found.append((template_id, events))
    return found


async def bulk_orders(pool: asyncpg.Pool, orders: int, chunk: int = 10_000) -> int:
    """Insert `orders` valid orders of 10 events each; return the number of events."""
    templates = _templates()
    t_index: list[int] = []
    t_version: list[int] = []
    t_type: list[str] = []
    t_data: list[str] = []
    t_schema: list[int] = []
    t_id: list[str] = []
    for index, (template_id, events) in enumerate(templates):
        for version, event in enumerate(events, 1):
            t_index.append(index)
            t_version.append(version)
            t_type.append(event_type(event))
            t_data.append(encode_event(event).decode())
            t_schema.append(event.schema_version)
            t_id.append(template_id)
    metadata = metadata_encoder.encode(Metadata(actor="bench")).decode()
    customers = max(40, orders // 20)
    for start in range(0, orders, chunk):
        size = min(chunk, orders - start)
        await pool.execute(
            _BULK,
            [str(uuid4()) for _ in range(size)],
            [f"customer-{random.randint(1, customers)}" for _ in range(size)],
            [random.randrange(TEMPLATES) for _ in range(size)],
            t_index,
            t_version,
            t_type,
            t_data,
            CUSTOMER_MARK,
            metadata,
            t_schema,
            t_id,
        )
    return orders * EVENTS_PER_ORDER


async def long_order(store: EventStore, length: int, chunk: int = 500) -> str:
    """One draft order of `length` events (created, then items added and removed), via the store."""
    order_id = str(uuid4())
    state = fold([])
    pending: list[Event] = []
    written = 0

    async def flush() -> None:
        nonlocal pending, written
        await store.append(order_id, written, pending, uuid4(), Metadata(actor="bench"), state)
        written += len(pending)
        pending = []

    for n in range(length):
        if n == 0:
            command: Command = CreateOrder(order_id, "customer-long", "EUR")
        elif n % 2:
            command = AddItem(order_id, "SKU-1", "Item 1", 1234, 1 + n % 5)
        else:
            command = RemoveItem(order_id, "SKU-1")
        new = decide(command, state)
        state = fold(new, state)
        pending += new
        if len(pending) >= chunk:
            await flush()
    if pending:
        await flush()
    assert state.version == length
    return order_id
