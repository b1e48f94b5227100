"""A rebuild folds the log in memory, writes its orders out when it holds too many, and
ends equal to what the live subscription kept; a rebuild that cannot read the log fails
loudly and leaves the read model it would have replaced serving."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import asyncpg
import msgspec
import pytest

from domain.order import AddItem, CancelOrder, Command, CreateOrder, Order, PlaceOrder, RemoveItem, fold
from domain.serialization import UnknownEventType
from store.log.commands import handle
from store.log.event_store import EventStore
from store.read.projections import PROJECTIONS
from store.read.replay import rebuild
from store.read.subscriptions import SubscriptionRunner
from tests.support.subscriptions import insert_unknown_event

TABLES = {
    "customer_summaries": (
        "SELECT customer_id, draft, placed, cancelled, placed_value::text, last_activity "
        "FROM customer_summaries ORDER BY customer_id",
        "SELECT order_id, customer_id, currency, status, total_cents, updated_at "
        "FROM customer_orders ORDER BY order_id",
    ),
    "sales_by_day": (
        "SELECT * FROM sales_by_day ORDER BY day, currency",
        "SELECT order_id, currency FROM sales_orders ORDER BY order_id",
    ),
}


async def contents(pool: asyncpg.Pool, name: str) -> list[list[tuple[object, ...]]]:
    return [[tuple(row) for row in await pool.fetch(query)] for query in TABLES[name]]


async def kept_live(database_url: str, pool: asyncpg.Pool, name: str) -> list[list[tuple[object, ...]]]:
    """The read model `name` as its live subscription keeps it, once caught up with the log."""
    await SubscriptionRunner(database_url, pool, PROJECTIONS[name]).catch_up()
    return await contents(pool, name)


async def interleaved_orders(store: EventStore, orders: int, rounds: int) -> list[str]:
    """Orders whose events are spread over the whole log: each round touches every order once."""
    order_ids = [str(uuid4()) for _ in range(orders)]
    commands: list[list[Command]] = [
        [
            CreateOrder(order_id, f"customer-{n % 7}", "EUR" if n % 3 else "USD")
            for n, order_id in enumerate(order_ids)
        ]
    ]
    for round_ in range(rounds):
        commands.append(
            [
                # The same SKU on an order always has the same price: the second add merges.
                AddItem(order_id, f"SKU-{round_ % 3}", "Item", 100 * (round_ % 3 + 1) + n, 2)
                for n, order_id in enumerate(order_ids)
            ]
        )
    commands.append([RemoveItem(order_id, "SKU-0", 1) for order_id in order_ids[::4]])
    commands.append([PlaceOrder(order_id) for order_id in order_ids[::2]])
    commands.append([CancelOrder(order_id, "changed my mind") for order_id in order_ids[::3]])
    for batch in commands:
        for command in batch:
            await handle(store, command, command_id=uuid4())
    return order_ids


@pytest.mark.parametrize("name", sorted(PROJECTIONS))
async def test_a_rebuild_holding_few_orders_in_memory_ends_equal_to_the_live_read_model(
    database_url: str, pool: asyncpg.Pool, store: EventStore, name: str
) -> None:
    order_ids = await interleaved_orders(store, orders=40, rounds=4)
    runner = SubscriptionRunner(database_url, pool, PROJECTIONS[name], batch_size=37)
    assert await runner.catch_up() == await pool.fetchval("SELECT count(*) FROM events")
    kept = await contents(pool, name)
    assert len(kept[1]) == 40

    # 40 orders, 6 held at a time, 25 events a batch: every order is written out and
    # loaded back several times, and the log is read in many batches.
    replayed = await rebuild(pool, name, batch_size=25, hold=6)

    assert replayed == await pool.fetchval("SELECT count(*) FROM events")
    assert await contents(pool, name) == kept
    table = PROJECTIONS[name].tables[0]
    rows = {r[0]: r[1] for r in await pool.fetch(f"SELECT order_id, state FROM {table}")}
    for order_id in order_ids:
        expected = fold(e.event for e in await store.read_stream(order_id))
        assert msgspec.json.decode(rows[order_id], type=Order) == expected
    books = await pool.fetchrow("SELECT state, events_done FROM projection_rebuilds WHERE name = $1", name)
    assert (books["state"], books["events_done"]) == ("done", replayed)


async def test_a_rebuild_that_cannot_read_the_log_fails_and_the_old_read_model_keeps_serving(
    database_url: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    name = "customer_summaries"
    await interleaved_orders(store, orders=10, rounds=2)
    kept = await kept_live(database_url, pool, name)
    await insert_unknown_event(pool)

    with pytest.raises(UnknownEventType, match="OrderTeleported"):
        await rebuild(pool, name, batch_size=10)

    assert await contents(pool, name) == kept
    books = await pool.fetchrow("SELECT state, error FROM projection_rebuilds WHERE name = $1", name)
    assert books["state"] == "failed"
    assert "OrderTeleported" in books["error"]


async def test_a_rebuild_cancelled_half_way_stops_at_once_and_the_next_one_completes(
    database_url: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    name = "sales_by_day"
    await interleaved_orders(store, orders=30, rounds=3)
    kept = await kept_live(database_url, pool, name)
    started = asyncio.Event()

    async def progress(done: int, _total: int) -> None:
        if done:
            started.set()
            await asyncio.sleep(0.5)  # a slow terminal: the reader fills its queue meanwhile

    running = asyncio.create_task(rebuild(pool, name, progress, batch_size=5))
    await started.wait()
    running.cancel()
    async with asyncio.timeout(5):
        await asyncio.gather(running, return_exceptions=True)
    assert running.cancelled()
    assert await pool.fetchval("SELECT state FROM projection_rebuilds WHERE name = $1", name) == "failed"
    assert await contents(pool, name) == kept

    await rebuild(pool, name, batch_size=5)
    assert await contents(pool, name) == kept
