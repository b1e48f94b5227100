"""/api/customers: register, read, change and forget customers as a program does, with a token.

Refusals are problem details naming the field, and write nothing; a forgotten
customer's details read "[erased]" in the customer and in their orders (now and
at any version), whose lines and totals stay whole.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from domain.personal import ERASED
from tests.support.app import make_app
from tests.support.visitors import Visitor, visitors

PROBLEM_JSON = "application/problem+json"
NAME, EMAIL, ADDRESS = "Bram Inkwhistle", "bram.ink@example.net", "3 Ferry Steps\nHollowmere HM4 9ZZ"
DETAILS = {"name": NAME, "email": EMAIL, "address": ADDRESS}


class Programs:
    """The app in process and a token of each role (the customer's is bound to "cust-a")."""

    def __init__(self, client: AsyncTestClient[Any], pool: asyncpg.Pool, who: dict[str, Visitor]) -> None:
        self.client, self.pool, self.who = client, pool, who

    async def call(
        self, role: str, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        self.client.cookies.clear()
        sent, content = self.who[role].request(method, url, None, body)
        return await self.client.request(
            method, url, content=content, headers={**sent, **(headers or {})}, follow_redirects=False
        )

    async def register(self, customer_id: str, role: str = "clerk", **details: Any) -> httpx.Response:
        return await self.call(
            role, "POST", "/api/customers", {"customer_id": customer_id, **DETAILS, **details}
        )

    async def placed_order(self, customer_id: str) -> str:
        created = await self.call(
            "clerk", "POST", "/api/orders", {"customer_id": customer_id, "currency": "EUR"}
        )
        assert created.status_code == 201, created.text
        order_id: str = created.json()["order"]["order_id"]
        item = {
            "sku": "TEA-1",
            "name": "Green tea",
            "unit_price": {"amount": "3.50", "currency": "EUR"},
            "quantity": 2,
        }
        added = await self.call("clerk", "POST", f"/api/orders/{order_id}/items", item)
        placed = await self.call("clerk", "POST", f"/api/orders/{order_id}/place")
        assert (added.status_code, placed.status_code) == (200, 200), placed.text
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
async def programs(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[Programs]:
    app = make_app(database_url, csrf_secret="test-secret", pool_size=4, subscriptions=False)
    async with AsyncTestClient(app=app) as client:
        yield Programs(client, pool, await visitors(client, pool, "cust-a", prefix="ac"))


def holds_details(document: Any) -> bool:
    text = str(document)
    return any(part in text for part in (NAME, EMAIL, "Ferry Steps", "Hollowmere"))


async def test_a_clerk_registers_reads_lists_and_changes_a_customer(programs: Programs) -> None:
    registered = await programs.register("bram-1")
    assert registered.status_code == 201, registered.text
    assert registered.headers["location"] == "/api/customers/bram-1"
    customer = registered.json()
    assert (customer["name"], customer["email"], customer["address"]) == (NAME, EMAIL, ADDRESS)
    assert (customer["status"], customer["version"]) == ("registered", 1)

    read = await programs.call("viewer", "GET", "/api/customers/bram-1")
    listed = await programs.call("viewer", "GET", "/api/customers?prefix=bram")
    changed = await programs.call(
        "clerk", "PUT", "/api/customers/bram-1", {**DETAILS, "email": "bram@example.org"}
    )
    assert read.json() == customer
    assert [c["customer_id"] for c in listed.json()["customers"]] == ["bram-1"]
    assert listed.json()["customers"][0]["name"] == NAME
    assert listed.json()["next_after"] is None
    assert changed.status_code == 200
    assert (changed.json()["email"], changed.json()["version"]) == ("bram@example.org", 2)
    assert await programs.event_types("bram-1") == ["CustomerRegistered", "CustomerDetailsChanged"]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("email", "not-an-email", "Give an email address such as name@example.com."),
        ("name", "B" * 201, "The name must be at most 200 characters"),
        ("name", "Bram\x1b[31m", "The name must not contain control characters."),
        ("address", "y" * 501, "The address must be at most 500 characters"),
        ("address", "Bell\x07 Street", "The address must not contain control characters"),
        ("address", 12, None),
    ],
)
async def test_bad_input_is_refused_with_the_field_named_and_writes_nothing(
    programs: Programs, field: str, value: Any, words: str | None
) -> None:
    await programs.register("bram-1")
    before = await programs.written()
    registered = await programs.register("bram-2", **{field: value})
    changed = await programs.call("clerk", "PUT", "/api/customers/bram-1", {**DETAILS, field: value})
    for refused in (registered, changed):
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith(PROBLEM_JSON)
        assert [e["field"] for e in refused.json()["errors"]] == [field]
        if words:
            assert words in refused.json()["errors"][0]["message"]
    assert await programs.written() == before


async def test_an_admin_forgets_a_customer_and_the_api_shows_them_erased(programs: Programs) -> None:
    await programs.register("bram-1")
    order_id = await programs.placed_order("bram-1")
    before = await programs.call("clerk", "GET", f"/api/orders/{order_id}")
    assert before.json()["ship_to"] == ADDRESS

    forgotten = await programs.call("admin", "POST", "/api/customers/bram-1/forget", {"reason": "Erasure 9"})
    again = await programs.call("admin", "POST", "/api/customers/bram-1/forget", {"reason": "Erasure 9"})

    assert forgotten.status_code == 200, forgotten.text
    body = forgotten.json()
    assert (body["name"], body["email"], body["address"]) == (ERASED, ERASED, ERASED)
    assert (body["status"], body["forgotten_reason"]) == ("forgotten", "Erasure 9")
    assert again.status_code == 200
    assert again.json() == body
    assert await programs.event_types("bram-1") == ["CustomerRegistered", "CustomerForgotten"]
    answers = [
        await programs.call("clerk", "GET", url)
        for url in (
            "/api/customers/bram-1",
            "/api/customers",
            f"/api/orders/{order_id}",
            f"/api/orders/{order_id}?version=3",
            f"/api/orders/{order_id}/events",
            "/api/events",
        )
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.url
        assert not holds_details(answer.json()), answer.url
    order, at_placing = answers[2].json(), answers[3].json()
    for shown in (order, at_placing):
        assert shown["ship_to"] == ERASED
        assert shown["total"] == {"amount": "7.00", "currency": "EUR"}
        assert [(line["sku"], line["quantity"]) for line in shown["lines"]] == [("TEA-1", 2)]
    log = answers[5].json()["events"]
    registered = next(e for e in log if e["type"] == "CustomerRegistered")
    assert registered["order_id"] is None
    assert registered["stream_id"] == "customer:bram-1"
    assert registered["data"]["name"] == ERASED


async def test_forgetting_an_unknown_customer_is_not_found(programs: Programs) -> None:
    for method, url, body in [
        ("GET", "/api/customers/nobody-here", None),
        ("PUT", "/api/customers/nobody-here", DETAILS),
        ("POST", "/api/customers/nobody-here/forget", {"reason": "Asked to"}),
    ]:
        answer = await programs.call("admin", method, url, body)
        assert answer.status_code == 404, (method, url)
        assert answer.headers["content-type"].startswith(PROBLEM_JSON)
    assert await programs.pool.fetchval("SELECT count(*) FROM events") == 0


@pytest.mark.parametrize("role", ["clerk", "viewer", "customer"])
async def test_only_an_admin_may_forget(programs: Programs, role: str) -> None:
    await programs.register("cust-a")
    before = await programs.written()
    refused = await programs.call(role, "POST", "/api/customers/cust-a/forget", {"reason": "Not mine to"})
    assert refused.status_code == 403
    assert await programs.written() == before


async def test_a_forgotten_customers_details_cannot_change(programs: Programs) -> None:
    await programs.register("bram-1")
    await programs.call("admin", "POST", "/api/customers/bram-1/forget", {"reason": "Asked to"})
    before = await programs.written()
    refused = await programs.call("clerk", "PUT", "/api/customers/bram-1", DETAILS)
    assert refused.status_code == 409
    assert await programs.written() == before


async def test_a_customer_token_registers_reads_and_changes_itself_only(programs: Programs) -> None:
    own = await programs.register("someone-else", role="customer")
    await programs.register("cust-b", name="Other Person", email="other@example.org")
    mine = await programs.call("customer", "GET", "/api/customers/cust-a")
    theirs = await programs.call("customer", "GET", "/api/customers/cust-b")
    before = await programs.written()
    change_theirs = await programs.call("customer", "PUT", "/api/customers/cust-b", DETAILS)
    assert await programs.written() == before
    listing = await programs.call("customer", "GET", "/api/customers")
    change_mine = await programs.call(
        "customer", "PUT", "/api/customers/cust-a", {**DETAILS, "name": "Bram I."}
    )
    assert own.status_code == 201
    assert own.json()["customer_id"] == "cust-a"
    assert mine.status_code == 200
    assert theirs.status_code == 404
    assert "Other Person" not in theirs.text
    assert change_theirs.status_code == 404
    assert listing.status_code == 403
    assert change_mine.json()["name"] == "Bram I."


async def test_an_idempotency_key_registers_once_and_refuses_another_request(programs: Programs) -> None:
    key = {"Idempotency-Key": "register-bram-1"}
    body = {"customer_id": "bram-1", **DETAILS}
    first = await programs.call("clerk", "POST", "/api/customers", body, key)
    retry = await programs.call("clerk", "POST", "/api/customers", body, key)
    other = await programs.call("clerk", "POST", "/api/customers", {**body, "customer_id": "bram-2"}, key)
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert other.status_code == 422
    assert await programs.event_types("bram-1") == ["CustomerRegistered"]
    assert await programs.event_types("bram-2") == []
    stored = await programs.pool.fetch("SELECT answer FROM idempotency_keys")
    assert not any(row["answer"] and NAME.encode() in row["answer"] for row in stored)


async def test_the_document_shows_the_limits_of_the_domain(programs: Programs) -> None:
    document = (await programs.client.get("/schema/openapi.json")).json()
    body = document["components"]["schemas"]["RegisterCustomerBody"]["properties"]
    assert body["name"]["maxLength"] == 200
    assert body["email"]["maxLength"] == 254
    assert "pattern" in body["email"]
    assert body["address"]["maxLength"] == 500
    assert "/api/customers/{customer_id}/forget" in document["paths"]


async def test_options_names_every_method_of_a_customer_path(programs: Programs) -> None:
    listing = await programs.client.options("/api/customers")
    one = await programs.client.options("/api/customers/bram-1")
    assert set(listing.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert set(one.headers["allow"].replace(" ", "").split(",")) >= {"GET", "PUT"}


async def test_an_answer_kept_for_an_idempotency_key_holds_the_address_sealed_and_replays_it_opened(
    programs: Programs,
) -> None:
    await programs.register("bram-k")
    created = await programs.call(
        "clerk", "POST", "/api/orders", {"customer_id": "bram-k", "currency": "EUR"}
    )
    order_id = created.json()["order"]["order_id"]
    item = {
        "sku": "TEA-1",
        "name": "Green tea",
        "unit_price": {"amount": "3.50", "currency": "EUR"},
        "quantity": 1,
    }
    await programs.call("clerk", "POST", f"/api/orders/{order_id}/items", item)
    key = {"Idempotency-Key": "place-bram-k-once"}
    placed = await programs.call("clerk", "POST", f"/api/orders/{order_id}/place", headers=key)
    replayed = await programs.call("clerk", "POST", f"/api/orders/{order_id}/place", headers=key)

    assert placed.status_code == replayed.status_code == 200
    assert replayed.headers["idempotent-replayed"] == "true"
    assert placed.json()["order"]["ship_to"] == replayed.json()["order"]["ship_to"] == ADDRESS
    assert replayed.json() == placed.json()
    stored = await programs.pool.fetchval(
        "SELECT answer FROM idempotency_keys WHERE key = $1", key["Idempotency-Key"]
    )
    kept = base64.b64decode(
        msgspec.json.decode(stored)["body"]
    ).decode()  # web/api/commands.py's StoredAnswer
    assert "Ferry Steps" not in kept
    assert "pii:1:bram-k:" in kept

    await programs.call("admin", "POST", "/api/customers/bram-k/forget", {"reason": "Erasure 10"})
    after = await programs.call("clerk", "POST", f"/api/orders/{order_id}/place", headers=key)
    assert after.status_code == 200
    assert after.json()["order"]["ship_to"] == ERASED
    assert not holds_details(after.json())
