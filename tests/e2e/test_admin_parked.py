"""The admin page of parked events and messages, as an admin uses it; `orders verify` lists the skips."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from domain.access import Actor
from store.log.event_store import EventStore
from store.read.parking import Parking, RetryPolicy
from store.read.subscriptions import SubscriptionRunner
from store.workflows.outbox import CustomerNotifications, Relay
from store.workflows.parked_messages import ParkedMessages
from tests.support.accounts import session_at
from tests.support.app import make_app
from tests.support.page_client import PageClient
from tests.support.parking import Refuses, add_item, create_applied_in_order, new_order
from tests.support.servers import ROOT
from tests.support.subscriptions import insert_unknown_event
from tests.support.waiting import eventually
from tests.support.workflows import FlakySender, draft, outbox_rows, place
from web.access import SESSION_COOKIE

QUICK = RetryPolicy(attempts=2, backoff=0.05, max_backoff=0.1)
ORDERS = Path(sys.executable).parent / "orders"
BAD = "from-the-future"


@pytest.fixture
def mail_server() -> FlakySender:
    """A mail server that fails once per message, and records what it delivered."""
    return FlakySender(failures=1)


@pytest.fixture
async def admin(database_url: str, mail_server: FlakySender) -> AsyncIterator[PageClient]:
    """The app with its subscriptions, a quick retry policy, and a mail server that fails once per message:
    with one try, every message is parked."""
    app = make_app(
        database_url,
        csrf_secret="test-secret",
        pool_size=6,
        subscription_retry=QUICK,
        outbox_retry=RetryPolicy(attempts=1, backoff=0.05, max_backoff=0.05),
        notification_sender=mail_server,
    )
    async with AsyncTestClient(app=app) as client:
        client.cookies.set(SESSION_COOKIE, await session_at(database_url, "root", "admin"))
        yield PageClient(client)


async def page_showing(browser: PageClient, url: str, *texts: str) -> str:
    async def shown() -> str | None:
        page = (await browser.get(url)).text
        return page if all(text in page for text in texts) else None

    found: str = await eventually(shown, timeout=20.0, interval=0.1)
    return found


async def counts(pool: asyncpg.Pool) -> tuple[int, int, int]:
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM parked_streams), (SELECT count(*) FROM parking_log), "
        "(SELECT count(*) FROM outbox WHERE state = 'parked')"
    )
    assert row is not None
    return row[0], row[1], row[2]


async def test_an_admin_sees_parked_streams_and_messages_retries_and_skips_and_bad_input_changes_nothing(
    admin: PageClient, pool: asyncpg.Pool
) -> None:
    order_id = await admin.create_order("ada", "EUR")
    await admin.post(
        f"/orders/{order_id}/items", {"sku": "S-1", "name": "Slate", "unit_price": "4.25", "quantity": "2"}
    )
    await admin.post(f"/orders/{order_id}/place")
    await insert_unknown_event(pool)
    page = await page_showing(
        admin,
        "/admin/projections",
        f'id="parked-customer_summaries-{BAD}"',
        f'id="parked-sales_by_day-{BAD}"',
        'id="parked-message-',
    )
    assert "OrderTeleported v1" in page
    assert "UnknownEventType: unknown event type &#39;OrderTeleported&#39;" in page
    assert "ConnectionError: mail server unreachable (try 1)" in page
    # Other orders go on: the summary of a later order is there.
    later = await admin.create_order("grace", "EUR")
    await admin.post(
        f"/orders/{later}/items", {"sku": "T-1", "name": "Tea", "unit_price": "1.00", "quantity": "1"}
    )
    await admin.post(f"/orders/{later}/place")
    await page_showing(admin, "/customers/grace", "<dt>Placed value</dt><dd>1.00 EUR</dd>")

    async def both_messages_parked() -> bool:
        return bool(await pool.fetchval("SELECT count(*) = 2 FROM outbox WHERE state = 'parked'"))

    await eventually(both_messages_parked)
    before = await counts(pool)
    stream = {"subscription": "customer_summaries", "order": BAD}
    refusals = [
        ("/admin/parked/skip", stream | {"reason": "   "}, 422, "Give a reason, 1 to 500 characters"),
        ("/admin/parked/skip", stream | {"reason": "ok\x07"}, 422, "must not contain control characters"),
        ("/admin/parked/skip", stream | {"reason": "x" * 501}, 422, "(this one has 501)"),
        (
            "/admin/parked/skip",
            stream | {"order": "nope", "reason": "fine"},
            404,
            "Nothing of order nope is parked",
        ),
        ("/admin/parked/retry", {"subscription": "nothing", "order": BAD}, 404, "is parked for nothing"),
        (
            "/admin/parked/messages/drop",
            {"notification": "999999", "reason": "r"},
            404,
            "999999 is not parked",
        ),
        ("/admin/parked/messages/retry", {"notification": "x"}, 404, "is not parked"),
    ]
    for url, form, status, text in refusals:
        refused = await admin.post(url, form, htmx=True)
        assert (refused.status_code, text in refused.text) == (status, True), (url, form, refused.text[:300])
    message_id = await pool.fetchval("SELECT min(id) FROM outbox WHERE state = 'parked'")
    refused = await admin.post("/admin/parked/messages/drop", {"notification": str(message_id)}, htmx=True)
    assert refused.status_code == 422
    assert await counts(pool) == before, "a refused request changes nothing"

    # Retry with the bug still there: parked again, with the error.
    again = await admin.post("/admin/parked/retry", stream, htmx=True)
    assert again.status_code == 200
    assert "OrderTeleported v1 failed again and stays parked" in again.text
    # Skip with a reason: recorded with the admin's name; the row leaves the page.
    skipped = await admin.post(
        "/admin/parked/skip", stream | {"reason": "Written by a newer release"}, htmx=True
    )
    assert skipped.status_code == 200
    assert "OrderTeleported v1 skipped." in skipped.text
    assert f'id="parked-customer_summaries-{BAD}"' not in skipped.text
    assert f'id="parked-sales_by_day-{BAD}"' in skipped.text
    entry = await pool.fetchrow("SELECT * FROM parking_log WHERE kind = 'skipped'")
    assert (entry["subscription"], entry["stream_id"], entry["actor_name"]) == (
        "customer_summaries",
        BAD,
        "root",
    )
    assert entry["reason"] == "Written by a newer release"

    # The parked message: Retry delivers it (the mail server fails once per message).
    retried = await admin.post("/admin/parked/messages/retry", {"notification": str(message_id)}, htmx=True)
    assert f"Message {message_id} is queued for delivery again." in retried.text

    async def sent() -> bool:
        return bool(await pool.fetchval("SELECT state = 'sent' FROM outbox WHERE id = $1", message_id))

    await eventually(sent)
    # Without htmx, a post answers 303 to the page.
    plain = await admin.post("/admin/parked/retry", {"subscription": "sales_by_day", "order": BAD})
    assert (plain.status_code, plain.headers["location"]) == (303, "/admin/parked")
    assert "Parked events and messages" in (await admin.get("/admin/parked")).text


def run_verify(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [str(ORDERS), "verify"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def test_orders_verify_lists_skips_and_drops_and_still_exits_0(
    database_url: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    root = Actor("account-1", "root", "admin")
    await create_applied_in_order(pool)
    bad = await new_order(store)
    projection = Refuses(bad)
    projection.only_version = 1
    runner = SubscriptionRunner(database_url, pool, projection, retry=QUICK)
    for _ in range(QUICK.attempts - 1):
        with pytest.raises(Exception, match="cannot apply OrderCreated v1"):
            await runner.catch_up()
    await runner.catch_up()  # the last try: parked
    await add_item(store, bad, "LATE")
    await Parking(pool, {projection.name: projection}).skip(
        projection.name, bad, root, "Bad data, fixed by hand"
    )

    order_id = await draft(store)
    await place(store, order_id)
    await SubscriptionRunner(database_url, pool, CustomerNotifications()).catch_up()
    await Relay(pool, FlakySender(failures=9), retry=RetryPolicy(attempts=1)).deliver_due()
    (message,) = await outbox_rows(pool, order_id)
    await ParkedMessages(pool).drop(message["id"], root, "Told the customer by phone")

    verified = run_verify(database_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    lines = verified.stdout.splitlines()
    assert "orders verify: no differences" in lines
    assert "orders verify: 2 set aside by an admin (recorded decisions, not integrity failures):" in lines
    skip_line = next(line for line in lines if "skipped" in line)
    assert f"test_refuser: skipped OrderCreated v1 of order {bad}" in skip_line
    assert skip_line.endswith("by root: 'Bad data, fixed by hand'")
    drop_line = next(line for line in lines if "dropped" in line)
    assert f"outbox: dropped message {message['id']} (order_placed) of order {order_id}" in drop_line
    assert drop_line.endswith("by root: 'Told the customer by phone'")


async def placed_order(admin: PageClient, customer: str) -> str:
    order_id = await admin.create_order(customer, "EUR")
    await admin.post(
        f"/orders/{order_id}/items", {"sku": "S-1", "name": "Slate", "unit_price": "4.25", "quantity": "2"}
    )
    await admin.post(f"/orders/{order_id}/place")
    return order_id


async def test_an_admin_drops_a_parked_message_with_a_reason_and_retries_another_and_only_that_one_is_sent(
    admin: PageClient, pool: asyncpg.Pool, database_url: str, mail_server: FlakySender
) -> None:
    dropped_order, retried_order = await placed_order(admin, "ada"), await placed_order(admin, "grace")

    async def parked_ids() -> list[int] | None:
        rows = await pool.fetch(
            "SELECT id FROM outbox WHERE state = 'parked' ORDER BY order_id = $1 DESC", dropped_order
        )
        return [r[0] for r in rows] if len(rows) == 2 else None

    dropped, retried = await eventually(parked_ids)
    await page_showing(
        admin, "/admin/parked", f'id="parked-message-{dropped}"', f'id="parked-message-{retried}"'
    )
    before = await pool.fetchval("SELECT now()")

    answer = await admin.post(
        "/admin/parked/messages/drop",
        {"notification": str(dropped), "reason": "Told the customer by phone"},
        htmx=True,
    )
    assert answer.status_code == 200
    assert f"Message {dropped} is dropped." in answer.text
    assert f'id="parked-message-{dropped}"' not in answer.text
    assert f'id="parked-message-{retried}"' in answer.text
    root = await pool.fetchval("SELECT account_id::text FROM accounts WHERE name = 'root'")
    entry = await pool.fetchrow("SELECT * FROM parking_log WHERE kind = 'dropped'")
    assert entry is not None
    assert (entry["notification_id"], entry["stream_id"], entry["event_type"]) == (
        dropped,
        dropped_order,
        "order_placed",
    )
    assert (entry["actor_id"], entry["actor_name"], entry["reason"]) == (
        root,
        "root",
        "Told the customer by phone",
    )
    assert before <= entry["at"] <= await pool.fetchval("SELECT now()")

    # The other one, retried as a plain form posts it: 303 back to the page, then delivered.
    plain = await admin.post("/admin/parked/messages/retry", {"notification": str(retried)})
    assert (plain.status_code, plain.headers["location"]) == (303, "/admin/parked")

    async def sent() -> bool:
        return bool(await pool.fetchval("SELECT state = 'sent' FROM outbox WHERE id = $1", retried))

    await eventually(sent)
    page = (await admin.get("/admin/parked")).text
    assert "No parked messages." in page
    # The relay has run since the drop: the dropped message was tried once, before it was parked, and never
    # again; what the mail server delivered is the retried one, once.
    assert [(n.id, n.order_id) for n in mail_server.sent] == [(retried, retried_order)]
    assert mail_server.tries == {dropped: 1, retried: 2}
    states = await pool.fetch("SELECT id, state, sent_at FROM outbox ORDER BY id")
    assert {r["id"]: (r["state"], r["sent_at"] is None) for r in states} == {
        dropped: ("dropped", True),
        retried: ("sent", False),
    }

    verified = run_verify(database_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    lines = verified.stdout.splitlines()
    assert "orders verify: 1 set aside by an admin (recorded decisions, not integrity failures):" in lines
    assert (
        f"  {entry['at']:%Y-%m-%d %H:%M:%S%z} outbox: dropped message {dropped} (order_placed) "
        f"of order {dropped_order} by root: 'Told the customer by phone'"
    ) in lines
