"""Customers' pages: register, change the details, forget; and what every page shows afterwards.

A customer's name, email address and shipping address are shown to whoever may
see them until an admin forgets the customer; from then on the customer page,
the order page (now and at any version, from the render cache or not, fresh or
revalidated) and the event log show them as erased, and the orders stay whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import anyio
import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from tests.support.accounts import session_at, token_at
from tests.support.app import make_app
from tests.support.servers import uvicorn_server
from tests.support.sse import sse_events
from tests.support.visitors import Visitor, ask, visitors
from web.access import SESSION_COOKIE

NAME, EMAIL, ADDRESS = "Ada Quillfeather", "ada.quill@example.org", "7 Lantern Mews\nPortwick PW1 2AB"
DETAILS = {"name": NAME, "email": EMAIL, "address": ADDRESS}


class Shop:
    """The app in process, a visitor of each role (the customer is "cust-a"), and the service's door."""

    def __init__(self, client: AsyncTestClient[Any], pool: asyncpg.Pool, who: dict[str, Visitor]) -> None:
        self.client, self.pool, self.who = client, pool, who

    async def as_(
        self, role: str, method: str, url: str, form: dict[str, str] | None = None
    ) -> httpx.Response:
        return await ask(self.client, self.who[role], method, url, form=form)

    async def conditional_get(self, role: str, url: str, etag: str) -> httpx.Response:
        self.client.cookies.clear()
        headers, _ = self.who[role].request("GET", url, None, None)
        headers["If-None-Match"] = etag
        return await self.client.get(url, headers=headers, follow_redirects=False)

    async def register(self, customer_id: str, role: str = "clerk", **details: str) -> httpx.Response:
        form = {"customer_id": customer_id, "command_id": str(uuid4()), **DETAILS, **details}
        return await self.as_(role, "POST", "/customers", form)

    async def placed_order(self, customer_id: str) -> str:
        """An order of two cups of tea (7.00 EUR), placed by a clerk: it ships to the customer's address."""
        created = await self.as_("clerk", "POST", "/orders", {"customer_id": customer_id, "currency": "EUR"})
        assert created.status_code == 303, created.text
        order_id = created.headers["location"].rsplit("/", 1)[1]
        item = {"sku": "TEA-1", "name": "Green tea", "unit_price": "3.50", "quantity": "2"}
        for path, form in (("items", item), ("place", {})):
            answer = await self.as_("clerk", "POST", f"/orders/{order_id}/{path}", form)
            assert answer.status_code == 303, answer.text
        return order_id

    async def written(self) -> tuple[Any, ...]:
        row = await self.pool.fetchrow(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM customers),"
            " (SELECT coalesce(sum(version), 0) FROM customers), (SELECT count(*) FROM customer_keys)"
        )
        assert row is not None
        return tuple(row)

    async def event_types(self, customer_id: str) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT type FROM events WHERE stream_id = $1 ORDER BY version", f"customer:{customer_id}"
        )
        return [row["type"] for row in rows]


