"""A person types something wrong into the add-item form: a message beside it, and nothing written."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support.pages import Page

if TYPE_CHECKING:
    from tests.support.ledger import Ledger
    from tests.support.page_client import PageClient

QUANTITY = "The quantity must be a whole number from 1 to 999."
NOT_AN_AMOUNT = "Enter the unit price as a positive amount such as 3.50"
CONTROL = "The item name must not contain control characters."

# What a person may type into each field of the add form, and the message shown next to it.
BAD_INPUT = {
    "quantity": [
        ("0", QUANTITY),
        ("-1", QUANTITY),
        ("1000", QUANTITY),
        ("abc", QUANTITY),
        ("2.5", QUANTITY),
        ("", QUANTITY),
    ],
    "unit_price": [
        ("-1", NOT_AN_AMOUNT),
        ("0", "The unit price must be more than 0.00."),
        ("0.00", "The unit price must be more than 0.00."),
        ("NaN", NOT_AN_AMOUNT),
        ("Infinity", NOT_AN_AMOUNT),
        ("1.234", "“1.234” has 3 decimals; a price has at most 2, such as 3.50."),
        ("1e9", NOT_AN_AMOUNT),
        ("1000000000", "The unit price must be at most 1,000,000.00 (this one is 1,000,000,000.00)."),
        ("1000000.01", "The unit price must be at most 1,000,000.00"),
        ("", NOT_AN_AMOUNT),
    ],
    "name": [
        ("", "Give the item a name (1 to 200 characters); it cannot be blank."),
        ("   ", "Give the item a name (1 to 200 characters); it cannot be blank."),
        ("x" * 201, "The item name must be at most 200 characters (this one has 201)."),
        ("x" * 10_000, "The item name must be at most 200 characters (this one has 10000)."),
        ("Tea\x00pot", CONTROL),
        ("Tea\x1b[31mpot", CONTROL),
        ("Tea\x7fpot", CONTROL),
    ],
    "sku": [
        ("S" * 65, "A SKU is 1 to 64 characters: letters, digits, '-', '_' or '.' (this one has 65"),
        ("", "A SKU is 1 to 64 characters"),
        ("TEA 1", "A SKU is 1 to 64 characters"),
    ],
}

GOOD = {"sku": "CUP-1", "name": "Cup", "unit_price": "12.00", "quantity": "2"}


async def test_bad_item_input_is_refused_next_to_the_add_form(browser: PageClient, ledger: Ledger) -> None:
    order_id = await browser.draft_with_items(("TEA-1", "Green tea", "3.50", "2"))
    for field, cases in BAD_INPUT.items():
        for value, message in cases:
            case = f"{field}={value[:20]!r} ({len(value)} characters)"
            typed = {**GOOD, field: value}
            async with ledger.unchanged(order_id):
                response = await browser.add_item(order_id, **typed, expected_version="2", htmx=True)
            page = Page(response)
            assert response.status_code == 422, case
            assert "<html" not in page.html, case
            assert list(page.problems) == ["add"], case
            assert message in page.problems["add"], case
            assert page.inputs[f"add-{field}"].get("aria-invalid") == "true", case
            for name, typed_value in typed.items():
                if name == "quantity" and typed_value == "":
                    continue  # an emptied quantity comes back as the form's default, 1
                assert page.value(f"add-{name}") == typed_value, case
            assert page.lines == [["TEA-1", "Green tea", "2", "3.50", "7.00"]], case


async def test_a_bad_field_in_a_plain_form_post_answers_the_whole_page(
    browser: PageClient, ledger: Ledger
) -> None:
    order_id = await browser.draft_with_items()
    async with ledger.unchanged(order_id):
        response = await browser.add_item(order_id, "CUP-1", "Cup", "1.00", "abc", htmx=False)
    page = Page(response)
    assert response.status_code == 422
    assert page.is_full_page
    assert page.problems == {"add": QUANTITY}
    assert page.value("add-quantity") == "abc"


async def test_adding_a_sku_already_on_the_order(browser: PageClient, ledger: Ledger) -> None:
    order_id = await browser.draft_with_items(("TEA-1", "Green tea", "3.50", "2"))

    async with ledger.unchanged(order_id):
        response = await browser.add_item(order_id, "TEA-1", "Green tea", "3.60", "1")
    page = Page(response)
    assert response.status_code == 409  # the line on the order refuses it, not the value itself
    assert page.problems == {
        "add": "TEA-1 is already on the order at 3.50 EUR; add it at that price or remove the line first."
    }
    assert page.inputs["add-unit_price"].get("aria-invalid") == "true"
    assert page.value("add-unit_price") == "3.60"

    response = await browser.add_item(order_id, "TEA-1", "Green tea", "3.5", "988")
    assert response.status_code == 200
    assert Page(response).lines == [["TEA-1", "Green tea", "990", "3.50", "3,465.00"]]

    async with ledger.unchanged(order_id):
        response = await browser.add_item(order_id, "TEA-1", "Green tea", "3.50", "10")
    assert response.status_code == 409
    assert Page(response).problems == {
        "add": "TEA-1 already has 990; a line holds at most 999, so at most 9 more can be added."
    }
