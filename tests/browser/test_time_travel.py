"""Time travel in a real browser: step, play, a moment, compare with now, arrow keys."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.audit import audit
from tests.browser.test_order_journeys import add_item, create_order, total


def test_step_play_moment_and_compare(page: Page) -> None:
    order_id = create_order(page, "travel-tess")
    for sku, price, running_total in (
        ("A-1", "1.00", "1.00"),
        ("B-1", "2.00", "3.00"),
        ("C-1", "4.00", "7.00"),
    ):
        add_item(page, sku, sku, price, "1")
        total(page).to_have_text(f"{running_total} EUR")

    page.click("#step-back")
    expect(page).to_have_url(re.compile(r"version=3$"))
    total(page).to_have_text("3.00 EUR")
    page.click("#step-back")
    total(page).to_have_text("1.00 EUR")
    page.click("#step-forward")
    total(page).to_have_text("3.00 EUR")

    page.click("#event-2 summary")
    expect(page.locator("#event-2 .event-detail")).to_contain_text("Correlation id")
    expect(page.locator("#event-2 .event-detail")).to_contain_text("+ 1 × A-1")
    audit(page)
    page.click("text=Compare with now")
    expect(page.locator("#compare")).to_contain_text("From version 3 to 4")
    expect(page.locator("#compare")).to_contain_text("C-1")
    audit(page)

    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("ArrowLeft")
    total(page).to_have_text("1.00 EUR")
    page.keyboard.press("ArrowRight")
    total(page).to_have_text("3.00 EUR")

    page.select_option("#play-speed", "fast")
    page.click("#play-button")
    expect(page.locator("#version-slider")).to_have_value("4", timeout=5000)
    total(page).to_have_text("7.00 EUR")
    expect(page.locator("#event-4")).to_have_attribute("aria-current", "step")
    audit(page)

    moment = page.locator("#event-2 time").first.get_attribute("datetime")
    assert moment is not None
    page.goto(f"/orders/{order_id}/history?version=3")
    page.fill("#moment", moment)
    page.click(".moment button")
    total(page).to_have_text("1.00 EUR")
    page.fill("#moment", "2001-01-01T00:00:00+01:00")
    page.click(".moment button")
    expect(page.locator("#order-main")).to_contain_text("did not exist yet")
