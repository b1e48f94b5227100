"""Every endpoint of /api as a program uses it: the commands, the order now and then, the logs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.api import Api, price
from tests.support.customers import registration
from tests.support.ledger import Ledger

pytestmark = pytest.mark.asyncio(loop_scope="module")

TEA = ("TEA-1", "Green tea", "3.50", 2)
MUG = ("MUG-2", "Mug", "12.00", 1)


async def test_creating_an_order(api: Api, ledger: Ledger) -> None:
    api.register("alice")
    response = await api.client.post("/api/orders", json={"customer_id": "alice", "currency": "GBP"})
    assert response.status_code == 201
    result = response.json()
    order_id = result["order"]["order_id"]
    assert response.headers["location"] == f"/api/orders/{order_id}"
    assert response.headers["etag"] == '"1"'
    assert "set-cookie" not in response.headers
    assert result["version"] == 1
    assert result["order"] == {
        "order_id": order_id,
        "customer_id": "alice",
        "status": "draft",
        "lines": [],
        "item_count": 0,
        "total": {"amount": "0.00", "currency": "GBP"},
        "version": 1,
        "latest_version": 1,
        "cancel_reason": None,
        "ship_to": None,
    }
    [event] = result["events"]
    assert event["type"] == "OrderCreated"
    assert event["version"] == 1
    assert event["data"] == {"order_id": order_id, "customer_id": "alice", "currency": "GBP"}
    assert event["metadata"]["actor"] == "till"  # the token's name, set by the server
    assert await ledger.event_types(order_id) == ["OrderCreated"]


async def test_adding_items_answers_with_the_order_and_the_event(api: Api) -> None:
    order_id = await api.draft_with_items(TEA)
    response = await api.add_item(order_id, *MUG)
    assert response.status_code == 200
    assert response.headers["etag"] == '"3"'
    result = response.json()
    assert result["version"] == 3
    assert result["order"]["lines"] == [
        {
            "sku": "TEA-1",
            "name": "Green tea",
            "quantity": 2,
            "unit_price": {"amount": "3.50", "currency": "EUR"},
            "total": {"amount": "7.00", "currency": "EUR"},
            "note": "",
        },
        {
            "sku": "MUG-2",
            "name": "Mug",
            "quantity": 1,
            "unit_price": {"amount": "12.00", "currency": "EUR"},
            "total": {"amount": "12.00", "currency": "EUR"},
            "note": "",
        },
    ]
    assert result["order"]["total"] == {"amount": "19.00", "currency": "EUR"}
    [event] = result["events"]
    assert (event["type"], event["version"]) == ("ItemAdded", 3)
    assert (
        event["data"].items()
        >= {"sku": "MUG-2", "name": "Mug", "unit_price_cents": 1200, "quantity": 1}.items()
    )


async def test_a_line_note_is_kept(api: Api) -> None:
    order_id = await api.create_order()
    response = await api.add_item(order_id, "PEN-1", "Pen", "9.00", 1, note="For Ada")
    assert response.status_code == 200, response.text
    assert response.json()["order"]["lines"][0]["note"] == "For Ada"
    assert response.json()["events"][0]["data"]["note"] == "For Ada"
    assert response.json()["events"][0]["schema_version"] == 2


async def test_money_travels_as_decimal_strings_never_floats(api: Api) -> None:
    order_id = await api.draft_with_items(("BIG-1", "Piano", "1000000", 1), ("PEN-1", "Pen", "0.05", 3))
    order = (await api.client.get(f"/api/orders/{order_id}")).json()
    assert [line["unit_price"]["amount"] for line in order["lines"]] == ["1000000.00", "0.05"]
    assert order["total"] == {"amount": "1000000.15", "currency": "EUR"}


async def test_removing_part_of_a_line_then_the_rest(api: Api, ledger: Ledger) -> None:
    order_id = await api.draft_with_items(("TEA-1", "Green tea", "3.50", 5), MUG)
    part = await api.client.delete(f"/api/orders/{order_id}/items/TEA-1?quantity=2")
    assert part.status_code == 200
    assert part.json()["order"]["lines"][0]["quantity"] == 3
    assert part.json()["events"][0]["data"] == {"sku": "TEA-1", "quantity": 2}
    whole = await api.client.delete(f"/api/orders/{order_id}/items/TEA-1")
    assert whole.status_code == 200
    assert [line["sku"] for line in whole.json()["order"]["lines"]] == ["MUG-2"]
    assert whole.json()["events"][0]["data"] == {"sku": "TEA-1", "quantity": 3}
    assert await ledger.event_types(order_id) == [
        "OrderCreated",
        "ItemAdded",
        "ItemAdded",
        "ItemRemoved",
        "ItemRemoved",
    ]


async def test_placing_records_the_total(api: Api) -> None:
    order_id = await api.draft_with_items(TEA, MUG)
    response = await api.client.post(f"/api/orders/{order_id}/place")
    assert response.status_code == 200
    assert response.json()["order"]["status"] == "placed"
    # It ships to the address alice registered with, shown opened to the clerk.
    ship_to = registration("alice").address
    assert response.json()["events"][0]["data"] == {"total_cents": 1900, "ship_to": ship_to}


async def test_placing_with_an_empty_body_or_only_an_expected_version(api: Api) -> None:
    first, second = await api.draft_with_items(TEA), await api.draft_with_items(TEA)
    assert (await api.client.post(f"/api/orders/{first}/place", json={})).status_code == 200
    with_version = await api.client.post(f"/api/orders/{second}/place", json={"expected_version": 2})
    assert with_version.status_code == 200


async def test_cancelling_keeps_the_reason(api: Api) -> None:
    order_id = await api.placed_order()
    response = await api.client.post(f"/api/orders/{order_id}/cancel", json={"reason": "Changed\nmy mind"})
    assert response.status_code == 200
    assert response.json()["order"]["status"] == "cancelled"
    assert response.json()["order"]["cancel_reason"] == "Changed\nmy mind"


async def test_getting_an_order_now_at_a_version_and_at_a_moment(api: Api) -> None:
    order_id = await api.draft_with_items(TEA, MUG)
    now = await api.client.get(f"/api/orders/{order_id}")
    assert now.status_code == 200
    assert now.headers["etag"] == '"3"'
    assert (now.json()["version"], now.json()["latest_version"]) == (3, 3)

    then = await api.client.get(f"/api/orders/{order_id}?version=2")
    assert then.headers["etag"] == '"2"'
    assert (then.json()["version"], then.json()["latest_version"]) == (2, 3)
    assert [line["sku"] for line in then.json()["lines"]] == ["TEA-1"]

    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    at = await api.client.get(f"/api/orders/{order_id}", params={"at": later})
    assert at.json()["version"] == 3
    earlier = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    before = await api.client.get(f"/api/orders/{order_id}", params={"at": earlier})
    assert before.status_code == 404
    assert "did not exist yet" in before.json()["detail"]


async def test_listing_orders_by_customer_and_status_with_keyset_pages(api: Api) -> None:
    erin = [await api.create_order("erin") for _ in range(3)]
    await api.create_order("erina")  # the API matches the customer exactly, not by prefix
    await api.client.post(f"/api/orders/{erin[0]}/items", json=_item())
    placed = await api.client.post(f"/api/orders/{erin[0]}/place")
    assert placed.status_code == 200
    page = (await api.client.get("/api/orders", params={"customer": "erin", "limit": 2})).json()
    assert [o["order_id"] for o in page["orders"]] == [erin[2], erin[1]]
    assert page["next_after"] == erin[1]
    rest = await api.client.get("/api/orders", params={"customer": "erin", "limit": 2, "after": erin[1]})
    assert [o["order_id"] for o in rest.json()["orders"]] == [erin[0]]
    assert rest.json()["next_after"] is None
    only_placed = await api.client.get("/api/orders", params={"customer": "erin", "status": "placed"})
    assert [(o["order_id"], o["status"], o["total"]) for o in only_placed.json()["orders"]] == [
        (erin[0], "placed", {"amount": "3.50", "currency": "EUR"})
    ]


def _item() -> dict[str, object]:
    return {"sku": "TEA-1", "name": "Green tea", "unit_price": price("3.50"), "quantity": 1}


async def test_an_orders_events_in_pages(api: Api) -> None:
    order_id = await api.draft_with_items(TEA, MUG, ("CUP-3", "Cup", "4.00", 1))
    first = (await api.client.get(f"/api/orders/{order_id}/events", params={"limit": 3})).json()
    assert [e["version"] for e in first["events"]] == [1, 2, 3]
    assert (first["next_after"], first["has_more"]) == (3, True)
    rest = await api.client.get(f"/api/orders/{order_id}/events", params={"after": 3, "limit": 3})
    assert [e["type"] for e in rest.json()["events"]] == ["ItemAdded"]
    assert (rest.json()["next_after"], rest.json()["has_more"]) == (4, False)
    beyond = await api.client.get(f"/api/orders/{order_id}/events", params={"after": 9})
    assert beyond.json() == {"events": [], "next_after": 9, "has_more": False}


async def _end_of_log(api: Api) -> str:
    cursor, more = "", True
    while more:
        page = (await api.client.get("/api/events", params={"after": cursor} if cursor else {})).json()
        cursor, more = page["next_after"], page["has_more"]
    return cursor


async def _walk_log(api: Api, after: str, orders: set[str], want: int) -> tuple[list[tuple[str, str]], str]:
    """Follow the log one event a page from `after` until `want` events of `orders` went by.

    An event shows once every transaction older than its own has ended (the app's background
    readers may hold one for a moment), so an empty page is polled again.
    """
    seen: list[tuple[str, str]] = []
    for _ in range(200):
        page = (await api.client.get("/api/events", params={"after": after, "limit": 1})).json()
        assert len(page["events"]) <= 1
        seen += [(e["order_id"], e["type"]) for e in page["events"] if e["order_id"] in orders]
        after = page["next_after"]
        if len(seen) >= want:
            return seen, after
        if not page["has_more"]:
            await asyncio.sleep(0.05)
    raise AssertionError(f"the log showed only {seen}")


async def test_the_global_log_in_commit_order_with_a_cursor_to_poll(api: Api) -> None:
    start = await _end_of_log(api)
    one = await api.draft_with_items(TEA)
    two = await api.create_order("bob")
    seen, cursor = await _walk_log(api, start, {one, two}, 3)
    assert seen == [(one, "OrderCreated"), (one, "ItemAdded"), (two, "OrderCreated")]
    await api.add_item(two)
    polled, cursor = await _walk_log(api, cursor, {one, two}, 1)
    assert polled == [(two, "ItemAdded")]
    idle = (await api.client.get("/api/events", params={"after": cursor})).json()
    assert idle == {"events": [], "next_after": cursor, "has_more": False}


async def test_a_name_with_html_is_kept_as_typed(api: Api) -> None:
    order_id = await api.create_order()
    name = "<script>alert('x')</script> & tea"
    response = await api.add_item(order_id, "TEA-1", name)
    assert response.status_code == 200
    assert response.json()["order"]["lines"][0]["name"] == name
    assert response.headers["content-type"] == "application/json"


async def test_the_api_needs_no_csrf_token_and_sets_no_cookie(api: Api) -> None:
    order_id = await api.create_order()
    for response in [
        await api.client.get(f"/api/orders/{order_id}"),
        await api.client.get("/api/orders"),
        await api.add_item(order_id),
        await api.client.post(f"/api/orders/{order_id}/cancel", json={"reason": "No"}),
    ]:
        assert response.status_code == 200, response.text
        assert "set-cookie" not in response.headers
    assert not api.client.cookies


async def test_a_price_in_another_currency_than_the_orders(api: Api, ledger: Ledger) -> None:
    order_id = await api.create_order(currency="EUR")
    body = {"sku": "TEA-1", "name": "Tea", "unit_price": price("3.50", "USD"), "quantity": 1}
    async with ledger.unchanged(order_id):
        response = await api.client.post(f"/api/orders/{order_id}/items", json=body)
    assert response.status_code == 409  # the order's currency, fixed when it was created, refuses it
    assert response.json()["errors"] == [
        {"field": "unit_price.currency", "message": "This order is in EUR; give the unit price in EUR."}
    ]


async def test_a_version_as_it_was_known_at_a_moment(api: Api) -> None:
    order_id = await api.draft_with_items(("TEA-1", "Green tea", "3.50", 2))
    response = await api.client.get(f"/api/orders/{order_id}?version=1&at=2100-01-01T00:00:00Z")
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1
    assert response.json()["latest_version"] == 2
