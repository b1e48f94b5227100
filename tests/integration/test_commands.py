"""handle(): load the stream, decide, append; exactly once per command id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from uuid import uuid4

import asyncpg
import pytest

from domain.access import Actor
from domain.errors import (
    DomainError,
    ItemNotOnOrder,
    OrderAlreadyExists,
    OrderNotDraft,
    OrderNotFound,
    PriceMismatch,
    RemoveQuantityTooLarge,
)
from domain.order import AddItem, CancelOrder, Command, CreateOrder, PlaceOrder, RemoveItem, fold
from store.log.commands import CommandResult, StaleVersion, handle
from store.log.event_store import EventStore
from store.read.read_model import OrderSummary, ReadModel

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
    commands: list[Command] = [
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
        (
            2,
            "ItemAdded",
            {"sku": "TEA-1", "name": "Green tea", "unit_price_cents": 450, "quantity": 2, "note": ""},
        ),
        (
            3,
            "ItemAdded",
            {"sku": "MUG-2", "name": "Mug", "unit_price_cents": 1200, "quantity": 1, "note": ""},
        ),
        (
            4,
            "ItemAdded",
            {"sku": "TEA-1", "name": "Green tea", "unit_price_cents": 450, "quantity": 3, "note": ""},
        ),
        (5, "ItemRemoved", {"sku": "TEA-1", "quantity": 1}),
        (6, "ItemRemoved", {"sku": "MUG-2", "quantity": 1}),
        (7, "OrderPlaced", {"total_cents": 1800, "ship_to": ""}),  # no address: written below the app layer
        (8, "OrderCancelled", {"reason": "Customer changed their mind"}),
    ]
    assert [(r.first_version, r.last_version, r.duplicate) for r in results] == [
        (v, v, False) for v in range(1, 9)
    ]
    final = results[-1].order
    assert (final.status, final.cancel_reason, final.version) == (
        "cancelled",
        "Customer changed their mind",
        8,
    )
    assert [(line.sku, line.quantity) for line in final.lines] == [("TEA-1", 4)]


async def test_the_handler_records_who_and_why_in_the_metadata(
    store: EventStore, pool: asyncpg.Pool, order_id: str
) -> None:
    command_id, correlation_id = uuid4(), uuid4()
    await handle(
        store,
        CreateOrder(order_id, "customer-1", "EUR"),
        command_id=command_id,
        actor=Actor("account-7", "clerk@example.com", "clerk"),
        correlation_id=correlation_id,
    )

    metadata = json.loads(
        await pool.fetchval("SELECT metadata::text FROM events WHERE stream_id = $1", order_id)
    )
    assert metadata == {
        "command_id": str(command_id),
        "correlation_id": str(correlation_id),
        "actor": "clerk@example.com",
        "actor_id": "account-7",
        "causation_id": None,
        "requested_at": None,
    }


async def given_an_order(store: EventStore, order_id: str, status: str) -> None:
    """An order that does not exist ("none"), a draft with two widgets at 2.50, or that draft placed."""
    if status == "none":
        return
    await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=uuid4())
    await handle(store, AddItem(order_id, "W-1", "Widget", 250, 2), command_id=uuid4())
    if status == "placed":
        await handle(store, PlaceOrder(order_id), command_id=uuid4())


REFUSED: list[tuple[str, Callable[[str], Command], type[DomainError]]] = [
    ("none", lambda order_id: AddItem(order_id, "W-1", "Widget", 250, 1), OrderNotFound),
    ("draft", lambda order_id: CreateOrder(order_id, "customer-2", "USD"), OrderAlreadyExists),
    ("draft", lambda order_id: AddItem(order_id, "W-1", "Widget", 999, 1), PriceMismatch),
    ("draft", lambda order_id: RemoveItem(order_id, "NOT-THERE"), ItemNotOnOrder),
    ("draft", lambda order_id: RemoveItem(order_id, "W-1", 5), RemoveQuantityTooLarge),
    ("placed", lambda order_id: AddItem(order_id, "W-2", "Gadget", 100, 1), OrderNotDraft),
    ("placed", lambda order_id: PlaceOrder(order_id), OrderNotDraft),
]


async def test_a_refused_command_leaves_the_log_and_the_read_model_untouched(
    store: EventStore, pool: asyncpg.Pool, read_model: ReadModel
) -> None:
    for n, (status, make_command, error) in enumerate(REFUSED):
        order_id = f"order-{n}-{status}"
        await given_an_order(store, order_id, status)
        row_before = await read_model.get_order(order_id)
        counts_before = await pool.fetchrow(EVENTS_AND_COMMANDS)

        with pytest.raises(error):
            await handle(store, make_command(order_id), command_id=uuid4())

        assert await read_model.get_order(order_id) == row_before, order_id
        assert await pool.fetchrow(EVENTS_AND_COMMANDS) == counts_before, order_id
    assert await read_model.get_order("order-0-none") is None


async def test_placing_twice_with_one_command_id_returns_the_first_result(
    store: EventStore, pool: asyncpg.Pool, order_id: str
) -> None:
    await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=uuid4())
    await handle(store, AddItem(order_id, "W-1", "Widget", 250, 2), command_id=uuid4())
    place_id = uuid4()
    first = await handle(store, PlaceOrder(order_id), command_id=place_id, expected_version=2)
    log = await stream_of(pool, order_id)

    # A double click: the same form (same command id, same expected version) again.
    again = await handle(store, PlaceOrder(order_id), command_id=place_id, expected_version=2)
    # A retry without a version check: placing a placed order would now be refused.
    retried = await handle(store, PlaceOrder(order_id), command_id=place_id)

    assert (first.first_version, first.last_version, first.duplicate) == (3, 3, False)
    assert again == retried == CommandResult(first.order, 3, 3, duplicate=True)
    assert first.order.status == "placed"
    assert await stream_of(pool, order_id) == log


async def test_twenty_clicks_on_place_at_once_place_the_order_once(
    store: EventStore, pool: asyncpg.Pool, order_id: str
) -> None:
    await given_an_order(store, order_id, "draft")
    place_id = uuid4()

    answers = await asyncio.gather(
        *(handle(store, PlaceOrder(order_id), command_id=place_id, expected_version=2) for _ in range(20))
    )

    assert {(a.first_version, a.last_version, a.order.status) for a in answers} == {(3, 3, "placed")}
    assert sum(not a.duplicate for a in answers) == 1
    assert [(v, t) for v, t, _ in await stream_of(pool, order_id)] == [
        (1, "OrderCreated"),
        (2, "ItemAdded"),
        (3, "OrderPlaced"),
    ]


async def test_a_repeat_returns_the_order_as_that_command_left_it(store: EventStore, order_id: str) -> None:
    await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=uuid4())
    add_id = uuid4()
    first = await handle(store, AddItem(order_id, "W-1", "Widget", 250, 2), command_id=add_id)
    await handle(store, AddItem(order_id, "W-2", "Gadget", 100, 1), command_id=uuid4())

    repeat = await handle(store, AddItem(order_id, "W-1", "Widget", 250, 2), command_id=add_id)

    assert repeat == CommandResult(first.order, 2, 2, duplicate=True)
    assert repeat.order.version == 2


async def test_a_stale_expected_version_raises_with_the_fresh_order(
    store: EventStore, pool: asyncpg.Pool, order_id: str
) -> None:
    await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=uuid4())
    await handle(store, AddItem(order_id, "W-1", "Widget", 250, 2), command_id=uuid4(), expected_version=1)
    log = await stream_of(pool, order_id)

    with pytest.raises(StaleVersion) as raised:
        await handle(store, PlaceOrder(order_id), command_id=uuid4(), expected_version=1)

    fresh = raised.value.order
    assert fresh == fold(e.event for e in await store.read_stream(order_id))
    assert (fresh.version, fresh.status, fresh.item_count) == (2, "draft", 2)
    assert (raised.value.expected_version, raised.value.actual_version) == (1, 2)
    assert await stream_of(pool, order_id) == log


async def race_ten_adds(store: EventStore, pool: asyncpg.Pool, order_id: str) -> list[object]:
    """Ten AddItem commands of different SKUs at once, with no expected version, on a warm pool."""
    await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=uuid4())
    # Open every pooled connection first, so the ten commands really run side by side.
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    for conn in held:
        await pool.release(conn)
    return await asyncio.gather(
        *(
            handle(store, AddItem(order_id, f"SKU-{n}", f"Item {n}", 100 + n, 1), command_id=uuid4())
            for n in range(10)
        ),
        return_exceptions=True,
    )


async def test_concurrent_adds_leave_a_log_without_holes_that_the_read_model_matches(
    store: EventStore, pool: asyncpg.Pool, read_model_matches_log: ReadModelCheck, order_id: str
) -> None:
    results = await race_ten_adds(store, pool, order_id)

    succeeded = [r for r in results if isinstance(r, CommandResult)]
    assert all(isinstance(r, CommandResult | StaleVersion) for r in results), results
    events = await store.read_stream(order_id)
    assert [e.version for e in events] == list(range(1, 2 + len(succeeded)))
    assert sorted(r.last_version for r in succeeded) == list(range(2, 2 + len(succeeded)))
    final = fold(e.event for e in events)
    assert sorted(line.sku for line in final.lines) == sorted(r.order.lines[-1].sku for r in succeeded)
    await read_model_matches_log(order_id)


async def test_concurrent_adds_without_a_version_check_all_succeed(
    store: EventStore, pool: asyncpg.Pool, read_model_matches_log: ReadModelCheck
) -> None:
    # Five orders, one after another, so that a lucky interleaving cannot hide the outcome.
    for attempt in range(5):
        order_id = f"order-race-{attempt}"
        results = await race_ten_adds(store, pool, order_id)

        assert [r for r in results if not isinstance(r, CommandResult)] == []
        final = fold(e.event for e in await store.read_stream(order_id))
        assert sorted(line.sku for line in final.lines) == sorted(f"SKU-{n}" for n in range(10))
        assert final.total_cents == sum(100 + n for n in range(10))
        row = await read_model_matches_log(order_id)
        assert (row.version, row.line_count, row.item_count) == (11, 10, 10)


# Each app instance decides on the state it last appended, when it has one; these two
# stores on one database are two instances, each with its own memory of that.


@pytest.fixture
def other(pool: asyncpg.Pool) -> EventStore:
    """A second app instance's store on the test's database."""
    return EventStore(pool)


async def test_a_command_on_an_order_another_instance_moved_on_sees_that_change(
    store: EventStore,
    other: EventStore,
    pool: asyncpg.Pool,
    read_model_matches_log: ReadModelCheck,
    order_id: str,
) -> None:
    await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=uuid4())
    await handle(store, AddItem(order_id, "TEA-1", "Green tea", 450, 1), command_id=uuid4())
    await handle(other, AddItem(order_id, "MUG-2", "Mug", 1200, 1), command_id=uuid4())

    result = await handle(store, AddItem(order_id, "TEA-1", "Green tea", 450, 2), command_id=uuid4())

    assert [(line.sku, line.quantity) for line in result.order.lines] == [("TEA-1", 3), ("MUG-2", 1)]
    assert (result.first_version, result.last_version) == (4, 4)
    assert [v for v, _, _ in await stream_of(pool, order_id)] == [1, 2, 3, 4]
    await read_model_matches_log(order_id)


async def test_a_command_refused_on_what_this_instance_last_saw_is_judged_on_the_log(
    store: EventStore, other: EventStore, pool: asyncpg.Pool, order_id: str
) -> None:
    await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=uuid4())
    # This instance last saw the order empty; the other one filled it.
    await handle(other, AddItem(order_id, "TEA-1", "Green tea", 450, 1), command_id=uuid4())

    placed = await handle(store, PlaceOrder(order_id), command_id=uuid4())

    assert placed.order.status == "placed"
    assert placed.order.total_cents == 450
    assert [t for _, t, _ in await stream_of(pool, order_id)] == ["OrderCreated", "ItemAdded", "OrderPlaced"]


async def test_an_expected_version_newer_than_this_instance_saw_is_checked_on_the_log(
    store: EventStore, other: EventStore, pool: asyncpg.Pool, order_id: str
) -> None:
    await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=uuid4())
    await handle(other, AddItem(order_id, "TEA-1", "Green tea", 450, 1), command_id=uuid4())

    # A page served by the other instance showed version 2.
    result = await handle(
        store, AddItem(order_id, "MUG-2", "Mug", 1200, 1), command_id=uuid4(), expected_version=2
    )
    assert result.last_version == 3
    # And a page that showed version 2 is now stale, whichever instance answers.
    with pytest.raises(StaleVersion) as stale:
        await handle(other, PlaceOrder(order_id), command_id=uuid4(), expected_version=2)
    assert stale.value.order.version == 3
    assert len(await stream_of(pool, order_id)) == 3
