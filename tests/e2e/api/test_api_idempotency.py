"""Idempotency-Key: a retried write gets the first answer and writes once; a reused key is refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from store.idempotency import IdempotencyKeys
from tests.support.api import Api, assert_problem, price
from tests.support.ledger import Ledger

pytestmark = pytest.mark.asyncio(loop_scope="module")

TEA = ("TEA-1", "Green tea", "3.50", 2)
MUG = {"sku": "MUG-2", "name": "Mug", "unit_price": price("12.00"), "quantity": 1}


def key(name: str) -> dict[str, str]:
    """A key unique to this test run's database (the module shares one)."""
    return {"Idempotency-Key": f"{name}-{id(name)}"}


async def test_a_retried_create_makes_one_order(api: Api, ledger: Ledger) -> None:
    body, headers = {"customer_id": "carol", "currency": "EUR"}, key("create")
    api.register("carol")
    events_before, _ = await ledger.counts()
    first = await api.client.post("/api/orders", json=body, headers=headers)
    retry = await api.client.post("/api/orders", json=body, headers=headers)
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.content == first.content
    assert retry.headers["location"] == first.headers["location"]
    assert retry.headers["etag"] == first.headers["etag"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    events_after, _ = await ledger.counts()
    assert events_after == events_before + 1


async def test_a_retried_command_writes_once(api: Api, ledger: Ledger) -> None:
    order_id = await api.draft_with_items(TEA)
    first = await api.client.post(f"/api/orders/{order_id}/items", json=MUG, headers=key("add"))
    async with ledger.unchanged(order_id):
        retry = await api.client.post(f"/api/orders/{order_id}/items", json=MUG, headers=key("add"))
    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.content == first.content
    assert await ledger.event_types(order_id) == ["OrderCreated", "ItemAdded", "ItemAdded"]


async def test_a_retry_is_answered_even_once_the_order_moved_on(api: Api, ledger: Ledger) -> None:
    """The first answer stands: a retry with the old If-Match is not a 412."""
    order_id = await api.draft_with_items(TEA)
    headers = {**key("moved-on"), "If-Match": '"2"'}
    first = await api.client.post(f"/api/orders/{order_id}/place", headers=headers)
    await api.client.post(f"/api/orders/{order_id}/cancel", json={"reason": "Changed my mind"})
    async with ledger.unchanged(order_id):
        retry = await api.client.post(f"/api/orders/{order_id}/place", headers=headers)
    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.json() == first.json()


async def test_a_lost_answer_is_found_again_through_the_command_id(api: Api, ledger: Ledger) -> None:
    """The first attempt wrote its event but its answer was never recorded (a crash in between)."""
    order_id = await api.draft_with_items(TEA)
    headers = key("lost")
    first = await api.client.post(f"/api/orders/{order_id}/place", headers=headers)
    await ledger.pool.execute(
        "UPDATE idempotency_keys SET answer = NULL WHERE key = $1", headers["Idempotency-Key"]
    )
    async with ledger.unchanged(order_id):
        retry = await api.client.post(f"/api/orders/{order_id}/place", headers=headers)
    assert retry.status_code == 200
    assert retry.json() == first.json()
    assert "idempotent-replayed" not in retry.headers


async def test_a_create_whose_answer_was_lost_is_answered_with_the_order_it_made(
    api: Api, ledger: Ledger
) -> None:
    """A retried create proposes a new order id; the command id finds the order the first one made."""
    body, headers = {"customer_id": "dora", "currency": "EUR"}, key("lost-create")
    api.register("dora")
    first = await api.client.post("/api/orders", json=body, headers=headers)
    assert first.status_code == 201
    await ledger.pool.execute(
        "UPDATE idempotency_keys SET answer = NULL WHERE key = $1", headers["Idempotency-Key"]
    )
    events_before, _ = await ledger.counts()
    retry = await api.client.post("/api/orders", json=body, headers=headers)
    assert retry.status_code == 201
    assert retry.headers["location"] == first.headers["location"]
    assert retry.json()["order"]["order_id"] == first.json()["order"]["order_id"]
    assert retry.json()["events"] == first.json()["events"]
    assert (await ledger.counts())[0] == events_before
    assert (await api.client.get(retry.headers["location"])).status_code == 200


async def test_a_refusal_is_replayed_too(api: Api, ledger: Ledger) -> None:
    order_id = await api.create_order()
    headers = key("refused")
    first = await api.client.post(f"/api/orders/{order_id}/place", headers=headers)
    await api.add_item(order_id)
    async with ledger.unchanged(order_id):
        retry = await api.client.post(f"/api/orders/{order_id}/place", headers=headers)
    assert_problem(first, 409, "An order needs at least one item before it can be placed.")
    assert retry.status_code == 409
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize(
    "second",
    [
        {"path": "/items", "json": {**MUG, "quantity": 2}},
        {"path": "/cancel", "json": {"reason": "Other"}},
    ],
    ids=["another-body", "another-command"],
)
async def test_a_key_used_for_another_request(api: Api, ledger: Ledger, second: dict[str, Any]) -> None:
    order_id = await api.draft_with_items(TEA)
    headers = key(f"reused-{second['path']}")
    first = await api.client.post(f"/api/orders/{order_id}/items", json=MUG, headers=headers)
    assert first.status_code == 200
    async with ledger.unchanged(order_id):
        response = await api.client.post(
            f"/api/orders/{order_id}{second['path']}", json=second["json"], headers=headers
        )
    problem = assert_problem(response, 422, "This Idempotency-Key was used for a different request.")
    assert problem["type"] == "urn:orders:problem:idempotency-key-reused"


async def test_concurrent_duplicates_write_once_and_answer_alike(api: Api, ledger: Ledger) -> None:
    order_id = await api.draft_with_items(TEA)
    url, headers = f"/api/orders/{order_id}/items", key("concurrent")
    answers = await asyncio.gather(*(api.client.post(url, json=MUG, headers=headers) for _ in range(6)))
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.content for answer in answers}) == 1
    assert await ledger.event_types(order_id) == ["OrderCreated", "ItemAdded", "ItemAdded"]


