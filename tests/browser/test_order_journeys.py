"""The journeys of a clerk in a real Chromium, against uvicorn and PostgreSQL.

Each journey signs in through the sign-in page (the `page` fixture) and has axe-core
audit the pages and states it shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.audit import audit
from tests.browser.people import OTHER_CLERK, signed_in_elsewhere


def create_order(page: Page, customer: str, currency: str = "EUR") -> str:
    page.goto("/orders")
    audit(page)
    page.fill("#customer_id", customer)
    page.fill("#currency", currency)
    page.click("text=Create order")
    page.wait_for_url(re.compile(r"/orders/[0-9a-f-]{36}$"))
    audit(page)
    return page.url.rsplit("/", 1)[1]


def add_item(page: Page, sku: str, name: str, price: str, quantity: str) -> None:
    page.fill("#add-sku", sku)
    page.fill("#add-name", name)
    page.fill("#add-unit_price", price)
    page.fill("#add-quantity", quantity)
    page.click("button:has-text('Add item')")


@contextmanager
def someone_else_on(chromium: Any, page: Page, order_id: str) -> Iterator[Page]:
    """The order open in a second browser of its own, as another clerk would have it."""
    with signed_in_elsewhere(chromium, page, OTHER_CLERK) as other:
        other.goto(f"/orders/{order_id}")
        yield other


def total(page: Page) -> Any:
    return expect(page.locator(".summary .total"))


def test_create_add_three_remove_one_place_without_reloading(page: Page, artifacts: Path) -> None:
    create_order(page, "journey-alice")
    page.evaluate("window.__sameDocument = true")
    add_item(page, "TEA-1", "Green tea", "3.50", "2")
    total(page).to_have_text("7.00 EUR")
    add_item(page, "CUP-1", "Cup", "12.00", "1")
    total(page).to_have_text("19.00 EUR")
    add_item(page, "POT-1", "Teapot <b>big</b>", "30.25", "1")
    total(page).to_have_text("49.25 EUR")
    expect(page.locator("table.lines")).to_contain_text("Teapot <b>big</b>")
    page.click("button[aria-label='Remove CUP-1']")
    total(page).to_have_text("37.25 EUR")
    expect(page.locator("table.lines tbody tr")).to_have_count(2)
    audit(page)
    page.screenshot(path=str(artifacts / "order-page.png"), full_page=True)
    page.click("#place-button")
    expect(page.locator(".summary .badge")).to_have_text("placed")
    expect(page.locator(".timeline li.event")).to_have_count(6)
    assert page.evaluate("window.__sameDocument") is True, "a command reloaded the page"
    audit(page)
    page.goto("/orders")
    audit(page)
    page.screenshot(path=str(artifacts / "order-list.png"), full_page=True)
    page.goto("/events")
    expect(page.locator("#event-log tbody tr").first).to_contain_text("OrderPlaced")
    audit(page)
    page.screenshot(path=str(artifacts / "event-log.png"), full_page=True)


def test_broken_rules_are_explained_beside_their_form_and_change_nothing(page: Page) -> None:
    create_order(page, "journey-bob")
    page.click("button:has-text('Place order')")
    expect(page.locator("#place-problem")).to_contain_text("at least one item")
    audit(page)
    add_item(page, "A-1", "Apple", "1.234", "1")
    expect(page.locator("#add-problem")).to_contain_text("at most 2")
    expect(page.locator("#add-unit_price")).to_have_value("1.234")
    expect(page.locator("#add-unit_price")).to_have_attribute("aria-invalid", "true")
    audit(page)
    add_item(page, "A-1", "Apple", "1.20", "1000")
    expect(page.locator("#add-problem")).to_contain_text("1 to 999")
    expect(page.locator(".timeline li.event")).to_have_count(1)
    add_item(page, "A-1", "Apple", "1.20", "3")
    total(page).to_have_text("3.60 EUR")
    page.fill("#cancel-reason", "   ")
    page.click("button:has-text('Cancel order')")
    expect(page.locator("#cancel-problem")).to_contain_text("reason")
    audit(page)
    page.fill("#cancel-reason", "Customer changed their mind")
    page.click("button:has-text('Cancel order')")
    expect(page.locator(".summary .badge")).to_have_text("cancelled")
    expect(page.locator(".reason")).to_contain_text("Customer changed their mind")
    expect(page.locator("form.add-item")).to_have_count(0)
    expect(page.locator(".timeline li.event")).to_have_count(3)


def test_the_slider_walks_every_version_and_the_url_can_be_reloaded(page: Page, artifacts: Path) -> None:
    order_id = create_order(page, "journey-carol")
    add_item(page, "A-1", "Apple", "1.00", "1")
    total(page).to_have_text("1.00 EUR")
    add_item(page, "B-1", "Bread", "2.50", "2")
    total(page).to_have_text("6.00 EUR")
    page.click("button[aria-label='Remove A-1']")
    total(page).to_have_text("5.00 EUR")
    # The live update for this page's own last event may still land; let it, before dragging.
    page.wait_for_timeout(500)
    expected = {1: "0.00 EUR", 2: "1.00 EUR", 3: "6.00 EUR", 4: "5.00 EUR"}
    for version, amount in expected.items():
        page.locator("#version-slider").fill(str(version))
        expect(page).to_have_url(re.compile(rf"/orders/{order_id}/history\?version={version}$"))
        total(page).to_have_text(amount)
        expect(page.locator(f"#event-{version}")).to_have_attribute("aria-current", "step")
    page.locator("#version-slider").fill("2")
    expect(page).to_have_url(re.compile(r"version=2$"))
    audit(page)  # the later events, shown fainter, still readable
    page.screenshot(path=str(artifacts / "slider-old-version.png"), full_page=True)
    page.reload()
    total(page).to_have_text("1.00 EUR")
    expect(page.locator("#version-slider")).to_have_value("2")
    expect(page.locator("form.add-item")).to_have_count(0)
    audit(page)
    page.click("text=Back to now")
    expect(page).to_have_url(re.compile(rf"/orders/{order_id}$"))
    total(page).to_have_text("5.00 EUR")
    expect(page.locator("#version-slider")).to_have_value("4")
    expect(page.locator("form.add-item")).to_have_count(1)


def tab_to(page: Page, selector: str, presses: int = 80) -> None:
    """Press Tab until `selector` has the focus, as a keyboard user would."""
    for _ in range(presses):
        if page.evaluate("(s) => document.activeElement === document.querySelector(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_keyboard_only(page: Page) -> None:
    page.goto("/orders")
    audit(page)
    tab_to(page, "#customer_id")
    page.keyboard.type("journey-dave")
    page.keyboard.press("Tab")
    page.keyboard.press("Control+a")
    page.keyboard.type("EUR")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/orders/[0-9a-f-]{36}$"))
    order_id = page.url.rsplit("/", 1)[1]
    audit(page)
    for sku, price, expected in (("K-1", "9.99", "19.98 EUR"), ("K-2", "1.00", "21.98 EUR")):
        tab_to(page, "#add-sku")
        page.keyboard.type(sku)
        page.keyboard.press("Tab")
        page.keyboard.type("Keyboard")
        page.keyboard.press("Tab")
        page.keyboard.type(price)
        page.keyboard.press("Tab")
        page.keyboard.press("Control+a")
        page.keyboard.type("2")
        page.keyboard.press("Enter")
        total(page).to_have_text(expected)
    tab_to(page, "#version-slider")
    page.keyboard.press("ArrowLeft")
    expect(page).to_have_url(re.compile(rf"/orders/{order_id}/history\?version=2$"))
    total(page).to_have_text("19.98 EUR")
    page.keyboard.press("ArrowRight")
    expect(page).to_have_url(re.compile(r"version=3$"))
    total(page).to_have_text("21.98 EUR")
    # Audited here, while it shows: the commands below take the page back to the latest
    # version, and whether the address bar has followed by the last audit is a race.
    audit(page)
    tab_to(page, "#remove-qty-2")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    total(page).to_have_text("19.98 EUR")
    tab_to(page, "#place-button")
    page.keyboard.press("Enter")
    expect(page.locator(".summary .badge")).to_have_text("placed")


def test_a_phone_screen_has_no_horizontal_overflow(page: Page, artifacts: Path) -> None:
    create_order(page, "journey-erin-with-a-rather-long-customer-identifier-for-phones")
    add_item(
        page, "LONG-SKU-0123456789", "A name long enough to wrap on a small phone screen", "999999.99", "999"
    )
    total(page).to_contain_text("EUR")
    order_url = page.url
    page.set_viewport_size({"width": 375, "height": 800})
    for url in ("/orders", order_url, "/events"):
        page.goto(url)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{url} is {width} px wide on a 375 px screen"
        audit(page)
    page.goto(order_url)
    page.screenshot(path=str(artifacts / "order-page-phone.png"), full_page=True)


def test_a_change_made_elsewhere_appears_live_and_typed_input_survives(page: Page, chromium: Any) -> None:
    order_id = create_order(page, "journey-live")
    add_item(page, "A-1", "Apple", "1.00", "1")
    total(page).to_have_text("1.00 EUR")
    page.fill("#add-name", "half-typed name")
    with someone_else_on(chromium, page, order_id) as other:
        add_item(other, "B-1", "Bread", "2.00", "1")
        expect(other.locator(".summary .total")).to_have_text("3.00 EUR")
        expect(page.locator(".summary .total")).to_have_text("3.00 EUR")
        expect(page.locator(".timeline li.event")).to_have_count(3)
        expect(page.locator("#version-slider")).to_have_attribute("max", "3")
        expect(page.locator("#add-name")).to_have_value("half-typed name")
        # Someone looking at an old version is told, not moved.
        page.locator("#version-slider").fill("1")
        total(page).to_have_text("0.00 EUR")
        add_item(other, "C-1", "Cheese", "4.00", "1")
        expect(page.locator("#live-notice")).to_contain_text("Version 4 is now the latest")
        audit(page)
        total(page).to_have_text("0.00 EUR")
        # The slider's range grows to the new latest; its position stays where the person put it.
        expect(page.locator("#version-slider")).to_have_attribute("max", "4")
        expect(page.locator("#version-slider")).to_have_value("1")
        page.click("text=Show the latest")
        total(page).to_have_text("7.00 EUR")


def test_the_event_log_shows_new_events_at_the_top_while_you_watch(page: Page, chromium: Any) -> None:
    order_id = create_order(page, "journey-log")
    page.goto("/events")
    expect(page.locator("#event-rows tr").first).to_contain_text("OrderCreated")
    audit(page)
    with someone_else_on(chromium, page, order_id) as other:
        add_item(other, "L-1", "Lamp", "20.00", "1")
        expect(other.locator(".summary .total")).to_have_text("20.00 EUR")
        expect(page.locator("#event-rows tr").first).to_contain_text("ItemAdded")
        expect(page.locator("#event-rows tr").first).to_contain_text(order_id[:8])


def test_a_live_update_leaves_the_time_travel_controls_to_the_person_using_them(
    page: Page, chromium: Any
) -> None:
    order_id = create_order(page, "journey-slider")
    add_item(page, "A-1", "Apple", "1.00", "1")
    total(page).to_have_text("1.00 EUR")
    page.wait_for_timeout(500)  # this page's own live update lands first
    with someone_else_on(chromium, page, order_id) as other:
        # Half-way through typing a moment: the field keeps it and the focus.
        page.fill("#moment", "2026-11-28T09:")
        add_item(other, "B-1", "Bread", "2.00", "1")
        total(page).to_have_text("3.00 EUR")
        expect(page.locator("#version-slider")).to_have_attribute("max", "3")
        expect(page.locator("#version-slider")).to_have_value("3")
        expect(page.locator("#moment")).to_have_value("2026-11-28T09:")
        expect(page.locator("#moment")).to_be_focused()

        # Holding the slider (at the latest version, not moved yet) while someone else adds a line.
        slider = page.locator("#version-slider")
        slider.evaluate("slider => { slider.dataset.held = 'this one' }")
        box = slider.bounding_box()
        assert box is not None
        middle = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + box["width"] - 2, middle)
        page.mouse.down()
        add_item(other, "C-1", "Cheese", "4.00", "1")
        total(page).to_have_text("7.00 EUR")
        expect(slider).to_have_attribute("max", "4")
        expect(slider).to_have_attribute("data-held", "this one")  # the same element: the drag goes on
        expect(slider).to_have_value("3")
        page.mouse.move(box["x"] + 1, middle, steps=5)
        page.mouse.up()
        expect(page).to_have_url(re.compile(rf"/orders/{order_id}/history\?version=1$"))
        total(page).to_have_text("0.00 EUR")
