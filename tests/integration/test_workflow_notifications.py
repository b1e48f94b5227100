"""Customer notifications: one per order placed or cancelled, delivered by a relay that retries."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
from datetime import timedelta

import asyncpg

from store.log.event_store import EventStore
from store.migrations import MIGRATIONS_DIR
from store.read.parking import RetryPolicy
from store.read.subscriptions import SubscriptionRunner
from store.workflows.outbox import CustomerNotifications, Relay
from store.workflows.runners import LeaderLoop
from tests.support.servers import ROOT
from tests.support.waiting import eventually
from tests.support.workflows import (
    FlakySender,
    RecordingSender,
    cancel,
    draft,
    outbox_rows,
    place,
    running,
)


async def test_placing_and_cancelling_each_write_one_message_to_the_customer(
    database_url: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    order_id = await draft(store, "alice", ("TEA-1", 350, 2), ("CUP-1", 1200, 1))
    placed = await place(store, order_id)
    await cancel(store, order_id, "Found it cheaper elsewhere")
    runner = SubscriptionRunner(database_url, pool, CustomerNotifications())
    await runner.catch_up()
    await runner.catch_up()  # nothing new: nothing more written

    rows = await outbox_rows(pool, order_id)
    events = await store.read_stream(order_id)
    placed_event, cancelled_event = events[3], events[4]
    assert [(r["kind"], r["cause_event_id"], r["cause_version"]) for r in rows] == [
        ("order_placed", placed_event.event_id, 4),
        ("order_cancelled", cancelled_event.event_id, 5),
    ]
    assert rows[0]["subject"] == f"Your order {order_id[:8]} is placed"
    assert rows[0]["body"] == (
        f"Hello alice,\n\nthank you: your order {order_id} is placed.\n\n"
        "  2 × Item TEA-1 (TEA-1) at 3.50 = 7.00\n"
        "  1 × Item CUP-1 (CUP-1) at 12.00 = 12.00\n"
        "Total: 19.00 EUR\n"
    )
    assert "Reason: Found it cheaper elsewhere\n" in rows[1]["body"]
    for row, cause in zip(rows, (placed_event, cancelled_event), strict=True):
        assert row["customer_id"] == "alice"
        assert row["causation_id"] == str(cause.event_id)
        assert row["correlation_id"] == cause.metadata.correlation_id
        assert (row["state"], row["attempts"]) == ("pending", 0)
    assert placed.last_version == 4


async def test_the_relay_delivers_each_message_and_records_it(
    database_url: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    sender = RecordingSender()
    relay = Relay(pool, sender)
    jobs = (
        SubscriptionRunner(database_url, pool, CustomerNotifications(), poll_interval=0.1),
        LeaderLoop(database_url, "outbox_relay", relay.deliver_due, channel="outbox", interval=0.1),
    )
    async with running(*jobs):
        orders = [await draft(store, f"customer-{n}") for n in range(3)]
        for order_id in orders:
            await place(store, order_id)

        async def all_sent() -> bool:
            return [r["state"] for r in await outbox_rows(pool)] == ["sent"] * 3

        await eventually(all_sent)
    assert sorted(n.order_id for n in sender.sent) == sorted(orders)
    rows = await outbox_rows(pool)
    assert all(r["attempts"] == 1 and r["sent_at"] is not None and r["last_error"] is None for r in rows)


async def test_a_failing_sender_is_retried_with_growing_pauses_then_given_up(
    pool: asyncpg.Pool, store: EventStore, database_url: str
) -> None:
    order_id = await draft(store)
    await place(store, order_id)
    await SubscriptionRunner(database_url, pool, CustomerNotifications()).catch_up()
    relay = Relay(pool, FlakySender(failures=2), retry=RetryPolicy(attempts=5, backoff=0.2, max_backoff=3600))
    assert [relay.delay(n) for n in (1, 2, 3, 4)] == [0.2, 0.4, 0.8, 1.6]

    await relay.deliver_due()
    (row,) = await outbox_rows(pool)
    assert (row["state"], row["attempts"]) == ("pending", 1)
    assert row["last_error"] == "ConnectionError: mail server unreachable (try 1)"
    pause = row["next_attempt_at"] - await pool.fetchval("SELECT now()")
    assert timedelta(0) < pause <= timedelta(seconds=0.2)
    await relay.deliver_due()  # not due yet: nothing is tried
    assert (await outbox_rows(pool))[0]["attempts"] == 1

    async def attempts(n: int) -> asyncpg.Record | None:
        await relay.deliver_due()
        (row,) = await outbox_rows(pool)
        return row if row["attempts"] == n else None

    row = await eventually(lambda: attempts(2))
    assert row["state"] == "pending"
    assert row["last_error"] == "ConnectionError: mail server unreachable (try 2)"
    row = await eventually(lambda: attempts(3))
    assert (row["state"], row["last_error"]) == ("sent", None)

    # A sender that never succeeds: after its attempts the message is parked for a person.
    second = await draft(store)
    await place(store, second)
    await SubscriptionRunner(database_url, pool, CustomerNotifications()).catch_up()
    hopeless = Relay(pool, FlakySender(failures=99), retry=RetryPolicy(attempts=3, backoff=0.01))

    async def parked() -> bool:
        await hopeless.deliver_due()
        return (await outbox_rows(pool, second))[0]["state"] == "parked"

    await eventually(parked)
    (row,) = await outbox_rows(pool, second)
    assert row["attempts"] == 3
    assert row["last_error"] == "ConnectionError: mail server unreachable (try 3)"


async def test_a_runner_killed_ten_times_while_500_orders_are_placed_and_cancelled_notifies_each_once(
    database_url: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    """The workflow process is killed with SIGKILL at random moments while it works."""
    orders: list[str] = []

    async def write(count: int) -> None:
        queue = list(range(count))

        async def worker() -> None:
            while queue:
                queue.pop()
                order_id = await draft(store, f"customer-{random.randint(1, 20)}")
                await place(store, order_id)
                await cancel(store, order_id, "Killed in a test")
                orders.append(order_id)

        await asyncio.gather(*(worker() for _ in range(6)))

    def start() -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "tests.support.runner_process", database_url]
        return subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stderr=subprocess.DEVNULL)

    kills = 0
    for _round in range(10):
        process = start()
        writing = asyncio.create_task(write(50))
        before = await applied(pool)
        # Kill it while it works: once it has applied something this round, at a random moment after.
        await eventually(lambda before=before: _applied_more_than(pool, before), timeout=20)
        await asyncio.sleep(random.uniform(0, 0.15))
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        await writing
    assert kills == 10
    assert len(orders) == 500

    survivor = start()
    try:
        total = await pool.fetchval("SELECT count(*) FROM events")

        async def caught_up() -> bool:
            sent = await pool.fetchval("SELECT count(*) FROM outbox WHERE state = 'sent'")
            return await applied(pool) == total and sent == 1000

        await eventually(caught_up, timeout=30)
    finally:
        survivor.terminate()
        survivor.wait()

    causes = await pool.fetch(
        "SELECT event_id, stream_id FROM events WHERE type IN ('OrderPlaced', 'OrderCancelled')"
    )
    assert len(causes) == 1000
    rows = await pool.fetch("SELECT cause_event_id, order_id, kind FROM outbox")
    assert sorted((r["cause_event_id"], r["order_id"]) for r in rows) == sorted(
        (c["event_id"], c["stream_id"]) for c in causes
    )
    per_order = await pool.fetch(
        "SELECT order_id, array_agg(kind ORDER BY id) AS kinds FROM outbox GROUP BY order_id"
    )
    assert {r["order_id"] for r in per_order} == set(orders)
    assert all(r["kinds"] == ["order_placed", "order_cancelled"] for r in per_order)
    # The checkpoint moved exactly once past every event: none applied twice, none skipped.
    assert await applied(pool) == total
    print(json.dumps({"orders": len(orders), "kills": kills, "notifications": len(rows), "events": total}))


async def applied(pool: asyncpg.Pool) -> int:
    value = await pool.fetchval(
        "SELECT events_applied FROM subscriptions WHERE name = 'customer_notifications'"
    )
    return int(value or 0)


async def _applied_more_than(pool: asyncpg.Pool, before: int) -> bool:
    return await applied(pool) > before


async def test_on_a_database_with_history_customers_hear_only_of_what_happens_next(
    database_url: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    """Migration 005 starts the workflow at the committed head, so old orders send nothing."""
    old = await draft(store)
    await place(store, old)
    sql = (MIGRATIONS_DIR / "005_outbox.sql").read_text()
    await pool.execute(sql[sql.index("INSERT INTO subscriptions") :])
    new = await draft(store)
    await place(store, new)
    await SubscriptionRunner(database_url, pool, CustomerNotifications()).catch_up()
    assert [r["order_id"] for r in await outbox_rows(pool)] == [new]