@pytest.fixture
async def shop(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[Shop]:
    app = make_app(database_url, csrf_secret="test-secret", pool_size=4, subscriptions=False)
    async with AsyncTestClient(app=app) as client:
        yield Shop(client, pool, await visitors(client, pool, "cust-a", prefix="cp"))


def shows_details(html: str) -> bool:
    return any(part in html for part in (NAME, EMAIL, "7 Lantern Mews", "Portwick"))


async def test_a_clerk_registers_a_customer_and_sees_their_details_opened(shop: Shop) -> None:
    registered = await shop.register("ada-1")
    assert registered.status_code == 303, registered.text
    assert registered.headers["location"] == "/customers/ada-1"
    page = await shop.as_("clerk", "GET", "/customers/ada-1")
    listed = await shop.as_("viewer", "GET", "/customers?customer=ada")
    stored = await shop.pool.fetchrow("SELECT name, email, address, status FROM customers")
    assert page.status_code == 200
    assert NAME in page.text
    assert EMAIL in page.text
    assert "7 Lantern Mews\nPortwick PW1 2AB" in page.text
    assert "registered" in page.text
    assert listed.status_code == 200
    assert NAME in listed.text
    assert EMAIL in listed.text
    assert await shop.event_types("ada-1") == ["CustomerRegistered"]
    assert stored is not None
    assert stored["status"] == "registered"
    assert not any(NAME in stored[f] or EMAIL in stored[f] for f in ("name", "email", "address"))


async def test_the_register_form_asks_for_every_field(shop: Shop) -> None:
    form = await shop.as_("clerk", "GET", "/customers/new")
    assert form.status_code == 200
    for field in ('name="customer_id"', 'name="name"', 'name="email"', '<textarea name="address"'):
        assert field in form.text


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("email", "not-an-email", "Give an email address such as name@example.com."),
        ("email", "ada@example", "Give an email address such as name@example.com."),
        ("name", "A" * 201, "The name must be at most 200 characters"),
        ("name", "Ada\x1b[31m", "The name must not contain control characters."),
        ("name", "   ", "Give the customer&#39;s name"),
        ("address", "x" * 501, "The address must be at most 500 characters"),
        ("address", "Bell\x07 Street", "The address must not contain control characters"),
        ("customer_id", " ", "customer"),
    ],
)
async def test_bad_input_is_refused_beside_its_field_and_writes_nothing(
    shop: Shop, field: str, value: str, words: str
) -> None:
    before = await shop.written()
    refused = await shop.as_("clerk", "POST", "/customers", {"customer_id": "bad-1", **DETAILS, field: value})
    assert refused.status_code == 422, refused.text
    assert words in refused.text
    assert f'name="{field}"' in refused.text
    marked = refused.text.split(f'name="{field}"', 1)[1].split(">", 1)[0]
    assert 'aria-invalid="true"' in marked
    assert await shop.written() == before


async def test_a_registered_customer_id_cannot_register_again(shop: Shop) -> None:
    await shop.register("ada-1")
    before = await shop.written()
    again = await shop.register("ada-1", name="Somebody Else")
    assert again.status_code == 409
    assert "already registered" in again.text
    assert await shop.written() == before


async def test_the_same_form_sent_twice_registers_once(shop: Shop) -> None:
    form = {"customer_id": "ada-1", "command_id": str(uuid4()), **DETAILS}
    first = await shop.as_("clerk", "POST", "/customers", form)
    second = await shop.as_("clerk", "POST", "/customers", form)
    assert (first.status_code, second.status_code) == (303, 303)
    assert await shop.event_types("ada-1") == ["CustomerRegistered"]


async def test_a_clerk_changes_the_details_and_the_page_shows_the_new_ones(shop: Shop) -> None:
    await shop.register("ada-1")
    changed = await shop.as_(
        "clerk",
        "POST",
        "/customers/ada-1",
        {**DETAILS, "email": "ada.new@example.org", "command_id": str(uuid4())},
    )
    page = await shop.as_("clerk", "GET", "/customers/ada-1")
    assert changed.status_code == 303
    assert "ada.new@example.org" in page.text
    assert EMAIL not in page.text
    assert await shop.event_types("ada-1") == ["CustomerRegistered", "CustomerDetailsChanged"]


async def test_a_bad_change_is_refused_beside_its_field_and_writes_nothing(shop: Shop) -> None:
    await shop.register("ada-1")
    before = await shop.written()
    refused = await shop.as_("clerk", "POST", "/customers/ada-1", {**DETAILS, "email": "nope"})
    assert refused.status_code == 422
    assert 'id="details-problem"' in refused.text
    assert "Give an email address such as name@example.com." in refused.text
    assert await shop.written() == before


async def test_an_unknown_customer_is_not_found(shop: Shop) -> None:
    for role, method, url, form in [
        ("clerk", "GET", "/customers/nobody-here", None),
        ("clerk", "POST", "/customers/nobody-here", DETAILS),
        ("admin", "POST", "/customers/nobody-here/forget", {"reason": "Asked to"}),
    ]:
        answer = await shop.as_(role, method, url, form)
        assert answer.status_code == 404, (method, url)
    assert await shop.pool.fetchval("SELECT count(*) FROM events") == 0


