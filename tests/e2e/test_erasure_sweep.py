"""Forgetting a customer, checked the way an auditor would: look everywhere for their details.

A customer with recognisable details is registered, orders, places, and is notified; live
streams are open on their order and on the log. Then an admin forgets them, and every table
of the database, the exports (taken before and after), the pages (current and at every
version), the API, the live streams and the log lines are searched for any piece of those
details: none may be found. Before the forget the same search finds them (so the search
looks where they would be), `orders verify` passes after it, and the order's totals and
timeline are what they were, apart from the erased address.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

import asyncpg
import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from domain.personal import SEALED_PREFIX
from store.log.integrity import verify
from store.personal import Keyring, MasterKey
from store.workflows.outbox import Notification
from tests.support.accounts import session_at, token_for
from tests.support.app import TEST_MASTER_KEY, make_app
from tests.support.page_client import PageClient
from tests.support.servers import uvicorn_server
from tests.support.sse import sse_events
from tests.support.waiting import eventually
from tests.support.workflows import RecordingSender
from web.access import SESSION_COOKIE

NAME, EMAIL, ADDRESS = (
    "Zebulon Quigglesworth",
    "zebulon.quigglesworth@example.org",
    "12 Marigold Lane\nPemberton",
)
# Any of these pieces found anywhere is a leak: the name's rarer half, the mailbox, the street.
PIECES = ("Quigglesworth", "zebulon.quigglesworth", "Marigold")
CUSTOMER = "cust-7731"


def leaks(text: str) -> list[str]:
    return [piece for piece in PIECES if piece.lower() in text.lower()]


async def every_table(pool: asyncpg.Pool) -> str:
    """Every row of every table in the database's schemas, bytea included, as text."""
    tables = await pool.fetch(
        "SELECT schemaname, tablename FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
    )
    dump = []
    for schema, table in tables:
        for row in await pool.fetch(f'SELECT * FROM "{schema}"."{table}"'):
            for value in row.values():
                dump.append(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
    return "\n".join(dump)


async def live(url: str, session: str, path: str, count: int) -> str:
    """The first `count` messages a live stream (server-sent events) sends, as text."""
    rows: list[str] = []
    async with (
        httpx.AsyncClient(base_url=url, timeout=30, cookies={SESSION_COOKIE: session}) as client,
        client.stream("GET", path) as response,
    ):
        assert response.status_code == 200, path
        async for event in sse_events(response):
            rows.append(event.data)
            if len(rows) == count:
                break
    return "\n".join(rows)


async def live_streams(url: str, session: str, order_id: str, events: int, versions: int) -> list[str]:
    """The whole log and the whole order, replayed through their live streams from the start."""
    return [
        await live(url, session, "/events/live?horizon=1", events),
        await live(url, session, f"/orders/{order_id}/live?version=0", versions),
    ]


@pytest.fixture
async def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
async def admin(database_url: str, sender: RecordingSender) -> AsyncIterator[PageClient]:
    app = make_app(database_url, csrf_secret="erasure", pool_size=8, notification_sender=sender)
    async with AsyncTestClient(app=app) as client:
        client.cookies.set(SESSION_COOKIE, await session_at(database_url, "root", "admin"))
        yield PageClient(client)


async def every_page(admin: PageClient, order_id: str, versions: int, positions: list[int]) -> dict[str, str]:
    """Each page that shows the order, its customer or the log, by URL."""
    urls = [
        "/orders",
        f"/orders?customer={CUSTOMER}",
        f"/orders/{order_id}",
        f"/orders/{order_id}/timeline",
        f"/orders/{order_id}/diff?from=0&to={versions}",
        "/events",
        f"/events?customer={CUSTOMER}",
        "/notifications",
        f"/notifications?order_id={order_id}",
        "/customers",
        f"/customers/{CUSTOMER}",
        "/sales",
    ]
    urls += [f"/orders/{order_id}/history?version={v}" for v in range(1, versions + 1)]
    urls += [f"/orders/{order_id}/events/{v}" for v in range(1, versions + 1)]
    pages = {}
    for url in urls:
        response = await admin.get(url)
        assert response.status_code == 200, f"{url}: {response.status_code}"
        pages[url] = response.text
    return pages


async def every_api_answer(admin: PageClient, token: str, order_id: str) -> dict[str, str]:
    headers = {"authorization": f"Bearer {token}"}
    answers = {}
    for url in (
        f"/api/orders/{order_id}",
        f"/api/orders/{order_id}/events",
        "/api/orders",
        "/api/events",
        f"/api/customers/{CUSTOMER}",
        "/api/customers",
    ):
        response = await admin.client.get(url, headers=headers)
        assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:200]}"
        answers[url] = response.text
    return answers


async def exports(admin: PageClient, order_id: str) -> dict[str, str]:
    found = {}
    for url in (
        "/events/export?format=ndjson",
        "/events/export?format=csv",
        f"/orders/{order_id}/export?format=ndjson",
        f"/orders/{order_id}/export?format=csv",
    ):
        response = await admin.get(url)
        assert response.status_code == 200, url
        found[url] = response.text
    return found


def sent_text(sender: RecordingSender) -> str:
    return "\n".join(msgspec.json.encode(n).decode() for n in sender.sent)


