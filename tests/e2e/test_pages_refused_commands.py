"""Commands the rules refuse: the message beside the form that sent it, no event, the read model as it was."""

from __future__ import annotations

from itertools import product
from typing import TYPE_CHECKING

from tests.support.pages import Page

if TYPE_CHECKING:
    from tests.support.ledger import Ledger
    from tests.support.page_client import PageClient

TEA = ("TEA-1", "Green tea", "3.50", "2")


async def test_removing_a_sku_not_on_the_order(browser: PageClient, ledger: Ledger) -> None:
    order_id = await browser.draft_with_items(TEA)
    async with ledger.unchanged(order_id):
        response = await browser.post(f"/orders/{order_id}/items/NOPE-1/remove", htmx=True)
    assert response.status_code == 409
    assert Page(response).problems == {"general": "NOPE-1 is not on this order."}


# A quantity no line could give is invalid (422); one this line cannot give is a conflict (409).
BAD_REMOVALS = [
    ("5", 409, "The line for TEA-1 has 2; you cannot remove 5."),
    ("0", 422, "The quantity must be a whole number from 1 to 999."),
    ("abc", 422, "The quantity must be a whole number from 1 to 999."),
    ("-1", 422, "The quantity must be a whole number from 1 to 999."),
]


async def test_removing_a_bad_quantity_from_a_line(browser: PageClient, ledger: Ledger) -> None:
    order_id = await browser.draft_with_items(TEA)
    for quantity, status, message in BAD_REMOVALS:
        async with ledger.unchanged(order_id):
            response = await browser.post(
                f"/orders/{order_id}/items/TEA-1/remove", {"quantity": quantity}, htmx=True
            )
        page = Page(response)
        assert response.status_code == status, quantity
        assert page.problems == {"remove-TEA-1": message}, quantity
        assert page.value("remove-qty-1") == quantity


async def test_placing_an_empty_order(browser: PageClient, ledger: Ledger) -> None:
    order_id = await browser.create_order()
    async with ledger.unchanged(order_id):
        response = await browser.post(f"/orders/{order_id}/place", {"expected_version": "1"}, htmx=True)
    assert response.status_code == 409
    assert Page(response).problems == {"place": "An order needs at least one item before it can be placed."}


CHANGES = [
    ("add", "/items", {"sku": "CUP-1", "name": "Cup", "unit_price": "1.00", "quantity": "1"}),
    ("remove", "/items/TEA-1/remove", {}),
    ("remove part", "/items/TEA-1/remove", {"quantity": "1"}),
    ("place", "/place", {}),
]


async def finished_order(browser: PageClient, status: str) -> str:
    order_id = await browser.draft_with_items(TEA)
    await browser.post(f"/orders/{order_id}/place", htmx=True)
    if status == "cancelled":
        await browser.post(f"/orders/{order_id}/cancel", {"reason": "No longer needed"}, htmx=True)
    return order_id


async def test_a_placed_or_cancelled_order_cannot_change(browser: PageClient, ledger: Ledger) -> None:
    for status in ("placed", "cancelled"):
        order_id = await finished_order(browser, status)
        for name, path, form in CHANGES:
            action = "be placed" if name == "place" else "change its items"
            async with ledger.unchanged(order_id):
                response = await browser.post(f"/orders/{order_id}{path}", form, htmx=True)
            page = Page(response)
            assert response.status_code == 409, (status, name)
            assert page.problems == {"general": f"This order is {status}; only a draft order can {action}."}
            assert f'<span class="badge {status}">{status}</span>' in page.html
            assert "add-sku" not in page.ids
    async with ledger.unchanged(order_id):
        response = await browser.post(f"/orders/{order_id}/cancel", {"reason": "Again"}, htmx=True)
    assert response.status_code == 409
    assert Page(response).problems == {"general": "This order is already cancelled."}


async def test_cancelling_without_a_proper_reason(browser: PageClient, ledger: Ledger) -> None:
    draft = await browser.draft_with_items(TEA)
    placed = await finished_order(browser, "placed")
    blank = "Give a reason for the cancellation, 1 to 500 characters (this one has 0)."
    too_long = "Give a reason for the cancellation, 1 to 500 characters (this one has 501)."
    for order_id, (form, message) in product(
        (draft, placed),
        [({"reason": ""}, blank), ({"reason": "   "}, blank), ({}, blank), ({"reason": "r" * 501}, too_long)],
    ):
        async with ledger.unchanged(order_id):
            response = await browser.post(f"/orders/{order_id}/cancel", form, htmx=True)
        page = Page(response)
        assert response.status_code == 422, form
        assert page.problems == {"cancel": message}, form
        assert page.inputs["cancel-reason"].get("aria-invalid") == "true"
        assert page.value("cancel-reason") == form.get("reason", "")


BAD_ORDERS = [
    ({"customer_id": "", "currency": "EUR"}, "customer_id", "Give a customer id"),
    ({"customer_id": "c" * 65, "currency": "EUR"}, "customer_id", "at most 64 characters (this one has 65)"),
    ({"customer_id": "bob\x07", "currency": "EUR"}, "customer_id", "with no control characters"),
    ({"customer_id": "bob", "currency": "EURO"}, "currency", "“EURO” is not a currency code we know"),
    ({"customer_id": "bob", "currency": "xyz"}, "currency", "“XYZ” is not a currency code we know"),
    ({"customer_id": "bob", "currency": ""}, "currency", "is not a currency code we know"),
]


async def test_creating_an_order_with_a_bad_customer_or_currency(browser: PageClient, ledger: Ledger) -> None:
    for typed, field, message in BAD_ORDERS:
        async with ledger.unchanged():
            response = await browser.post("/orders", typed)
        page = Page(response)
        assert response.status_code == 422, typed
        assert response.headers["content-type"].startswith("text/html"), typed  # was JSON-typed once
        assert page.is_full_page
        assert message in page.problems["create"], typed
        assert page.inputs[field].get("aria-invalid") == "true", typed
        assert page.value("customer_id") == typed["customer_id"], typed
        assert page.value("currency") == (typed["currency"] or "EUR"), typed
    assert await ledger.event_count() == 0