async def test_an_admin_forgets_a_customer_and_every_page_shows_them_erased(shop: Shop) -> None:
    await shop.register("ada-1")
    order_id = await shop.placed_order("ada-1")
    before_page = await shop.as_("clerk", "GET", f"/orders/{order_id}")
    before_history = await shop.as_("clerk", "GET", f"/orders/{order_id}/history?version=3")
    customer_page = await shop.as_("admin", "GET", "/customers/ada-1")
    assert "Ships to" in before_page.text
    assert "7 Lantern Mews" in before_page.text
    assert "7 Lantern Mews" in before_history.text
    before_placing = await shop.as_("clerk", "GET", f"/orders/{order_id}/events/3")
    assert "7 Lantern Mews" in before_placing.text
    assert "pii:1:" not in before_placing.text
    assert "Forget this customer" in customer_page.text
    assert "cannot be undone" in customer_page.text

    forgotten = await shop.as_(
        "admin",
        "POST",
        "/customers/ada-1/forget",
        {"reason": "Erasure request 42", "command_id": str(uuid4())},
    )
    assert forgotten.status_code == 303

    page = await shop.as_("clerk", "GET", "/customers/ada-1")
    order_page = await shop.as_("clerk", "GET", f"/orders/{order_id}")
    history = await shop.as_("clerk", "GET", f"/orders/{order_id}/history?version=3")
    first_version = await shop.as_("clerk", "GET", f"/orders/{order_id}/history?version=1")
    listed = await shop.as_("viewer", "GET", "/customers")
    placing = await shop.as_("clerk", "GET", f"/orders/{order_id}/events/3")
    timeline = await shop.as_("clerk", "GET", f"/orders/{order_id}/timeline")
    assert '"ship_to":"[erased]"' in placing.text.replace("&#34;", '"')
    for answer in (page, order_page, history, first_version, listed, placing, timeline):
        assert answer.status_code == 200
        assert not shows_details(answer.text), answer.url
    assert page.text.count('<span class="erased">erased</span>') == 3
    assert "forgotten" in page.text
    assert "Erasure request 42" in page.text
    assert "by cp-admin" in page.text
    assert "Forget this customer" not in page.text
    assert "Change the details" not in page.text
    for answer in (order_page, history):
        assert '<dt>Ships to</dt><dd><span class="erased">erased</span>' in answer.text
        assert "7.00 EUR" in answer.text
        assert "Green tea" in answer.text
    assert '<span class="erased">erased</span>' in listed.text
    assert await shop.pool.fetchval("SELECT count(*) FROM customer_keys WHERE customer_id = 'ada-1'") == 0


async def test_forgetting_twice_is_harmless(shop: Shop) -> None:
    await shop.register("ada-1")
    for _ in range(2):
        answer = await shop.as_("admin", "POST", "/customers/ada-1/forget", {"reason": "Asked to"})
        assert answer.status_code == 303
    assert await shop.event_types("ada-1") == ["CustomerRegistered", "CustomerForgotten"]


async def test_a_forget_without_a_reason_is_refused_and_writes_nothing(shop: Shop) -> None:
    await shop.register("ada-1")
    before = await shop.written()
    refused = await shop.as_("admin", "POST", "/customers/ada-1/forget", {"reason": "  "})
    assert refused.status_code == 422
    assert 'id="forget-problem"' in refused.text
    assert await shop.written() == before
    assert NAME in refused.text  # not forgotten


@pytest.mark.parametrize("role", ["clerk", "viewer", "customer"])
async def test_only_an_admin_may_forget(shop: Shop, role: str) -> None:
    await shop.register("cust-a")
    page = await shop.as_(role, "GET", "/customers/cust-a")
    before = await shop.written()
    refused = await shop.as_(role, "POST", "/customers/cust-a/forget", {"reason": "Not mine to"})
    assert "Forget this customer" not in page.text
    assert refused.status_code == 403
    assert await shop.written() == before


