"""A workflow that cannot handle an order's event parks that order as a projection does; the others go on.

The workflows are the real ones with a fault put in front (tests/support/parking.Faulty); the
fix deployed is the real workflow alone, which is what the admin page's Retry runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import cast

import asyncpg
import pytest

from domain.access import Actor
from domain.order import ItemAdded
from store.log.event_store import EventStore
from store.operations import Operations
from store.read.parking import ParkedStream, RetryPolicy
from store.read.subscriptions import SubscriptionRunner
from store.workflows.expiry import DraftExpiryTimers
from store.workflows.outbox import CustomerNotifications, Relay
from tests.support.parking import Faulty, add_item
from tests.support.waiting import eventually
from tests.support.workflows import RecordingSender, cancel, draft, outbox_rows, place
from web.admin_parked import parked_context

QUICK = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
ADMIN = Actor("account-1", "root", "admin")


@contextlib.asynccontextmanager
async def running(database_url: str, pool: asyncpg.Pool, workflow: Faulty) -> AsyncIterator[Faulty]:
    runner = SubscriptionRunner(database_url, pool, workflow, retry=QUICK, poll_interval=0.05, lock_retry=0.1)
    task = asyncio.create_task(runner.run())
    try:
        yield workflow
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def notifications(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[tuple[Faulty, set[str]]]:
    """The customer notifications workflow, running, with a fault: it cannot handle OrderPlaced of
    the orders in the set given with it."""
    broken: set[str] = set()
    faulty = Faulty(CustomerNotifications(), lambda e: e.type == "OrderPlaced" and e.stream_id in broken)
    async with running(database_url, pool, faulty):
        yield faulty, broken


def tries_logged(caplog: pytest.LogCaptureFixture, order_id: str) -> list[str]:
    """The subscriptions' log lines about `order_id`'s tries, with its id written {bad}."""
    return [
        r.getMessage().replace(order_id, "{bad}")
        for r in caplog.records
        if r.name == "orders.subscriptions" and order_id in r.getMessage()
    ]


async def messages(pool: asyncpg.Pool, order_id: str) -> list[tuple[str, int]]:
    return [(r["kind"], r["cause_version"]) for r in await outbox_rows(pool, order_id)]


async def notified(pool: asyncpg.Pool, order_id: str, *expected: tuple[str, int]) -> bool:
    return await messages(pool, order_id) == list(expected)


async def parked_on_the_admin_page(pool: asyncpg.Pool) -> list[tuple[str, str, str, int, int, int]]:
    """The parked streams as the admin page reads them: subscription, order, event, version, tries, held."""
    shown = cast(list[ParkedStream], (await parked_context(Operations(pool)))["parked"])
    return [(p.subscription, p.stream_id, p.event_type, p.version, p.attempts, p.waiting) for p in shown]


async def test_a_workflow_parks_the_order_it_cannot_handle_and_a_retry_after_the_fix_notifies_once(
    pool: asyncpg.Pool,
    store: EventStore,
    notifications: tuple[Faulty, set[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    workflow, broken = notifications
    bad, good = await draft(store, "grace"), await draft(store, "ada")
    broken.add(bad)
    placed = await place(store, bad)
    await place(store, good)

    async def bad_parked() -> bool:
        return bool(await pool.fetchval("SELECT count(*) FROM parked_streams WHERE stream_id = $1", bad))

    await eventually(bad_parked)
    await eventually(lambda: notified(pool, good, ("order_placed", 3)))
    assert tries_logged(caplog, bad) == [
        "customer_notifications: OrderPlaced v3 of order {bad} failed (try 1 of 3)",
        "customer_notifications: OrderPlaced v3 of order {bad} failed (try 2 of 3)",
        "customer_notifications: parked order {bad} after 3 tries of OrderPlaced v3 of order {bad}: "
        "cannot handle OrderPlaced v3",
    ], "tried exactly as often as the policy says, then parked"
    assert await messages(pool, bad) == []

    # The parked order's later events wait behind it; other orders' are handled.
    cancelled = await cancel(store, bad, "Changed my mind")
    later = await draft(store, "lin")
    await place(store, later)
    await eventually(lambda: notified(pool, later, ("order_placed", 3)))
    assert await messages(pool, bad) == []
    assert await parked_on_the_admin_page(pool) == [
        ("customer_notifications", bad, "OrderPlaced", 3, QUICK.attempts, 1)
    ]
    error = await pool.fetchval("SELECT error FROM parked_streams WHERE stream_id = $1", bad)
    assert error == "RuntimeError: cannot handle OrderPlaced v3"

    # The fix deployed: Retry, as the admin page does it, runs the workflow without the fault.
    resumed = await Operations(pool).parking.retry("customer_notifications", bad, ADMIN)
    assert (resumed.applied, resumed.parked_again) == (2, None)
    assert await messages(pool, bad) == [("order_placed", 3), ("order_cancelled", 4)]
    assert await parked_on_the_admin_page(pool) == []
    log = await pool.fetch(
        "SELECT kind, subscription, stream_id, actor_name FROM parking_log ORDER BY entry_id"
    )
    assert [tuple(r) for r in log] == [
        ("parked", "customer_notifications", bad, None),
        ("retried", "customer_notifications", bad, "root"),
    ]

    # The runner goes on past them and never handles them itself: each was handled once, by the retry.
    marker = await draft(store, "mo")
    await place(store, marker)
    await eventually(lambda: notified(pool, marker, ("order_placed", 3)))
    handled_by_the_runner = set(workflow.handled)
    held = [e.event_id for e in await store.read_stream(bad) if e.version >= 3]
    assert len(held) == 2
    assert handled_by_the_runner.isdisjoint(held)
    assert (placed.last_version, cancelled.last_version) == (3, 4)
    # And the relay sends each message once.
    sender = RecordingSender()
    while await Relay(pool, sender, batch_size=1).deliver_due():
        pass
    assert sorted((n.kind, n.cause_version) for n in sender.sent if n.order_id == bad) == [
        ("order_cancelled", 4),
        ("order_placed", 3),
    ]


@pytest.fixture
async def expiry_timers(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[Faulty]:
    """The draft expiry timers workflow, running, with a fault: it cannot handle an item of SKU BROKEN."""
    faulty = Faulty(DraftExpiryTimers(), lambda e: isinstance(e.event, ItemAdded) and e.event.sku == "BROKEN")
    async with running(database_url, pool, faulty):
        yield faulty


async def timer_version(pool: asyncpg.Pool, order_id: str) -> int | None:
    version: int | None = await pool.fetchval(
        "SELECT version FROM draft_expiry_timers WHERE order_id = $1", order_id
    )
    return version


async def armed(pool: asyncpg.Pool, order_id: str, version: int) -> bool:
    return await timer_version(pool, order_id) == version


async def test_draft_expiry_timers_park_an_order_keep_arming_the_others_and_rearm_it_on_retry(
    pool: asyncpg.Pool, store: EventStore, expiry_timers: Faulty, caplog: pytest.LogCaptureFixture
) -> None:
    bad = await draft(store, "grace")  # created v1, an item v2: its timer armed at v2
    await eventually(lambda: armed(pool, bad, 2))
    await add_item(store, bad, "BROKEN")  # v3: refused
    await add_item(store, bad, "LATE")  # v4: held behind it
    good = await draft(store, "ada")
    await add_item(store, good, "MORE")

    await eventually(lambda: armed(pool, good, 3))
    shown = await eventually(lambda: parked_on_the_admin_page(pool))
    assert shown == [("draft_expiry_timers", bad, "ItemAdded", 3, QUICK.attempts, 1)]
    assert tries_logged(caplog, bad) == [
        "draft_expiry_timers: ItemAdded v3 of order {bad} failed (try 1 of 3)",
        "draft_expiry_timers: ItemAdded v3 of order {bad} failed (try 2 of 3)",
        "draft_expiry_timers: parked order {bad} after 3 tries of ItemAdded v3 of order {bad}: "
        "cannot handle ItemAdded v3",
    ]
    assert await timer_version(pool, bad) == 2, "the timer still judges the version before the parked event"

    resumed = await Operations(pool).parking.retry("draft_expiry_timers", bad, ADMIN)
    assert (resumed.applied, resumed.parked_again) == (2, None)
    assert await timer_version(pool, bad) == 4
    assert await parked_on_the_admin_page(pool) == []
    await add_item(store, bad, "AFTER")
    await eventually(lambda: armed(pool, bad, 5))
