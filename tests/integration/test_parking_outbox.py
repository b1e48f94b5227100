"""A message the relay cannot deliver after its tries is parked; Retry delivers it once, Drop records why."""

from __future__ import annotations

import asyncpg
import pytest

from domain.access import Actor
from store.log.event_store import EventStore
from store.read.parking import NotParked, RetryPolicy
from store.read.subscriptions import SubscriptionRunner
from store.workflows.outbox import CustomerNotifications, Relay
from store.workflows.parked_messages import ParkedMessages
from tests.support.waiting import eventually
from tests.support.workflows import FlakySender, RecordingSender, draft, outbox_rows, place

ADMIN = Actor("account-1", "root", "admin")
TWO_TRIES = RetryPolicy(attempts=2, backoff=0.01, max_backoff=0.01)


async def parked_message(database_url: str, pool: asyncpg.Pool, store: EventStore) -> asyncpg.Record:
    order_id = await draft(store)
    await place(store, order_id)
    await SubscriptionRunner(database_url, pool, CustomerNotifications()).catch_up()
    hopeless = Relay(pool, FlakySender(failures=99), retry=TWO_TRIES)

    async def parked() -> asyncpg.Record | None:
        await hopeless.deliver_due()
        (row,) = await outbox_rows(pool, order_id)
        return row if row["state"] == "parked" else None

    row: asyncpg.Record = await eventually(parked)
    return row


async def test_an_undeliverable_message_is_parked_and_retry_delivers_it_once(
    database_url: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    row = await parked_message(database_url, pool, store)
    assert (row["attempts"], row["parked_at"] is not None) == (2, True)
    assert row["last_error"] == "ConnectionError: mail server unreachable (try 2)"
    messages = ParkedMessages(pool)
    assert [m.id for m in await messages.parked()] == [row["id"]]
    logged = await pool.fetchrow("SELECT * FROM parking_log")
    assert (logged["kind"], logged["subscription"], logged["notification_id"]) == (
        "parked",
        "outbox",
        row["id"],
    )
    # Parked: the relay no longer tries it.
    sender = RecordingSender()
    fixed = Relay(pool, sender, retry=TWO_TRIES)
    await fixed.deliver_due()
    assert sender.sent == []

    await messages.retry(row["id"], ADMIN)
    await fixed.deliver_due()
    await fixed.deliver_due()
    assert [n.id for n in sender.sent] == [row["id"]]
    (after,) = await outbox_rows(pool, row["order_id"])
    assert (after["state"], after["last_error"]) == ("sent", None)
    assert await messages.parked() == []
    with pytest.raises(NotParked):
        await messages.retry(row["id"], ADMIN)


async def test_a_message_retried_that_fails_again_is_parked_again_after_one_try(
    database_url: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    row = await parked_message(database_url, pool, store)
    messages = ParkedMessages(pool)
    await messages.retry(row["id"], ADMIN)
    await Relay(pool, FlakySender(failures=99), retry=TWO_TRIES).deliver_due()
    (again,) = await outbox_rows(pool, row["order_id"])
    assert (again["state"], again["attempts"]) == ("parked", 3)


async def test_drop_records_who_when_and_why_and_the_message_is_never_sent(
    database_url: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    row = await parked_message(database_url, pool, store)
    messages = ParkedMessages(pool)
    await messages.drop(row["id"], ADMIN, "The customer asked by phone; told them there")
    sender = RecordingSender()
    await Relay(pool, sender).deliver_due()
    assert sender.sent == []
    (dropped,) = await outbox_rows(pool, row["order_id"])
    assert dropped["state"] == "dropped"
    entry = await pool.fetchrow("SELECT * FROM parking_log WHERE kind = 'dropped'")
    assert (entry["notification_id"], entry["actor_name"], entry["actor_id"]) == (
        row["id"],
        "root",
        "account-1",
    )
    assert entry["reason"] == "The customer asked by phone; told them there"
    assert entry["stream_id"] == row["order_id"]
    assert entry["event_id"] == row["cause_event_id"]
    with pytest.raises(NotParked):
        await messages.drop(row["id"], ADMIN, "twice")