async def test_a_customer_sees_and_changes_their_own_details_only(shop: Shop) -> None:
    own = await shop.register("someone-else", role="customer")  # a customer account registers itself
    assert own.status_code == 303
    assert own.headers["location"] == "/customers/cust-a"
    await shop.register("cust-b", name="Bartholomew Other", email="bart@example.org")
    mine = await shop.as_("customer", "GET", "/customers/cust-a")
    theirs = await shop.as_("customer", "GET", "/customers/cust-b")
    before = await shop.written()
    change_theirs = await shop.as_("customer", "POST", "/customers/cust-b", DETAILS)
    assert await shop.written() == before
    change_mine = await shop.as_("customer", "POST", "/customers/cust-a", {**DETAILS, "name": "Ada Q."})
    listing = await shop.as_("customer", "GET", "/customers")
    assert mine.status_code == 200
    assert NAME in mine.text
    assert theirs.status_code == 404
    assert "Bartholomew" not in theirs.text
    assert change_theirs.status_code == 404
    assert change_mine.status_code == 303
    assert "Ada Q." in (await shop.as_("customer", "GET", "/customers/cust-a")).text
    assert listing.status_code == 403
    assert await shop.event_types("someone-else") == []


async def test_a_cached_or_revalidated_order_page_never_shows_a_forgotten_customer(shop: Shop) -> None:
    await shop.register("ada-1")
    order_id = await shop.placed_order("ada-1")
    url = f"/orders/{order_id}"
    first = await shop.as_("clerk", "GET", url)
    cached = await shop.as_("clerk", "GET", url)
    tag = cached.headers["etag"]
    revalidated = await shop.conditional_get("clerk", url, tag)
    assert "7 Lantern Mews" in first.text
    assert "7 Lantern Mews" in cached.text
    assert shop.client.app.state.render_cache.hits >= 1
    assert revalidated.status_code == 304

    await shop.as_("admin", "POST", "/customers/ada-1/forget", {"reason": "Asked to"})

    after = await shop.conditional_get("clerk", url, tag)
    again = await shop.as_("clerk", "GET", url)
    assert after.status_code == 200
    assert after.headers["etag"] != tag
    for answer in (after, again):
        assert not shows_details(answer.text)
        assert '<span class="erased">erased</span>' in answer.text
        assert "7.00 EUR" in answer.text


async def test_the_event_log_describes_customer_events_and_erases_them_once_forgotten(shop: Shop) -> None:
    await shop.register("ada-1")
    await shop.as_("clerk", "POST", "/customers/ada-1", {**DETAILS, "email": "ada.new@example.org"})
    log = await shop.as_("viewer", "GET", "/events")
    assert log.status_code == 200
    assert f"Registered {NAME} &lt;{EMAIL}&gt;" in log.text
    assert "Details changed" in log.text
    assert 'href="/customers/ada-1"' in log.text
    assert "pii:1:" not in log.text

    await shop.as_("admin", "POST", "/customers/ada-1/forget", {"reason": "Erasure request 7"})
    log = await shop.as_("viewer", "GET", "/events")
    assert log.status_code == 200
    assert "Forgotten: Erasure request 7" in log.text
    assert not shows_details(log.text)
    assert "ada.new@example.org" not in log.text
    assert "Registered (details erased)" in log.text
    assert '"name":"[erased]"' in log.text.replace("&#34;", '"')


async def test_an_order_for_an_unregistered_customer_is_refused_with_a_link_to_register(shop: Shop) -> None:
    before = await shop.written()
    refused = await shop.as_("clerk", "POST", "/orders", {"customer_id": "nobody-yet", "currency": "EUR"})
    assert refused.status_code == 409  # a conflict: the same request succeeds once they are registered
    assert "There is no customer nobody-yet" in refused.text
    assert 'href="/customers/new"' in refused.text
    marked = refused.text.split('name="customer_id"', 1)[1].split(">", 1)[0]
    assert 'aria-invalid="true"' in marked
    assert await shop.written() == before


async def test_the_order_page_links_to_its_customer(shop: Shop) -> None:
    await shop.register("ada-1")
    order_id = await shop.placed_order("ada-1")
    page = await shop.as_("clerk", "GET", f"/orders/{order_id}")
    assert '<a href="/customers/ada-1">ada-1</a>' in page.text


async def test_a_nul_in_the_customer_filter_lists_nobody(shop: Shop) -> None:
    await shop.register("ada-1")
    page = await shop.as_("viewer", "GET", "/customers?customer=%00ada")
    after = await shop.as_("viewer", "GET", "/customers?after=%00")
    api = await ask(shop.client, shop.who["viewer"], "GET", "/api/customers?prefix=%00ada")
    assert (page.status_code, after.status_code, api.status_code) == (200, 200, 200)
    assert "No customers" in page.text
    assert NAME not in page.text
    assert api.json()["customers"] == []


