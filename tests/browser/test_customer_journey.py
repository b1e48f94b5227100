"""A customer's journey in a real Chromium: its own orders only, and none of the staff's pages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from uuid import uuid4

from playwright.sync_api import Page, Response, expect

from tests.browser.audit import audit
from tests.browser.people import CLERK, CUSTOMER, CUSTOMER_ID, signed_in_elsewhere
from tests.browser.test_order_journeys import add_item, create_order, total
from tests.support.accounts import PASSWORD

SOMEONE_ELSE = "journey-someone-else"
STAFF_LINKS = "a[href^='/events'], a[href^='/sales'], a[href^='/admin']"
STAFF_NAV = ("Event log", "Sales", "Notifications", "Read models", "Accounts")


def status_of(page: Page, url: str) -> int:
    """Open `url`; the status its answer had."""
    response = page.goto(url)
    assert response is not None
    return response.status


def has_no_staff_links(page: Page) -> None:
    expect(page.locator(STAFF_LINKS)).to_have_count(0)
    for name in STAFF_NAV:
        expect(page.locator("header.site").get_by_role("link", name=name)).to_have_count(0)


def test_a_customer_signs_in_and_sees_and_changes_only_its_own_orders(
    signed_out_page: Page, chromium: Any, artifacts: Path
) -> None:
    page = signed_out_page
    page.goto("/orders")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Forders$"))
    expect(page.locator("#signed-in-as")).to_have_count(0)
    audit(page)
    page.screenshot(path=str(artifacts / "sign-in.png"), full_page=True)
    with signed_in_elsewhere(chromium, page, CLERK) as clerk:
        own = create_order(clerk, CUSTOMER_ID)
        others = create_order(clerk, SOMEONE_ELSE)

    page.get_by_label("Name").fill(CUSTOMER)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-problem")).to_have_text("The name or the password is wrong.")
    expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    audit(page)
    refused: list[str] = []  # what the customer's pages fetch and are refused, shown as "403 Forbidden"

    def note_refusal(response: Response) -> None:
        if response.status == 403 and response.request.resource_type in ("fetch", "xhr"):
            refused.append(response.url)

    page.on("response", note_refusal)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/orders$"))
    expect(page.locator("#signed-in-as")).to_have_text(CUSTOMER)
    expect(page.locator("header.site")).to_contain_text(f"customer of {CUSTOMER_ID}")
    expect(page.locator(f"a[href='/orders/{own}']")).to_have_count(1)
    expect(page.locator(f"a[href='/orders/{others}']")).to_have_count(0)
    expect(page.locator("#orders-table")).not_to_contain_text(SOMEONE_ELSE)
    has_no_staff_links(page)
    audit(page)
    page.screenshot(path=str(artifacts / "customer-orders.png"), full_page=True)

    # A new order is the customer's own, whatever customer id the form may be given.
    if page.locator("#customer_id").is_visible():
        page.fill("#customer_id", SOMEONE_ELSE)
    page.fill("#currency", "EUR")
    page.get_by_role("button", name="Create order").click()
    page.wait_for_url(re.compile(r"/orders/[0-9a-f-]{36}$"))
    expect(page.locator(".summary")).to_contain_text(CUSTOMER_ID)
    expect(page.locator(".summary")).not_to_contain_text(SOMEONE_ELSE)
    audit(page)
    add_item(page, "TEA-1", "Green tea", "3.50", "2")
    total(page).to_have_text("7.00 EUR")
    page.click("#place-button")
    expect(page.locator(".summary .badge")).to_have_text("placed")
    expect(page.locator("#order-main")).not_to_contain_text("Forbidden")
    has_no_staff_links(page)
    audit(page)
    page.screenshot(path=str(artifacts / "customer-order.png"), full_page=True)

    assert not refused, f"the customer's own order page fetched what the customer may not see: {refused}"

    # Another customer's order is, to this customer, an order that does not exist.
    assert status_of(page, f"/orders/{others}") == 404
    expect(page.locator("main")).to_contain_text(f"There is no order {others}")
    audit(page)
    missing = uuid4()
    assert status_of(page, f"/orders/{missing}") == 404
    expect(page.locator("main")).to_contain_text(f"There is no order {missing}")

    assert status_of(page, "/events") == 403
    audit(page)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login$"))
    expect(page.locator("#signed-in-as")).to_have_count(0)
    page.goto(f"/orders/{own}")
    expect(page).to_have_url(re.compile(r"/login\?next="))
