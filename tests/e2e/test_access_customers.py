"""A customer sees and changes their own orders only, and cannot tell another's order from a missing one."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from tests.support.app import make_app
from tests.support.customers import register_in
from tests.support.visitors import Visitor, ask, draft_of, first_answer, visitors, written

# Every way to reach one order, as (method, path, form or JSON body).
ORDER_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/orders/{id}", None),
    ("GET", "/orders/{id}/history?version=1", None),
    ("GET", "/orders/{id}/history?version=2", None),
    ("GET", "/orders/{id}/history?at={at}", None),
    ("GET", "/orders/{id}/diff?from_version=1&to_version=2", None),
    ("GET", "/orders/{id}/timeline", None),
    ("GET", "/orders/{id}/events/1", None),
    ("GET", "/orders/{id}/export", None),
    ("GET", "/orders/{id}/export?format=csv", None),
    ("GET", "/orders/{id}/live", None),
    ("GET", "/orders/{id}/live?version=1", None),
    ("GET", "/orders/{id}/live-update", None),
    ("POST", "/orders/{id}/items", {"sku": "CUP-1", "name": "Cup", "unit_price": "1.00", "quantity": "1"}),
    ("POST", "/orders/{id}/items/TEA-1/remove", {}),
    ("POST", "/orders/{id}/place", {}),
    ("POST", "/orders/{id}/cancel", {"reason": "Not mine"}),
    ("GET", "/api/orders/{id}", None),
    ("GET", "/api/orders/{id}?version=1", None),
    ("GET", "/api/orders/{id}?at={at}", None),
    ("GET", "/api/orders/{id}/events", None),
    (
        "POST",
        "/api/orders/{id}/items",
        {"sku": "CUP-1", "name": "Cup", "unit_price": {"amount": "1.00", "currency": "EUR"}, "quantity": 1},
    ),
    ("DELETE", "/api/orders/{id}/items/TEA-1", None),
    ("POST", "/api/orders/{id}/place", {}),
    ("POST", "/api/orders/{id}/cancel", {"reason": "Not mine"}),
]


class Shop:
    def __init__(self, client: AsyncTestClient[Any], pool: asyncpg.Pool, who: dict[str, Visitor]) -> None:
        self.client, self.pool, self.who = client, pool, who
        self.alice = who["customer"]  # bound to customer "cust-a"

    async def request(self, method: str, path: str, payload: Any, visitor: Visitor) -> httpx.Response:
        api = path.startswith("/api")
        form = payload if not api and method != "GET" else None
        body = payload if api and method == "POST" else None
        return await ask(self.client, visitor, method, path, form=form, body=body)


@pytest.fixture
async def shop(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[Shop]:
    app = make_app(database_url, csrf_secret="test-secret", pool_size=4, subscriptions=False)
    async with AsyncTestClient(app=app) as client:
        register_in(client, "cust-a")  # the customer account's own customer, registered
        yield Shop(client, pool, await visitors(client, pool, "cust-a", prefix="shop"))


def shape(response: httpx.Response, *secrets: str) -> tuple[int, str, str]:
    """What a client can tell of an answer, with the ids it was asked about taken out."""
    text = response.text
    for secret in secrets:
        text = text.replace(secret, "<asked>")
    text = re.sub(r'name="_csrf_token" value="[^"]*"', "", text)
    return response.status_code, response.headers.get("content-type", ""), text


async def test_another_customers_order_answers_exactly_as_a_missing_one_on_every_route(shop: Shop) -> None:
    bobs = await draft_of(shop.pool, "cust-b", items=1)
    await draft_of(shop.pool, "cust-a")
    at = quote(datetime.now(UTC).isoformat())
    for method, template, payload in ORDER_ROUTES:
        missing = str(uuid4())
        before = await written(shop.pool)
        if "/live?" in template or template.endswith("/live"):
            # A stream that were let through would never end: look at its status first.
            status, _ = await first_answer(shop.client, shop.alice, method, template.format(id=bobs, at=at))
            assert status == 404, (method, template, status)
        of_bob = await shop.request(method, template.format(id=bobs, at=at), payload, shop.alice)
        of_nobody = await shop.request(method, template.format(id=missing, at=at), payload, shop.alice)
        assert await written(shop.pool) == before, f"{method} {template} wrote to another's order"
        assert of_bob.status_code == 404, (method, template, of_bob.status_code, of_bob.text[:300])
        assert shape(of_bob, bobs) == shape(of_nobody, missing), (method, template)
        # Staff see Bob's order is there: the 404 is the customer's alone.
        if method == "GET" and "/live" not in template:  # (a stream that works never ends)
            staff = await shop.request(method, template.format(id=bobs, at=at), payload, shop.who["viewer"])
            assert staff.status_code == 200, (method, template, staff.status_code)


async def test_another_customers_page_answers_as_a_customer_without_orders(shop: Shop) -> None:
    await draft_of(shop.pool, "cust-b")
    of_bob = await ask(shop.client, shop.alice, "GET", "/customers/cust-b")
    of_nobody = await ask(shop.client, shop.alice, "GET", "/customers/cust-zz")
    assert of_bob.status_code == 404
    assert shape(of_bob, "cust-b") == shape(of_nobody, "cust-zz")
    assert (await ask(shop.client, shop.who["viewer"], "GET", "/customers/cust-b")).status_code == 200


async def test_a_customers_lists_hold_their_own_orders_whatever_customer_says(shop: Shop) -> None:
    alices = {await draft_of(shop.pool, "cust-a") for _ in range(2)}
    bobs = {await draft_of(shop.pool, "cust-b") for _ in range(2)}
    for query in ("", "?customer=cust-b", "?customer=cust", "?customer=", "?customer=cust-a"):
        page = await ask(shop.client, shop.alice, "GET", f"/orders{query}")
        assert page.status_code == 200, query
        assert all(order_id in page.text for order_id in alices), query
        assert not any(order_id in page.text for order_id in bobs), query
        if query == "?customer=":
            continue  # the API refuses an empty filter (400)
        listed = await ask(shop.client, shop.alice, "GET", f"/api/orders{query}")
        assert listed.status_code == 200, (query, listed.text)
        assert {o["order_id"] for o in listed.json()["orders"]} == alices, query
    staff = await ask(shop.client, shop.who["clerk"], "GET", "/api/orders?customer=cust-b")
    assert {o["order_id"] for o in staff.json()["orders"]} == bobs


async def test_a_customers_new_order_is_their_own_whatever_customer_id_they_name(shop: Shop) -> None:
    made = await ask(
        shop.client, shop.alice, "POST", "/orders", form={"customer_id": "cust-b", "currency": "EUR"}
    )
    assert made.status_code == 303, made.text
    by_page = made.headers["location"].rsplit("/", 1)[1]
    created = await ask(
        shop.client, shop.alice, "POST", "/api/orders", body={"customer_id": "cust-b", "currency": "EUR"}
    )
    assert created.status_code == 201, created.text
    by_api = created.json()["order"]["order_id"]
    assert created.json()["order"]["customer_id"] == "cust-a"
    rows = await shop.pool.fetch(
        "SELECT order_id, customer_id FROM order_read_model WHERE order_id = ANY($1::text[])",
        [by_page, by_api],
    )
    assert {row["order_id"]: row["customer_id"] for row in rows} == {by_page: "cust-a", by_api: "cust-a"}
    events = await shop.pool.fetch(
        "SELECT data::text FROM events WHERE type = 'OrderCreated' AND stream_id = ANY($1::text[])",
        [by_page, by_api],
    )
    assert [json.loads(e["data"])["customer_id"] for e in events] == ["cust-a", "cust-a"]


async def test_a_customers_write_on_their_own_order_works_and_the_event_names_their_account(
    shop: Shop,
) -> None:
    order_id = await draft_of(shop.pool, "cust-a")
    account_id = await shop.pool.fetchval(
        "SELECT account_id::text FROM accounts WHERE name = 'shop-customer'"
    )
    form = {"sku": "CUP-1", "name": "Cup", "unit_price": "1.00", "quantity": "1"}
    by_page = await ask(shop.client, shop.alice, "POST", f"/orders/{order_id}/items", form=form)
    assert by_page.status_code == 303, by_page.text
    by_api = await ask(shop.client, shop.alice, "POST", f"/api/orders/{order_id}/place", body={})
    assert by_api.status_code == 200, by_api.text
    rows = await shop.pool.fetch(
        "SELECT type, metadata->>'actor' AS actor, metadata->>'actor_id' AS actor_id FROM events"
        " WHERE stream_id = $1 AND version > 2 ORDER BY version",
        order_id,
    )
    token_id = await shop.pool.fetchval(
        "SELECT token_id::text FROM api_tokens WHERE name = 'shop-customer-token'"
    )
    assert [(r["type"], r["actor"], r["actor_id"]) for r in rows] == [
        ("ItemAdded", "shop-customer", account_id),
        ("OrderPlaced", "shop-customer-token", f"token:{token_id}"),
    ]