async def live_log(client: httpx.AsyncClient, count: int) -> list[str]:
    """The first `count` rows the live event log streams from the start of the log."""
    rows: list[str] = []
    async with client.stream("GET", "/events/live?horizon=1") as response:
        assert response.status_code == 200
        async for event in sse_events(response):
            rows.append(event.data)
            if len(rows) == count:
                break
    return rows


async def test_the_live_event_log_streams_customer_events_opened_then_erased(database_url: str) -> None:
    with uvicorn_server(database_url) as url:
        admin = {"Authorization": "Bearer " + await token_at(database_url, "ada-admin", "admin")}
        viewer = {SESSION_COOKIE: await session_at(database_url, "vera", "viewer")}
        async with httpx.AsyncClient(base_url=url, timeout=15, headers=admin) as api:
            registered = await api.post("/api/customers", json={"customer_id": "ada-1", **DETAILS})
            assert registered.status_code == 201, registered.text
            async with httpx.AsyncClient(base_url=url, timeout=15, cookies=viewer) as page:
                before = await live_log(page, 1)
                forgotten = await api.post("/api/customers/ada-1/forget", json={"reason": "Asked to"})
                assert forgotten.status_code == 200
                after = await live_log(page, 2)
    assert f"Registered {NAME} &lt;{EMAIL}&gt;" in before[0]
    assert "pii:1:" not in before[0]
    assert "Registered (details erased)" in after[0]
    assert "Forgotten: Asked to" in after[1]
    assert not any(shows_details(row) or "pii:1:" in row for row in after)


async def test_a_blank_customer_id_on_the_order_form_gets_the_rules_words(shop: Shop) -> None:
    refused = await shop.as_("clerk", "POST", "/orders", {"customer_id": "", "currency": "EUR"})
    assert refused.status_code == 422
    assert "Give a customer id" in refused.text
    assert 'href="/customers/new"' not in refused.text


async def test_another_instance_stops_showing_a_customer_it_had_rendered_once_they_are_forgotten(
    database_url: str,
) -> None:
    """As deployed: two servers on one database, each with its own render cache and keyring."""
    clerk = {SESSION_COOKIE: await session_at(database_url, "till", "clerk")}
    admin = {"Authorization": "Bearer " + await token_at(database_url, "ada-admin", "admin")}
    with uvicorn_server(database_url) as here, uvicorn_server(database_url) as there:
        async with (
            httpx.AsyncClient(base_url=here, timeout=15, headers=admin) as a,
            httpx.AsyncClient(base_url=there, timeout=15, cookies=clerk) as b,
        ):
            assert (
                await a.post("/api/customers", json={"customer_id": "ada-1", **DETAILS})
            ).status_code == 201
            created = await a.post("/api/orders", json={"customer_id": "ada-1", "currency": "EUR"})
            order_id = created.json()["order"]["order_id"]
            item = {
                "sku": "TEA-1",
                "name": "Tea",
                "unit_price": {"amount": "3.50", "currency": "EUR"},
                "quantity": 2,
            }
            await a.post(f"/api/orders/{order_id}/items", json=item)
            assert (await a.post(f"/api/orders/{order_id}/place")).status_code == 200
            for _ in range(2):  # rendered, then from the render cache
                page = await b.get(f"/orders/{order_id}")
                assert "7 Lantern Mews" in page.text
            tag = page.headers["etag"]
            forgotten = await a.post("/api/customers/ada-1/forget", json={"reason": "Asked to"})
            assert forgotten.status_code == 200
            # The other server hears of it through the log's notification: wait for what it shows.
            with anyio.fail_after(40):
                while True:
                    page = await b.get(f"/orders/{order_id}", headers={"if-none-match": tag})
                    if page.status_code == 200 and "7 Lantern Mews" not in page.text:
                        break
                    await anyio.sleep(0.1)
    assert '<span class="erased">erased</span>' in page.text
    assert "7.00 EUR" in page.text
