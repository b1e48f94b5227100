"""A rebuilt read model holds, byte for byte, what folding each order one event at a time gives,
however the rebuild holds, writes early, spills and loads back its orders."""

from __future__ import annotations

import json
from typing import cast
from uuid import uuid4

import asyncpg
import msgspec
import pytest

from domain.order import (
    AddItem,
    CancelOrder,
    Command,
    CreateOrder,
    Event,
    Order,
    PlaceOrder,
    RemoveItem,
    evolve,
    initial_state,
)
from domain.serialization import decode_event
from store.log.commands import handle
from store.log.event_store import EventStore
from store.read.projections import PROJECTIONS
from store.read.replay import rebuild
from store.read.subscriptions import SubscriptionRunner
from tests.support.subscriptions import write_orders

ORDER_ROWS = {
    "customer_summaries": "SELECT order_id, customer_id, currency, status, total_cents, state, updated_at "
    "FROM customer_orders ORDER BY order_id",
    "sales_by_day": "SELECT order_id, currency, state FROM sales_orders ORDER BY order_id",
}
AGGREGATE = {
    "customer_summaries": "SELECT customer_id, draft, placed, cancelled, placed_value::text, last_activity "
    "FROM customer_summaries ORDER BY customer_id",
    "sales_by_day": "SELECT * FROM sales_by_day ORDER BY day, currency",
}


async def a_realistic_log(store: EventStore, pool: asyncpg.Pool) -> None:
    """Whole orders appended at once; then orders changed a command at a time, spread over the
    log (items added, merged, removed, orders placed and cancelled); then an order stored at
    old schema versions, which is upcast as it is read."""
    await write_orders(store, 60, items=6)
    order_ids = [str(uuid4()) for _ in range(30)]
    rounds: list[list[Command]] = [
        [CreateOrder(o, f"customer-{n % 4}", "EUR" if n % 3 else "USD") for n, o in enumerate(order_ids)]
    ]
    for r in range(5):
        rounds.append(
            [AddItem(o, f"SKU-{r % 3}", "Item", 100 * (r % 3 + 1) + n, 2) for n, o in enumerate(order_ids)]
        )
    rounds.append([RemoveItem(o, "SKU-0", 1) for o in order_ids[::4]])
    rounds.append([RemoveItem(o, "SKU-1") for o in order_ids[1::5]])
    rounds.append([PlaceOrder(o) for o in order_ids[::2]])
    rounds.append([CancelOrder(o, "changed my mind") for o in order_ids[::3]])
    for commands in rounds:
        for command in commands:
            await handle(store, command, command_id=uuid4())
    legacy = [
        ("OrderCreated", 1, {"order_id": "legacy-1", "customer_id": "customer-1", "currency": "EUR"}),
        ("ItemAdded", 1, {"sku": "OLD-1", "name": "Old item", "unit_price_cents": 250, "quantity": 3}),
        ("OrderPlaced", 1, {"total_cents": 750}),
    ]
    for version, (type_name, schema_version, body) in enumerate(legacy, 1):
        await pool.execute(
            "INSERT INTO events (stream_id, version, event_id, type, schema_version, data) "
            "VALUES ('legacy-1', $1, $2, $3, $4, $5::jsonb)",
            version,
            uuid4(),
            type_name,
            schema_version,
            json.dumps(body),
        )


async def folded_one_event_at_a_time(pool: asyncpg.Pool, name: str) -> list[tuple[object, ...]]:
    """The order rows of `name` as the domain's evolve gives them, event by event."""
    rows = await pool.fetch(
        "SELECT stream_id, type, schema_version, data::text, recorded_at FROM events "
        "WHERE stream_id NOT LIKE 'customer:%' ORDER BY stream_id, version"
    )
    states: dict[str, Order] = {}
    last: dict[str, object] = {}
    for stream_id, type_name, schema_version, data, recorded_at in rows:
        event = cast(Event, decode_event(type_name, schema_version, data))
        states[stream_id] = evolve(states.get(stream_id, initial_state), event)
        last[stream_id] = recorded_at
    expected = []
    for order_id, state in sorted(states.items()):
        encoded = msgspec.json.encode(state).decode()
        if name == "customer_summaries":
            total = sum(line.unit_price_cents * line.quantity for line in state.lines)
            expected.append(
                (order_id, state.customer_id, state.currency, state.status, total, encoded, last[order_id])
            )
        else:
            expected.append((order_id, state.currency, encoded))
    return expected


async def rows_of(pool: asyncpg.Pool, query: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in await pool.fetch(query)]


# (batch size, orders held, window): the defaults; and small enough that orders are written
# early, written again when they come back, spilled at capacity and loaded back.
SHAPES = [(2000, 20_000, 1000), (7, 25, 3), (7, 1000, 3), (50, 1000, 5)]


@pytest.mark.parametrize("name", sorted(PROJECTIONS))
async def test_a_rebuild_writes_the_rows_an_event_at_a_time_fold_gives(
    database_url: str, pool: asyncpg.Pool, store: EventStore, name: str
) -> None:
    await a_realistic_log(store, pool)
    await SubscriptionRunner(database_url, pool, PROJECTIONS[name], batch_size=11).catch_up()
    expected = await folded_one_event_at_a_time(pool, name)
    assert len(expected) == 91
    assert await rows_of(pool, ORDER_ROWS[name]) == expected  # the live subscription's
    kept = await rows_of(pool, AGGREGATE[name])

    for batch_size, hold, window in SHAPES:
        await rebuild(pool, name, batch_size=batch_size, hold=hold, window=window)
        assert await rows_of(pool, ORDER_ROWS[name]) == expected, (batch_size, hold, window)
        assert await rows_of(pool, AGGREGATE[name]) == kept, (batch_size, hold, window)
