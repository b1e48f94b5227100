"""Every bad input of the foundation issue, from a program: a problem in the pages' words, nothing written.

One app and database serve the module; each test makes its own order and
checks that the event count and the order's read-model row did not move.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api, assert_problem, price
from tests.support.ledger import Ledger

pytestmark = pytest.mark.asyncio(loop_scope="module")

QUANTITY = "The quantity must be a whole number from 1 to 999."
NOT_AN_AMOUNT = "Enter the unit price as a positive amount such as 3.50"
NOT_POSITIVE = "The unit price must be more than 0.00."
CONTROL = "The item name must not contain control characters."
BLANK_NAME = "Give the item a name (1 to 200 characters); it cannot be blank."
SKU = "A SKU is 1 to 64 characters: letters, digits, '-', '_' or '.'"

# (field as the API names it, value sent, message)
BAD_ITEMS: list[tuple[str, Any, str]] = [
    ("quantity", 0, QUANTITY),
    ("quantity", -1, QUANTITY),
    ("quantity", 1000, QUANTITY),
    ("quantity", "abc", QUANTITY),
    ("quantity", "2.5", QUANTITY),
    ("quantity", 2.5, QUANTITY),
    ("quantity", "", QUANTITY),
    ("quantity", None, QUANTITY),
    ("unit_price.amount", "-1", NOT_AN_AMOUNT),
    ("unit_price.amount", "0", NOT_POSITIVE),
    ("unit_price.amount", "0.00", NOT_POSITIVE),
    ("unit_price.amount", "NaN", NOT_AN_AMOUNT),
    ("unit_price.amount", "Infinity", NOT_AN_AMOUNT),
    ("unit_price.amount", "1.234", "“1.234” has 3 decimals; a price has at most 2, such as 3.50."),
    ("unit_price.amount", "1e9", NOT_AN_AMOUNT),
    (
        "unit_price.amount",
        "1000000000",
        "The unit price must be at most 1,000,000.00 (this one is 1,000,000,000.00).",
    ),
    ("unit_price.amount", "1000000.01", "The unit price must be at most 1,000,000.00"),
    ("unit_price.amount", "", NOT_AN_AMOUNT),
    ("unit_price.amount", 3.5, 'Send the amount as a decimal string such as "3.50", never as a number.'),
    ("unit_price.currency", "eur", "“eur” is not a currency code we know"),
    ("name", "", BLANK_NAME),
    ("name", "   ", BLANK_NAME),
    ("name", "x" * 201, "The item name must be at most 200 characters (this one has 201)."),
    ("name", "x" * 10_000, "The item name must be at most 200 characters (this one has 10000)."),
    ("name", "Tea\x00pot", CONTROL),
    ("name", "Tea\x1b[31mpot", CONTROL),
    ("name", "Tea\x7fpot", CONTROL),
    ("sku", "S" * 65, f"{SKU} (this one has 65 characters)."),
    ("sku", "", SKU),
    ("sku", "TEA 1", SKU),
    (
        "note",
        "n" * 201,
        "A line note is at most 200 characters, without control characters (this one has 201).",
    ),
    ("note", "For\x07Ada", "A line note is at most 200 characters, without control characters"),
]


def case_id(case: tuple[str, Any, str]) -> str:
    field, value, _ = case
    shown = value if not isinstance(value, str) or len(value) < 12 else f"{len(value)} chars"
    return f"{field}={shown!r}"


def item_with(field: str, value: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"sku": "CUP-1", "name": "Cup", "unit_price": price("12.00"), "quantity": 2}
    if field.startswith("unit_price."):
        body["unit_price"] = {**body["unit_price"], field.removeprefix("unit_price."): value}
    else:
        body[field] = value
    return body


@pytest.mark.parametrize(("field", "value", "message"), BAD_ITEMS, ids=[case_id(c) for c in BAD_ITEMS])
async def test_a_bad_item_is_refused_with_the_pages_message(
    api: Api, ledger: Ledger, field: str, value: Any, message: str
) -> None:
    order_id = await api.draft_with_items(("TEA-1", "Green tea", "3.50", 2))
    async with ledger.unchanged(order_id):
        response = await api.client.post(f"/api/orders/{order_id}/items", json=item_with(field, value))
    problem = assert_problem(response, 422, message, field)
    assert problem["type"] == "urn:orders:problem:invalid-request"
    assert problem["instance"] == f"/api/orders/{order_id}/items"


async def test_the_same_sku_at_another_price(api: Api, ledger: Ledger) -> None:
    order_id = await api.draft_with_items(("TEA-1", "Green tea", "3.50", 2))
    async with ledger.unchanged(order_id):
        response = await api.add_item(order_id, "TEA-1", "Green tea", "4.00", 1)
    message = "TEA-1 is already on the order at 3.50 EUR; add it at that price or remove the line first."
    problem = assert_problem(response, 409, message, "unit_price.amount")
    assert problem["type"] == "urn:orders:problem:price-mismatch"


async def test_removing_a_sku_not_on_the_order(api: Api, ledger: Ledger) -> None:
    order_id = await api.draft_with_items(("TEA-1", "Green tea", "3.50", 2))
    async with ledger.unchanged(order_id):
        response = await api.client.delete(f"/api/orders/{order_id}/items/NOPE-1")
    assert_problem(response, 409, "NOPE-1 is not on this order.", "sku")


@pytest.mark.parametrize(
    ("quantity", "status", "message"),
    [
        ("5", 409, "The line for TEA-1 has 2; you cannot remove 5."),
        ("0", 400, QUANTITY),
        ("abc", 400, QUANTITY),
        ("-1", 400, QUANTITY),
        ("1000", 400, QUANTITY),
    ],
)
async def test_removing_a_bad_quantity(
    api: Api, ledger: Ledger, quantity: str, status: int, message: str
) -> None:
    order_id = await api.draft_with_items(("TEA-1", "Green tea", "3.50", 2))
    async with ledger.unchanged(order_id):
        response = await api.client.delete(
            f"/api/orders/{order_id}/items/TEA-1", params={"quantity": quantity}
        )
    assert_problem(response, status, message, "quantity")


async def test_placing_an_empty_order(api: Api, ledger: Ledger) -> None:
    order_id = await api.create_order()
    async with ledger.unchanged(order_id):
        response = await api.client.post(f"/api/orders/{order_id}/place")
    problem = assert_problem(response, 409, "An order needs at least one item before it can be placed.")
    assert problem["type"] == "urn:orders:problem:empty-order"


@pytest.mark.parametrize("state", ["placed", "cancelled"])
async def test_no_change_to_a_placed_or_cancelled_order(api: Api, ledger: Ledger, state: str) -> None:
    order_id = await api.placed_order()
    if state == "cancelled":
        cancelled = await api.client.post(
            f"/api/orders/{order_id}/cancel", json={"reason": "No longer needed"}
        )
        assert cancelled.status_code == 200
    items = f"This order is {state}; only a draft order can change its items."
    async with ledger.unchanged(order_id):
        added = await api.add_item(order_id, "MUG-2", "Mug", "12.00", 1)
        removed = await api.client.delete(f"/api/orders/{order_id}/items/TEA-1")
        placed = await api.client.post(f"/api/orders/{order_id}/place")
    assert_problem(added, 409, items)
    assert_problem(removed, 409, items)
    assert_problem(placed, 409, f"This order is {state}; only a draft order can be placed.")


async def test_cancelling_twice(api: Api, ledger: Ledger) -> None:
    order_id = await api.placed_order()
    first = await api.client.post(f"/api/orders/{order_id}/cancel", json={"reason": "Too late"})
    assert first.status_code == 200
    async with ledger.unchanged(order_id):
        again = await api.client.post(f"/api/orders/{order_id}/cancel", json={"reason": "Again"})
    assert_problem(again, 409, "This order is already cancelled.")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "The field reason is required."),
        ({"reason": ""}, "Give a reason for the cancellation, 1 to 500 characters (this one has 0)."),
        ({"reason": "   "}, "Give a reason for the cancellation, 1 to 500 characters (this one has 0)."),
        (
            {"reason": "x" * 501},
            "Give a reason for the cancellation, 1 to 500 characters (this one has 501).",
        ),
        ({"reason": "No\x00"}, "The reason must not contain control characters."),
    ],
    ids=["missing", "empty", "blank", "too-long", "control"],
)
async def test_cancelling_without_a_reason(
    api: Api, ledger: Ledger, body: dict[str, Any], message: str
) -> None:
    order_id = await api.placed_order()
    async with ledger.unchanged(order_id):
        response = await api.client.post(f"/api/orders/{order_id}/cancel", json=body)
    assert_problem(response, 422, message, "reason")


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("version=0", 400, "There is no version 0: versions start at 1."),
        ("version=-1", 400, "There is no version -1: versions start at 1."),
        ("version=abc", 400, "“abc” is not a version: versions are whole numbers from 1."),
        ("version=3", 404, "has 2 versions; there is no version 3."),
        ("at=yesterday", 400, "“yesterday” is not a moment: use ISO 8601"),
        ("version=1&at=2000-01-01T00:00:00Z", 404, "did not exist yet at 2000-01-01T00:00:00+00:00"),
        ("version=3&at=2100-01-01T00:00:00Z", 404, "was at version 2 at 2100-01-01T00:00:00+00:00"),
    ],
)
async def test_history_out_of_range(api: Api, query: str, status: int, message: str) -> None:
    order_id = await api.draft_with_items(("TEA-1", "Green tea", "3.50", 2))
    assert_problem(await api.client.get(f"/api/orders/{order_id}?{query}"), status, message)


WRITES = [
    ("POST", "/items", {"sku": "CUP-1", "name": "Cup", "unit_price": price("1.00"), "quantity": 1}),
    ("DELETE", "/items/TEA-1", None),
    ("POST", "/place", None),
    ("POST", "/cancel", {"reason": "Not wanted"}),
]


@pytest.mark.parametrize(("method", "path", "body"), [("GET", p, None) for p in ["", "/events"]] + WRITES)
async def test_a_malformed_or_unknown_order_id(
    api: Api, ledger: Ledger, method: str, path: str, body: dict[str, Any] | None
) -> None:
    await api.draft_with_items(("TEA-1", "Green tea", "3.50", 2))
    unknown = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
    async with ledger.unchanged():
        malformed = await api.client.request(method, f"/api/orders/not-an-order{path}", json=body)
        missing = await api.client.request(method, f"/api/orders/{unknown}{path}", json=body)
    assert_problem(malformed, 400, "“not-an-order” is not an order id.", "order_id")
    assert_problem(missing, 404, f"There is no order {unknown}.")


async def test_a_2_mb_body(api: Api, ledger: Ledger) -> None:
    order_id = await api.draft_with_items(("TEA-1", "Green tea", "3.50", 2))
    huge = b'{"reason": "' + b"x" * 2_000_000 + b'"}'
    async with ledger.unchanged(order_id):
        response = await api.client.post(
            f"/api/orders/{order_id}/cancel", content=huge, headers={"content-type": "application/json"}
        )
    problem = assert_problem(response, 413, "The request body is larger than 64 KiB.")
    assert problem["title"] == "Content Too Large"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"not json", 400, "The body is not valid JSON"),
        # Valid JSON grammar, but no float holds it (it used to answer 500).
        (b'{"customer_id": "a", "currency": "EUR", "n": 1e309}', 400, "Number out of range"),
        (b"1e309", 400, "The body is not valid JSON (Number out of range"),
        (b"", 400, "This request needs a JSON body"),
        (b"[1, 2]", 422, "Expected `object`, got `array`"),
        (b'{"customer_id": "a"}', 422, "The field currency is required."),
        (b'{"customer_id": "a", "currency": "XYZ"}', 422, "“XYZ” is not a currency code we know"),
        (
            b'{"customer_id": "a\\u0007", "currency": "EUR"}',
            422,
            "The customer id must be printable characters",
        ),
        (
            b'{"customer_id": "' + b"c" * 65 + b'", "currency": "EUR"}',
            422,
            "at most 64 characters (this one has 65)",
        ),
    ],
)
async def test_creating_with_a_bad_body(
    api: Api, ledger: Ledger, body: bytes, status: int, message: str
) -> None:
    api.register("a")  # so the body's own fault is what is refused
    async with ledger.unchanged():
        response = await api.client.post(
            "/api/orders", content=body, headers={"content-type": "application/json"}
        )
    assert_problem(response, status, message)


async def test_a_browser_write_from_another_site_is_refused(api: Api, ledger: Ledger) -> None:
    """The API skips the CSRF token (no cookies), so it refuses what only a cross-site page would send."""
    order_id = await api.draft_with_items(("TEA-1", "Green tea", "3.50", 2))
    async with ledger.unchanged(order_id):
        from_site = await api.client.post(
            f"/api/orders/{order_id}/place", headers={"sec-fetch-site": "cross-site"}
        )
        from_origin = await api.client.post(
            f"/api/orders/{order_id}/place", headers={"origin": "https://evil.invalid"}
        )
    assert_problem(from_site, 403, "Browsers may write to the API only from this site's own pages.")
    assert_problem(from_origin, 403, "Browsers may write to the API only from this site's own pages.")
    same_site = await api.client.post(
        f"/api/orders/{order_id}/place",
        headers={"sec-fetch-site": "same-origin", "origin": "http://testserver.local"},
    )
    assert same_site.status_code == 200, same_site.text
