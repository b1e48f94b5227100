"""Draft expiry: an untouched draft is cancelled by the system; an order changed since is left alone."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from datetime import timedelta
from uuid import uuid4

import asyncpg
import pytest

from domain.errors import OrderNotDraft
from domain.order import AddItem, ItemAdded, OrderCancelled
from store.application import Orders
from store.log.commands import StaleVersion, handle
from store.log.event_store import EventStore
from store.read.subscriptions import SubscriptionRunner
from store.workflows.expiry import (
    DEFAULT_DRAFT_EXPIRY,
    DraftExpiry,
    DraftExpiryTimers,
    timer_id,
)
from store.workflows.outbox import CustomerNotifications
from store.workflows.runners import LeaderLoop
from tests.support.waiting import eventually
from tests.support.workflows import cancel, draft, outbox_rows, place, running
from web.settings import from_environment

EXPIRY = 0.3


async def timers(pool: asyncpg.Pool) -> dict[str, int]:
    return {r["order_id"]: r["version"] for r in await pool.fetch("SELECT * FROM draft_expiry_timers")}


@pytest.fixture
def arming(database_url: str, pool: asyncpg.Pool) -> SubscriptionRunner:
    """The subscription that arms a timer for each draft."""
    return SubscriptionRunner(database_url, pool, DraftExpiryTimers())


@pytest.fixture
def expiry(store: EventStore) -> DraftExpiry:
    """The workflow that fires due timers; drafts expire after EXPIRY seconds."""
    return DraftExpiry(Orders(store.pool), EXPIRY)


async def fire_when_due(expiry: DraftExpiry) -> Counter[str]:
    """Fire timers until one has been fired; return the outcomes."""

    async def fired() -> Counter[str]:
        await expiry.fire_due()
        return expiry.outcomes

    result: Counter[str] = await eventually(fired)
    return result


async def test_an_untouched_draft_is_cancelled_by_the_system_with_its_timer_as_cause(
    database_url: str, pool: asyncpg.Pool, store: EventStore, arming: SubscriptionRunner, expiry: DraftExpiry
) -> None:
    order_id = await draft(store)
    await arming.catch_up()
    assert await timers(pool) == {order_id: 2}

    assert await fire_when_due(expiry) == {"expired": 1}

    events = await store.read_stream(order_id)
    judged, expired = events[1], events[2]
    assert expired.event == OrderCancelled("expired")
    assert expired.metadata.actor == "system"
    assert expired.metadata.causation_id == str(timer_id(order_id, 2))
    assert expired.metadata.command_id == str(timer_id(order_id, 2))
    assert expired.metadata.correlation_id == judged.metadata.correlation_id
    assert expired.recorded_at - judged.recorded_at >= timedelta(seconds=EXPIRY)
    assert await timers(pool) == {}
    await arming.catch_up()
    assert await timers(pool) == {}

    await SubscriptionRunner(database_url, pool, CustomerNotifications()).catch_up()
    (notification,) = await outbox_rows(pool, order_id)
    assert notification["causation_id"] == str(expired.event_id)
    assert "Reason: expired\n" in notification["body"]


async def test_an_order_changed_after_the_timer_judged_it_keeps_the_change(
    pool: asyncpg.Pool, store: EventStore, arming: SubscriptionRunner, expiry: DraftExpiry
) -> None:
    order_id = await draft(store)
    await arming.catch_up()
    await asyncio.sleep(EXPIRY)
    (due,) = await pool.fetch("SELECT * FROM draft_expiry_timers")  # the timer judges version 2
    # A person adds an item after the judgement, before the timer fires.
    await handle(store, AddItem(order_id, "CUP-1", "Cup", 1200, 1), command_id=uuid4())
    outcome = await expiry.fire(due["order_id"], due["version"], due["timer_id"], due["correlation_id"])

    assert outcome == "changed"
    assert [e.type for e in await store.read_stream(order_id)] == ["OrderCreated", "ItemAdded", "ItemAdded"]
    await arming.catch_up()
    assert await timers(pool) == {order_id: 3}  # armed again by the change
    # Left untouched from then on, it expires, judged at the version of the change.
    assert await fire_when_due(expiry) == {"expired": 1}
    last = (await store.read_stream(order_id))[-1]
    assert (last.version, last.metadata.causation_id) == (4, str(timer_id(order_id, 3)))


async def test_placed_and_cancelled_orders_never_expire(
    pool: asyncpg.Pool, store: EventStore, arming: SubscriptionRunner, expiry: DraftExpiry
) -> None:
    placed, cancelled, untouched = await draft(store), await draft(store), await draft(store)
    await place(store, placed)
    await cancel(store, cancelled)
    await arming.catch_up()
    assert await timers(pool) == {untouched: 2}
    assert await fire_when_due(expiry) == {"expired": 1}
    assert [e.type for e in await store.read_stream(placed)][-1] == "OrderPlaced"
    assert (await store.read_stream(cancelled))[-1].event == OrderCancelled("Changed my mind")


async def test_a_timer_fired_twice_cancels_once(store: EventStore, expiry: DraftExpiry) -> None:
    """A crash after the cancel but before the timer is forgotten fires it again: the store writes once."""
    order_id = await draft(store)
    timer = timer_id(order_id, 2)
    assert await expiry.fire(order_id, 2, timer, str(uuid4())) == "expired"
    assert await expiry.fire(order_id, 2, timer, str(uuid4())) == "expired"
    assert [e.type for e in await store.read_stream(order_id)][-2:] == ["ItemAdded", "OrderCancelled"]


def test_the_expiry_is_seven_days_unless_configured() -> None:
    assert from_environment({}).draft_expiry == DEFAULT_DRAFT_EXPIRY == 7 * 24 * 3600
    assert from_environment({"ORDERS_DRAFT_EXPIRY_SECONDS": "2.5"}).draft_expiry == 2.5
    for bad in ("soon", "0", "-3"):
        with pytest.raises(ValueError, match="ORDERS_DRAFT_EXPIRY_SECONDS must be"):
            from_environment({"ORDERS_DRAFT_EXPIRY_SECONDS": bad})


async def test_expiry_racing_concurrent_edits_never_cancels_an_order_changed_after_it_was_judged(
    database_url: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    orders = [await draft(store, f"customer-{n % 7}") for n in range(60)]
    expiries = [DraftExpiry(Orders(store.pool), EXPIRY) for _ in range(2)]  # two app instances; one leads
    jobs = [
        SubscriptionRunner(database_url, pool, DraftExpiryTimers(), poll_interval=0.05, lock_retry=0.1),
        *(
            LeaderLoop(database_url, "draft_expiry", e.fire_due, interval=0.02, lock_retry=0.1)
            for e in expiries
        ),
    ]
    edits: Counter[str] = Counter()
    acknowledged: dict[str, set[int]] = {order_id: set() for order_id in orders}
    stop = asyncio.Event()

    async def editor(n: int) -> None:
        """Touches orders just around the moment they fall due, as a race would have it."""
        while not stop.is_set():
            order_id = random.choice(orders)
            await asyncio.sleep(random.uniform(0.0, 0.02))
            try:
                result = await handle(
                    store, AddItem(order_id, f"E-{n}-{uuid4().hex[:6]}", "Extra", 100, 1), command_id=uuid4()
                )
            except OrderNotDraft:
                edits["refused: already expired"] += 1
                continue
            except StaleVersion:
                edits["lost a race"] += 1
                continue
            acknowledged[order_id].add(result.last_version)
            edits["acknowledged"] += 1

    async with running(*jobs):
        editors = [asyncio.create_task(editor(n)) for n in range(6)]
        await asyncio.sleep(3.0)
        stop.set()
        await asyncio.gather(*editors)

        async def all_expired() -> bool:
            count = await pool.fetchval("SELECT count(*) FROM order_read_model WHERE status = 'cancelled'")
            return bool(count == len(orders))

        await eventually(all_expired)

    for order_id in orders:
        events = await store.read_stream(order_id)
        assert [e.version for e in events] == list(range(1, len(events) + 1))
        *before, expired = events
        # Exactly one cancel, the last event, judged at the version just before it.
        assert [e.type for e in before].count("OrderCancelled") == 0
        assert expired.metadata.actor == "system"
        assert expired.metadata.causation_id == str(timer_id(order_id, expired.version - 1))
        # Untouched for the whole expiry time before it, by the database's clock.
        assert expired.recorded_at - before[-1].recorded_at >= timedelta(seconds=EXPIRY)
        # Every acknowledged edit is in the log, before the cancel.
        added = {e.version for e in before if isinstance(e.event, ItemAdded) and e.event.sku.startswith("E-")}
        assert added == acknowledged[order_id]
    outcomes = sum((e.outcomes for e in expiries), Counter[str]())
    assert outcomes["expired"] == len(orders)
    assert edits["acknowledged"] > 0
    print(json.dumps({"orders": len(orders), "edits": dict(edits), "expiry": dict(outcomes)}))
