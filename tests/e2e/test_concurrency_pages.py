"""Two people on one order, and double clicks: stale versions get 409, repeated command ids write once."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import uuid4

from tests.support.pages import Page

if TYPE_CHECKING:
    from tests.support.ledger import Ledger
    from tests.support.page_client import PageClient

TEA = ("TEA-1", "Green tea", "3.50", "2")


async def order_changed_by_someone_else(browser: PageClient) -> str:
    """An order at version 4: the person's page shows version 2, then two items were added elsewhere."""
    order_id = await browser.draft_with_items(TEA)
    await browser.add_item(order_id, "CUP-1", "Cup", "12.00", "1", expected_version="2")
    await browser.add_item(order_id, "TEA-1", "Green tea", "3.50", "1", expected_version="3")
    return order_id


def assert_stale(page: Page, form: str) -> None:
    assert page.status == 409
    assert page.problems[form] == (
        "This order changed while you were looking at it: you saw version 2, it is now at version 4. "
        "Nothing was changed; check the order below and submit again. Changed since by ada."
    )
    assert "<li>Version 3: Added 1 × Cup (CUP-1) at 12.00 EUR" in page.html
    assert "<li>Version 4: Added 1 × Green tea (TEA-1) at 3.50 EUR" in page.html
    assert "<li>Version 2:" not in page.html
    assert page.lines == [
        ["TEA-1", "Green tea", "3", "3.50", "10.50"],
        ["CUP-1", "Cup", "1", "12.00", "12.00"],
    ]


async def test_a_stale_add_of_another_sku_goes_through(browser: PageClient, ledger: Ledger) -> None:
    order_id = await order_changed_by_someone_else(browser)
    response = await browser.add_item(order_id, "POT-1", "Teapot", "30.25", "1", expected_version="2")
    assert response.status_code == 200
    assert "Teapot" in response.text
    events = await ledger.events(order_id)
    assert len(events) == 5
    assert events[-1][0] == "ItemAdded"
    assert events[-1][1]["sku"] == "POT-1"


async def test_a_stale_add_keeps_what_was_typed(browser: PageClient, ledger: Ledger) -> None:
    order_id = await order_changed_by_someone_else(browser)
    # Someone added TEA-1 meanwhile: adding it again would be decided on what the person did not see.
    typed = {"sku": "TEA-1", "name": "Green tea", "unit_price": "3.50", "quantity": "3"}
    for htmx in (True, False):
        async with ledger.unchanged(order_id):
            response = await browser.add_item(order_id, **typed, expected_version="2", htmx=htmx)
        page = Page(response)
        assert_stale(page, "add")
        assert page.is_full_page is not htmx
        assert {field: page.value(f"add-{field}") for field in typed} == typed
        assert page.forms[f"/orders/{order_id}/items"]["expected_version"] == "4"


async def test_a_stale_remove_cancel_or_place_keeps_what_was_typed(
    browser: PageClient, ledger: Ledger
) -> None:
    order_id = await order_changed_by_someone_else(browser)
    for path, form, form_name, kept in [
        ("items/TEA-1/remove", {"quantity": "1"}, "remove-TEA-1", ("remove-qty-1", "1")),
        ("cancel", {"reason": "Customer called"}, "cancel", ("cancel-reason", "Customer called")),
        ("place", {}, "place", None),
    ]:
        async with ledger.unchanged(order_id):
            response = await browser.post(
                f"/orders/{order_id}/{path}", {**form, "expected_version": "2"}, htmx=True
            )
        page = Page(response)
        assert_stale(page, form_name)
        if kept:
            assert page.value(kept[0]) == kept[1], path


async def test_a_stale_add_to_an_order_placed_meanwhile_is_shown_in_general(
    browser: PageClient, ledger: Ledger
) -> None:
    order_id = await browser.draft_with_items(TEA)
    await browser.post(f"/orders/{order_id}/place", {"expected_version": "2"}, htmx=True)
    async with ledger.unchanged(order_id):
        response = await browser.add_item(order_id, "CUP-1", "Cup", "1.00", "1", expected_version="2")
    page = Page(response)
    assert page.status == 409
    assert "you saw version 2, it is now at version 3" in page.problems["general"]
    assert "<li>Version 3: Placed, total 7.00 EUR" in page.html


