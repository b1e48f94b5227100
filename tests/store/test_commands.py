"""handle(): load the stream, decide, append; exactly once per command id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from uuid import uuid4

import asyncpg
import pytest

from domain.errors import EmptyOrder, ItemNotOnOrder, OrderNotDraft, PriceMismatch
from domain.order import AddItem, CancelOrder, CreateOrder, PlaceOrder, RemoveItem, fold
from store.commands import CommandResult, StaleVersion, handle
from store.event_store import EventStore
from store.read_model import OrderSummary, ReadModel

ReadModelCheck = Callable[[str], Awaitable[OrderSummary]]

EVENTS_AND_COMMANDS = """
SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM commands) AS commands
"""


async def stream_of(pool: asyncpg.Pool, order_id: str) -> list[tuple[int, str, dict[str, object]]]:
    rows = await pool.fetch(
        "SELECT version, type, data::text FROM events WHERE stream_id = $1 ORDER BY version", order_id
    )
    return [(r["version"], r["type"], json.loads(r["data"])) for r in rows]


async def test_every_command_writes_its_events(
    store: EventStore, pool: asyncpg.Pool, read_model_matches_log: ReadModelCheck, order_id: str
) -> None:
    commands = [
        CreateOrder(order_id, "customer-7", "GBP"),
        AddItem(order_id, "TEA-1", "Green tea", 450, 2),
        AddItem(order_id, "MUG-2", "Mug", 1200, 1),
        AddItem(order_id, "TEA-1", "Green tea", 450, 3),
        RemoveItem(order_id, "TEA-1", 1),
        RemoveItem(order_id, "MUG-2"),
        PlaceOrder(order_id),
        CancelOrder(order_id, "Customer changed their mind"),
    ]
    results = []
    for command in commands:
        results.append(await handle(store, command, command_id=uuid4()))
        await read_model_matches_log(order_id)

    assert await stream_of(pool, order_id) == [
        (1, "OrderCreated", {"order_id": order_id, "customer_id": "customer-7", "currency": "GBP"}),
        (2, "ItemAdded", {"sku": "TEA-1", "name": "Green tea", "unit_price_cents": 450, "quantity": 2}),
        (3, "ItemAdded", {"sku": "MUG-2", "name": "Mug", "unit_price_cents": 1200, "quantity": 1}),
        (4, "ItemAdded", {"sku": "TEA-1", "name": "Green tea", "unit_price_cents": 450, "quantity": 3}),
        (5, "ItemRemoved", {"sku": "TEA-1", "quantity": 1}),
        (6, "ItemRemoved", {"sku": "MUG-2", "quantity": 1}),
        (7, "OrderPlaced", {"total_cents": 1800}),
        (8, "OrderCancelled", {"reason": "Customer changed their mind"}),
    ]
    assert [(r.first_version, r.last_version, r.duplicate) for r in results] == [
        (v, v, False) for v in range(1, 9)
    ]
    final = results[-1].order
    assert (final.status, final.cancel_reason, final.version) == (
        "cancelled", "Customer changed their mind", 8,
    )
    assert [(line.sku, line.quantity) for line in final.lines] == [("TEA-1", 4)]


async def test_the_handler_records_who_and_why_in_the_metadata(
    store: EventStore, pool: asyncpg.Pool, order_id: str
) -> None:
    command_id, correlation_id = uuid4(), uuid4()
    await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=command_id,
                 actor="clerk@example.com", correlation_id=correlation_id)

    metadata = json.loads(await pool.fetchval("SELECT metadata::text FROM events WHERE stream_id = $1",
                                              order_id))
    assert metadata == {"command_id": str(command_id), "correlation_id": str(correlation_id),
                        "actor": "clerk@example.com"}


@pytest.mark.parametrize(
    ("command", "error", "message"),
    [
        (PlaceOrder("?"), OrderNotDraft, "only a draft order can be placed"),
        (AddItem("?", "W-1", "Widget", 999, 1), OrderNotDraft, "only a draft order can change its items"),
        (RemoveItem("?", "NOPE"), OrderNotDraft, "only a draft order"),
    ],
)
async def test_a_refused_command_on_a_placed_order_writes_nothing(
    store: EventStore, pool: asyncpg.Pool, read_model: ReadModel, order_id: str,
    command: PlaceOrder | AddItem | RemoveItem, error: type[Exception], message: str,
) -> None:
    await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=uuid4())
    await handle(store, AddItem(order_id, "W-1", "Widget", 250, 2), command_id=uuid4())
    await handle(store, PlaceOrder(order_id), command_id=uuid4())
    row_before, counts_before = await read_model.get_order(order_id), await pool.fetchrow(EVENTS_AND_COMMANDS)

    with pytest.raises(error, match=message):
        await handle(store, type(command)(order_id, *command.__struct_fields__[1:] and
                                          [getattr(command, f) for f in command.__struct_fields__[1:]]),
                     command_id=uuid4())

    assert await read_model.get_order(order_id) == row_before
    assert await pool.fetchrow(EVENTS_AND_COMMANDS) == counts_before


@pytest.mark.parametrize(
    ("make_command", "error"),
    [
        (lambda order_id: PlaceOrder(order_id), EmptyOrder),
        (lambda order_id: RemoveItem(order_id, "NOT-THERE"), ItemNotOnOrder),
        (lambda order_id: AddItem(order_id, "W-1", "Widget", 999, 1), PriceMismatch),
        (lambda order_id: RemoveItem(order_id, "W-1", 5), Exception),
    ],
)
async def test_a_domain_error_leaves_the_log_and_the_read_model_untouched(): ...
