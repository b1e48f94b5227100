"""Read models kept by subscriptions survive crashes and rebuilds, and equal a fresh fold."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from uuid import uuid4

import asyncpg

from domain.errors import OrderNotDraft, TooManyLines
from domain.order import AddItem, fold
from store.log.commands import handle
from store.log.event_store import EventStore
from store.read.projections import PROJECTIONS
from store.read.replay import rebuild
from store.read.subscriptions import SubscriptionRunner
from tests.support.subscriptions import write_orders

SNAPSHOTS = {
    "customer_summaries": "SELECT customer_id, draft, placed, cancelled, placed_value::text, last_activity "
    "FROM customer_summaries ORDER BY customer_id",
    "sales_by_day": "SELECT * FROM sales_by_day ORDER BY day, currency",
}


async def snapshot(pool: asyncpg.Pool, name: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in await pool.fetch(SNAPSHOTS[name])]


async def test_a_runner_killed_ten_times_during_catch_up_ends_equal_to_a_rebuild(
    database_url: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    await write_orders(store, 2000, items=8)
    assert await pool.fetchval("SELECT count(*) FROM events") >= 19_000
    for name, projection in PROJECTIONS.items():
        for _kill in range(10):
            runner = SubscriptionRunner(database_url, pool, projection, batch_size=250)
            task = asyncio.create_task(runner.run())
            await asyncio.sleep(random.uniform(0.05, 0.3))
            task.cancel()  # anywhere: mid-batch, mid-transaction, between batches
            await asyncio.gather(task, return_exceptions=True)
        runner = SubscriptionRunner(database_url, pool, projection, batch_size=250)
        total = await pool.fetchval("SELECT count(*) FROM events")
        for _attempt in range(100):  # a killed transaction may hold the horizon for a moment
            await runner.catch_up()
            applied = await pool.fetchval("SELECT events_applied FROM subscriptions WHERE name = $1", name)
            if applied == total:
                break
            await asyncio.sleep(0.1)
        assert applied == total, f"{name} applied {applied} of {total} events"
        kept = await snapshot(pool, name)
        await rebuild(pool, name)
        assert await snapshot(pool, name) == kept


async def test_a_rebuild_while_commands_arrive_ends_equal_to_a_fresh_fold(
    database_url: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    order_ids = await write_orders(store, 300, items=5)
    runner = SubscriptionRunner(database_url, pool, PROJECTIONS["customer_summaries"], poll_interval=0.05)
    running = asyncio.create_task(runner.run())
    stop = asyncio.Event()

    async def keep_writing() -> int:
        written = 0
        while not stop.is_set():
            order_id = random.choice(order_ids)
            try:
                await handle(
                    store, AddItem(order_id, f"NEW-{uuid4().hex[:6]}", "New", 100, 1), command_id=uuid4()
                )
                written += 1
            except (OrderNotDraft, TooManyLines):  # placed orders refuse items: that is fine here
                pass
        return written

    writers = [asyncio.create_task(keep_writing()) for _ in range(4)]
    try:
        await rebuild(pool, "order_read_model", batch_size=200)
        await rebuild(pool, "customer_summaries", batch_size=200)
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        written = sum(await asyncio.gather(*writers))
    assert written > 0
    # Stop the live runner first: a catch-up beside it would race it for the checkpoint
    # (and be fenced off, as it should).
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    await runner.catch_up()

    orders = {}
    for order_id in order_ids:
        orders[order_id] = fold(e.event for e in await store.read_stream(order_id))
    rows = {r["order_id"]: r for r in await pool.fetch("SELECT * FROM order_read_model")}
    assert set(rows) == set(order_ids)
    for order_id, order in orders.items():
        row = rows[order_id]
        assert (row["status"], row["line_count"], row["item_count"], row["total_cents"], row["version"]) == (
            order.status,
            len(order.lines),
            order.item_count,
            order.total_cents,
            order.version,
        ), order_id

    expected: dict[str, Counter[str]] = defaultdict(Counter)
    for order in orders.values():
        expected[order.customer_id][order.status] += 1
    summaries = {r["customer_id"]: r for r in await pool.fetch("SELECT * FROM customer_summaries")}
    assert set(summaries) == set(expected)
    for customer, counts in expected.items():
        row = summaries[customer]
        assert (row["draft"], row["placed"], row["cancelled"]) == (
            counts["draft"],
            counts["placed"],
            counts["cancelled"],
        )
