"""An event a projection cannot apply is retried, then its order is parked; the others go on.

Held events wait behind the parked one; Retry (after the fix) applies them in
order, once; Skip records who, when and why and applies the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import pytest

from domain.access import Actor
from domain.order import fold
from store.log.event_store import EventStore, Metadata
from store.read.parking import Parking, RetryPolicy
from store.read.subscriptions import SubscriptionRunner
from tests.support.parking import Refuses, add_item, create_applied_in_order, new_order
from tests.support.subscriptions import order_events
from tests.support.waiting import eventually

QUICK = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05)
ADMIN = Actor("account-1", "root", "admin")


@pytest.fixture
async def table(pool: asyncpg.Pool) -> None:
    await create_applied_in_order(pool)


async def applied(pool: asyncpg.Pool, order_id: str) -> list[int]:
    rows = await pool.fetch("SELECT version FROM applied_in_order WHERE stream_id = $1 ORDER BY n", order_id)
    return [row[0] for row in rows]


async def versions(store: EventStore, order_id: str) -> list[int]:
    return [e.version for e in await store.read_stream(order_id)]


@pytest.fixture
async def running(database_url: str, pool: asyncpg.Pool, table: None) -> AsyncIterator[tuple[Refuses, str]]:
    """A runner of a projection whose bug refuses one order, with that order's id."""
    projection = Refuses()
    runner = SubscriptionRunner(
        database_url, pool, projection, retry=QUICK, poll_interval=0.05, lock_retry=0.1
    )
    task = asyncio.create_task(runner.run())
    try:
        yield projection, runner.name
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def parked_row(pool: asyncpg.Pool, order_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow("SELECT * FROM parked_streams WHERE stream_id = $1", order_id)


async def bad_order_parked(
    pool: asyncpg.Pool, store: EventStore, projection: Refuses
) -> tuple[str, str, asyncpg.Record]:
    """A good and a bad order written together; the bad one parked after its tries, the good applied."""
    good, bad = await new_order(store), f"order-{uuid4()}"
    projection.broken.add(bad)
    events = order_events(bad, "grace", 2, place=False)
    await store.append(bad, 0, events, uuid4(), Metadata(actor="test"), fold(events))
    row = await eventually(lambda: parked_row(pool, bad))
    await eventually(lambda: caught_up(pool, store, good))
    return good, bad, row


async def caught_up(pool: asyncpg.Pool, store: EventStore, order_id: str) -> bool:
    return await applied(pool, order_id) == await versions(store, order_id)


async def test_a_bad_event_parks_its_order_only_after_the_policys_tries_and_the_others_go_on(
    pool: asyncpg.Pool, store: EventStore, running: tuple[Refuses, str]
) -> None:
    projection, _ = running
    good, bad, row = await bad_order_parked(pool, store, projection)
    assert (row["subscription"], row["version"], row["attempts"]) == ("test_refuser", 1, QUICK.attempts)
    assert row["error"] == "RuntimeError: cannot apply OrderCreated v1"
    assert projection.tries == {(bad, 1): QUICK.attempts}, "tried exactly as often as the policy says"

    # Later events: the parked order's wait behind it; another order's are applied.
    await add_item(store, bad, "LATE-1")
    await add_item(store, good, "LATE-2")
    other = await new_order(store, "lin")
    await eventually(lambda: caught_up(pool, store, other))
    await eventually(lambda: caught_up(pool, store, good))
    assert await applied(pool, bad) == []
    (shown,) = await Parking(pool, {projection.name: projection}).parked()
    assert (shown.stream_id, shown.event_type, shown.waiting) == (bad, "OrderCreated", 3)
    entries = await pool.fetch("SELECT kind, stream_id, actor_name FROM parking_log")
    assert [tuple(e) for e in entries] == [("parked", bad, None)]


async def test_retry_after_the_fix_applies_the_held_events_in_order_exactly_once(
    pool: asyncpg.Pool, store: EventStore, running: tuple[Refuses, str]
) -> None:
    projection, _ = running
    _, bad, _ = await bad_order_parked(pool, store, projection)
    await add_item(store, bad, "LATE-1")
    await add_item(store, bad, "LATE-2")
    parking = Parking(pool, {projection.name: projection})
    # The runner has read the late events (and held them) once another order's event is applied.
    marker = await new_order(store, "lin")
    await eventually(lambda: caught_up(pool, store, marker))

    again = await parking.retry(projection.name, bad, ADMIN)  # the bug is still there
    assert again.applied == 0
    assert again.parked_again is not None
    assert again.parked_again.attempts == QUICK.attempts + 1

    projection.broken.clear()  # the fix is deployed
    resumed = await parking.retry(projection.name, bad, ADMIN)
    assert (resumed.applied, resumed.parked_again) == (5, None)
    assert await applied(pool, bad) == [1, 2, 3, 4, 5]
    assert await parked_row(pool, bad) is None
    # From now on the runner applies the order's new events itself.
    await add_item(store, bad, "AFTER")
    await eventually(lambda: caught_up(pool, store, bad))
    assert await applied(pool, bad) == [1, 2, 3, 4, 5, 6]
    kinds = [tuple(r) for r in await pool.fetch("SELECT kind, actor_name FROM parking_log ORDER BY entry_id")]
    assert kinds == [("parked", None), ("retried", "root"), ("retried", "root")]
    with pytest.raises(Exception, match="is parked"):
        await parking.retry(projection.name, bad, ADMIN)


async def test_skip_records_who_when_and_why_and_applies_the_rest(
    pool: asyncpg.Pool, store: EventStore, running: tuple[Refuses, str]
) -> None:
    projection, _ = running
    _, bad, row = await bad_order_parked(pool, store, projection)
    await add_item(store, bad, "LATE-1")
    parking = Parking(pool, {projection.name: projection})
    marker = await new_order(store, "lin")
    await eventually(lambda: caught_up(pool, store, marker))
    # The bug refuses the order's first event only: the rest of it is fine.
    projection.only_version = 1

    resumed = await parking.skip(projection.name, bad, ADMIN, "Created by a test of a broken release")
    assert (resumed.applied, resumed.parked_again) == (3, None)
    assert await applied(pool, bad) == [2, 3, 4]
    entry = await pool.fetchrow("SELECT * FROM parking_log WHERE kind = 'skipped'")
    assert (entry["subscription"], entry["stream_id"], entry["version"]) == (projection.name, bad, 1)
    assert entry["event_id"] == row["event_id"]
    assert (entry["actor_id"], entry["actor_name"]) == ("account-1", "root")
    assert entry["reason"] == "Created by a test of a broken release"
    assert entry["at"] is not None
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pool.execute("DELETE FROM parking_log")


async def test_a_retry_while_the_order_keeps_changing_applies_every_event_once_and_in_order(
    pool: asyncpg.Pool, store: EventStore, running: tuple[Refuses, str]
) -> None:
    projection, _ = running
    _, bad, _ = await bad_order_parked(pool, store, projection)

    async def keep_adding() -> None:
        for n in range(30):
            await add_item(store, bad, f"LIVE-{n}")

    writer = asyncio.create_task(keep_adding())

    async def some_held() -> bool:
        return bool(await pool.fetchval("SELECT count(*) > 10 FROM events WHERE stream_id = $1", bad))

    await eventually(some_held)
    projection.broken.clear()
    resumed = await Parking(pool, {projection.name: projection}).retry(projection.name, bad, ADMIN)
    assert resumed.parked_again is None
    await writer
    await eventually(lambda: caught_up(pool, store, bad))
    assert await applied(pool, bad) == list(range(1, 34))  # 3 written before, 30 during the retry