async def test_concurrent_creates_under_one_key_make_one_order(api: Api, ledger: Ledger) -> None:
    body, headers = {"customer_id": "dave", "currency": "USD"}, key("concurrent-create")
    api.register("dave")
    events_before, _ = await ledger.counts()
    answers = await asyncio.gather(
        *(api.client.post("/api/orders", json=body, headers=headers) for _ in range(6))
    )
    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.json()["order"]["order_id"] for answer in answers}) == 1
    events_after, _ = await ledger.counts()
    assert events_after == events_before + 1


async def test_concurrent_different_bodies_under_one_key(api: Api, ledger: Ledger) -> None:
    """Exactly one of the requests runs; the others are refused, and nothing else is written."""
    order_id = await api.draft_with_items(TEA)
    url, headers = f"/api/orders/{order_id}/items", key("concurrent-different")
    bodies = [{**MUG, "sku": f"MUG-{n}"} for n in range(4)]
    answers = await asyncio.gather(*(api.client.post(url, json=body, headers=headers) for body in bodies))
    assert sorted(answer.status_code for answer in answers) == [200, 422, 422, 422]
    [winner] = [answer.json() for answer in answers if answer.status_code == 200]
    assert await ledger.event_types(order_id) == ["OrderCreated", "ItemAdded", "ItemAdded"]
    assert winner["order"]["lines"][1]["sku"] in {body["sku"] for body in bodies}


@pytest.mark.parametrize("value", ["", "x" * 256, "with space", "ключ"])
async def test_a_malformed_key(api: Api, ledger: Ledger, value: str) -> None:
    order_id = await api.draft_with_items(TEA)
    async with ledger.unchanged(order_id):
        response = await api.client.post(
            f"/api/orders/{order_id}/place", headers={"Idempotency-Key": value.encode()}
        )
    assert_problem(
        response, 400, "The Idempotency-Key header is 1 to 255 visible ASCII characters", "Idempotency-Key"
    )


async def test_a_key_is_forgotten_after_a_day_and_a_retry_still_writes_once(api: Api, ledger: Ledger) -> None:
    order_id = await api.draft_with_items(TEA)
    headers = key("a-day-later")
    keys = IdempotencyKeys(ledger.pool)

    async def a_day_passes() -> None:
        await ledger.pool.execute(
            "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = $1",
            headers["Idempotency-Key"],
        )
        assert await keys.purge() is False  # fewer than a batch: nothing more to do
        remembered = "SELECT count(*) FROM idempotency_keys WHERE key = $1"
        assert await ledger.pool.fetchval(remembered, headers["Idempotency-Key"]) == 0

    first = await api.client.post(f"/api/orders/{order_id}/items", json=MUG, headers=headers)
    await a_day_passes()
    async with ledger.unchanged(order_id):
        retry = await api.client.post(f"/api/orders/{order_id}/items", json=MUG, headers=headers)
    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.json() == first.json()

    # Another request under the forgotten key is a request of its own, not the old one replayed.
    await a_day_passes()
    pen = {"sku": "PEN-3", "name": "Pen", "unit_price": price("2.00"), "quantity": 1}
    other = await api.client.post(f"/api/orders/{order_id}/items", json=pen, headers=headers)
    assert other.status_code == 200
    assert [line["sku"] for line in other.json()["order"]["lines"]] == ["TEA-1", "MUG-2", "PEN-3"]
    assert await ledger.event_types(order_id) == ["OrderCreated", "ItemAdded", "ItemAdded", "ItemAdded"]
    # Keys of the last day stay.
    assert await ledger.pool.fetchval("SELECT count(*) FROM idempotency_keys") > 0