async def test_after_forgetting_a_customer_their_details_are_nowhere_and_the_order_is_intact(
    admin: PageClient,
    pool: asyncpg.Pool,
    database_url: str,
    sender: RecordingSender,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = await token_for(pool, "auditor", "admin")
    registered = await admin.post(
        "/customers", {"customer_id": CUSTOMER, "name": NAME, "email": EMAIL, "address": ADDRESS}
    )
    assert registered.status_code == 303, registered.text
    order_id = await admin.create_order(CUSTOMER)
    for sku, price in (("K-1", "9.99"), ("M-2", "120.00")):
        added = await admin.post(
            f"/orders/{order_id}/items",
            {"sku": sku, "name": f"Thing {sku}", "unit_price": price, "quantity": "2"},
        )
        assert added.status_code == 303
    assert (await admin.post(f"/orders/{order_id}/place")).status_code == 303

    async def delivered() -> list[Notification]:
        return list(sender.sent)

    notified: list[Notification] = await eventually(delivered, timeout=20.0, interval=0.1)
    assert EMAIL in sent_text(sender), "the notification went to the customer's address"

    positions = [r[0] for r in await pool.fetch("SELECT position FROM events ORDER BY position")]
    before_pages = await every_page(admin, order_id, 4, positions)
    before_api = await every_api_answer(admin, token, order_id)
    before_exports = await exports(admin, order_id)
    # The search looks where the details are shown while the customer is known...
    assert leaks(before_pages[f"/customers/{CUSTOMER}"]) == list(PIECES)
    assert "Marigold" in before_pages[f"/orders/{order_id}"]
    assert "Quigglesworth" in before_api[f"/api/customers/{CUSTOMER}"]
    # ...and never in what is stored or exported, even then.
    assert leaks(await every_table(pool)) == []
    for url, text in before_exports.items():
        assert leaks(text) == [], url
        assert SEALED_PREFIX in text, f"{url} carries the sealed fields"
    order_page_before = before_pages[f"/orders/{order_id}"]

    # A second instance, as deployed, serves the live streams (they need a real server).
    session = await session_at(database_url, "streamer", "admin")
    with uvicorn_server(database_url, env={"ORDERS_MASTER_KEY_FILE": str(TEST_MASTER_KEY)}) as server:
        live_before = await live_streams(server, session, order_id, 5, 4)
    assert leaks(live_before[0]) == list(PIECES), "the live log shows the details while they are known"
    forgotten = await admin.post(
        f"/customers/{CUSTOMER}/forget", {"reason": "Asked to be forgotten, ticket 4471"}
    )
    assert forgotten.status_code == 303, forgotten.text
    # A change after the forget: it reaches the live streams, and its notification is not sent.
    sent_before = len(sender.sent)
    cancelled = await admin.post(f"/orders/{order_id}/cancel", {"reason": "Customer left"})
    assert cancelled.status_code == 303

    async def both_settled() -> bool:
        settled = "SELECT count(*) FROM outbox WHERE order_id = $1 AND state <> 'pending'"
        return bool(await pool.fetchval(settled, order_id) == 2)

    await eventually(both_settled, timeout=20.0)
    with uvicorn_server(database_url, env={"ORDERS_MASTER_KEY_FILE": str(TEST_MASTER_KEY)}) as server:
        live_after = await live_streams(server, session, order_id, 7, 5)

    after_pages = await every_page(admin, order_id, 5, positions)
    after_api = await every_api_answer(admin, token, order_id)
    after_exports = await exports(admin, order_id)
    found = {
        "every table": leaks(await every_table(pool)),
        **{f"page {url}": leaks(text) for url, text in after_pages.items()},
        **{f"api {url}": leaks(text) for url, text in after_api.items()},
        **{f"export {url}": leaks(text) for url, text in after_exports.items()},
        **{f"live stream {n}": leaks(text) for n, text in enumerate(live_after)},
        "log lines": leaks("\n".join(record.getMessage() for record in caplog.records)),
    }
    assert {where: pieces for where, pieces in found.items() if pieces} == {}
    assert len(sender.sent) == sent_before, "a notification was sent to a forgotten customer"
    assert "erased" in after_pages[f"/customers/{CUSTOMER}"]
    assert "erased" in after_pages[f"/orders/{order_id}/history?version=4"]

    # The export taken before cannot reveal them now: what it seals opens with no key there is.
    keyring = Keyring(pool, MasterKey.from_file(TEST_MASTER_KEY))
    sealed = set(
        re.findall(r"pii:1:[^\"\\,]+:[A-Za-z0-9_=-]+", before_exports["/events/export?format=ndjson"])
    )
    assert sealed
    await keyring.load({value.split(":")[2] for value in sealed})
    assert {keyring.open(value) for value in sealed} == {"[erased]"}

    # The chain holds, and the order is what it was apart from the erased address.
    report = await verify(pool)
    assert report.findings == []
    total = re.compile(r'class="total"[^>]*>([^<]+)<')
    assert total.findall(after_pages[f"/orders/{order_id}/history?version=4"]) == total.findall(
        order_page_before
    )
    order_before = msgspec.json.decode(before_api[f"/api/orders/{order_id}"])
    order_after = msgspec.json.decode(after_api[f"/api/orders/{order_id}"])
    assert order_after["total"] == order_before["total"]
    assert order_after["lines"] == order_before["lines"]
    assert (order_before["ship_to"], order_after["ship_to"]) == (ADDRESS, "[erased]")
    events_before = msgspec.json.decode(before_api[f"/api/orders/{order_id}/events"])
    events_after = msgspec.json.decode(after_api[f"/api/orders/{order_id}/events"])
    assert [e["type"] for e in events_after["events"][:4]] == [e["type"] for e in events_before["events"]]
    assert notified