async def test_placing_twice_with_one_command_id_places_once(browser: PageClient, ledger: Ledger) -> None:
    for htmx in (True, False):
        for envelope in ({"expected_version": "2"}, {}):
            case = (htmx, envelope)
            order_id = await browser.draft_with_items(TEA)
            form = {"command_id": str(uuid4()), **envelope}
            first = await browser.post(f"/orders/{order_id}/place", form, htmx=htmx)
            second = await browser.post(f"/orders/{order_id}/place", form, htmx=htmx)
            assert first.status_code == second.status_code == (200 if htmx else 303), case
            if htmx:
                assert Page(second).problems == {}, case
                assert '<span class="badge placed">placed</span>' in second.text, case
            kinds = [kind for kind, _ in await ledger.events(order_id)]
            assert kinds == ["OrderCreated", "ItemAdded", "OrderPlaced"], case


async def test_adding_twice_with_one_command_id_adds_once(browser: PageClient, ledger: Ledger) -> None:
    for expected_version in ("2", None):
        order_id = await browser.draft_with_items(TEA)
        command_id = str(uuid4())
        responses = [
            await browser.add_item(
                order_id,
                "TEA-1",
                "Green tea",
                "3.50",
                "1",
                command_id=command_id,
                expected_version=expected_version,
            )
            for _ in range(2)
        ]
        assert [response.status_code for response in responses] == [200, 200], expected_version
        assert Page(responses[1]).problems == {}, expected_version
        assert Page(responses[1]).lines == [["TEA-1", "Green tea", "3", "3.50", "10.50"]], expected_version
        assert len(await ledger.events(order_id)) == 3, expected_version
        row = await ledger.row(order_id)
        assert row is not None
        assert (row["version"], row["item_count"], row["total_cents"]) == (3, 3, 1050), expected_version


async def test_creating_twice_with_one_command_id_creates_one_order(
    browser: PageClient, ledger: Ledger
) -> None:
    browser.register("alice")
    before = await ledger.event_count()
    form = {"customer_id": "alice", "currency": "EUR", "command_id": str(uuid4())}
    first = await browser.post("/orders", form)
    second = await browser.post("/orders", form)
    assert first.status_code == second.status_code == 303
    assert second.headers["location"] == first.headers["location"]
    assert await ledger.event_count() == before + 1


async def test_without_expected_version_no_version_check_is_made(browser: PageClient, ledger: Ledger) -> None:
    order_id = await order_changed_by_someone_else(browser)
    response = await browser.add_item(order_id, "POT-1", "Teapot", "30.25", "1")
    assert response.status_code == 200
    assert Page(response).problems == {}
    assert (await ledger.events(order_id))[-1][1]["sku"] == "POT-1"


BAD_ENVELOPES = [
    ({"command_id": "not-a-uuid"}, "The form's command id is not a UUID; reload the page and try again."),
    ({"expected_version": "abc"}, "The form's expected version is not a whole number; reload the page."),
    ({"expected_version": "-1"}, "The form's expected version is not a whole number; reload the page."),
    ({"expected_version": "1.5"}, "The form's expected version is not a whole number; reload the page."),
    ({"expected_version": "9" * 12}, "The form's expected version is not a whole number; reload the page."),
]


async def test_a_malformed_command_id_or_expected_version_is_refused(
    browser: PageClient, ledger: Ledger
) -> None:
    order_id = await browser.draft_with_items(TEA)
    for command in ("add", "remove", "place", "cancel"):
        for envelope, message in BAD_ENVELOPES:
            case = (command, envelope)
            async with ledger.unchanged(order_id):
                if command == "add":
                    response = await browser.add_item(
                        order_id,
                        "CUP-1",
                        "Cup",
                        "1.00",
                        "1",
                        command_id=envelope.get("command_id"),
                        expected_version=envelope.get("expected_version"),
                    )
                else:
                    path = "items/TEA-1/remove" if command == "remove" else command
                    form = {"reason": "Changed my mind", **envelope}
                    response = await browser.post(f"/orders/{order_id}/{path}", form, htmx=True)
            assert response.status_code == 400, case
            form_name = "remove-TEA-1" if command == "remove" else command
            assert Page(response).problems == {form_name: message}, case
    async with ledger.unchanged():
        response = await browser.post(
            "/orders", {"customer_id": "alice", "currency": "EUR", "command_id": "x"}
        )
    page = Page(response)
    assert response.status_code == 400
    assert page.problems == {"create": BAD_ENVELOPES[0][1]}
    assert page.value("customer_id") == "alice"
