"""Forgetting a customer in a real Chromium: a clerk registers them and places their order,
an admin forgets them, and every page that showed their details shows them erased while
the order's lines and total stay as they were.

The module serves the app on a database of its own, with a clerk and an admin: the shared
server of the other journeys has no admin until the set-up link test makes its first one.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.audit import audit
from tests.browser.people import CLERK, sign_in
from tests.browser.test_order_journeys import add_item, create_order, total
from tests.support.accounts import add_account
from tests.support.databases import fresh_database_sync
from tests.support.servers import uvicorn_server

ADMIN = "ada"
CUSTOMER_ID = "cust-7731"
NAME, EMAIL = "Wilhelmina Quayle", "w.quayle@example.org"
STREET, TOWN = "14 Marigold Terrace", "Bristol BS1 5TR"
# What must be gone everywhere once the customer is forgotten: whole values and their parts.
PERSONAL = (NAME, "Wilhelmina", "Quayle", EMAIL, "w.quayle", STREET, "Marigold", TOWN, "BS1 5TR")
REASON = "Asked by email to be forgotten (ticket 4412)"
PLACED_VERSION = 4  # created, two items added, placed
TOTAL = "109.50 EUR"


async def _add_people(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await add_account(connection, CLERK, "clerk")
        await add_account(connection, ADMIN, "admin")
    finally:
        await connection.close()


# Overrides the shared server for this module; set up before the module's `chromium`, as no
# asyncio.run() may happen once Playwright runs.
@pytest.fixture(scope="module")
def app_url(server_url: str, template_database: str, chromium_path: Path) -> Iterator[str]:
    with fresh_database_sync(server_url, "orders_forget", template_database) as database_url:
        asyncio.run(_add_people(database_url))
        with uvicorn_server(database_url) as url:
            yield url


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login$"))


def details_in(page: Page) -> list[str]:
    """The customer's details in the page's HTML: text, attributes and form values alike."""
    html = page.content()
    return [detail for detail in PERSONAL if detail in html]


def shows_none_of_the_details(page: Page, where: Locator) -> None:
    for detail in PERSONAL:
        expect(where).not_to_contain_text(detail)
    assert not details_in(page), f"{page.url} still holds {details_in(page)}"


def register(page: Page) -> None:
    page.goto("/customers/new")
    expect(page.get_by_role("heading", name="Register a customer")).to_be_visible()
    audit(page)
    page.get_by_label("Customer id").fill(CUSTOMER_ID)
    page.get_by_label("Name", exact=True).fill(NAME)
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Shipping address").fill(f"{STREET}\n{TOWN}")
    page.get_by_role("button", name="Register").click()
    page.wait_for_url(re.compile(rf"/customers/{CUSTOMER_ID}$"))
    details = page.locator("#customer-details")
    for shown in (NAME, EMAIL, STREET, TOWN, "registered"):
        expect(details).to_contain_text(shown)
    audit(page)


def forget_refused_to_a_clerk(page: Page) -> None:
    """No forget form for a clerk; a forget posted anyway (with a valid CSRF token) is 403 and
    changes nothing."""
    page.goto(f"/customers/{CUSTOMER_ID}")
    expect(page.locator("#customer-details")).to_contain_text(NAME)
    expect(page.get_by_role("heading", name="Forget this customer")).to_have_count(0)
    expect(page.locator("form[action$='/forget']")).to_have_count(0)
    audit(page)
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        f"/customers/{CUSTOMER_ID}/forget",
        form={"reason": "a clerk trying anyway", "command_id": str(uuid4())},
        headers={"x-csrftoken": csrf},
        max_redirects=0,
    )
    assert response.status == 403, response.status
    assert "may not use this page" in response.text()
    page.reload()
    expect(page.locator("#customer-details")).to_contain_text(NAME)
    expect(page.locator("#customer-details .badge")).to_have_text("registered")


def test_an_admin_forgets_a_customer_and_every_page_shows_them_erased(page: Page, artifacts: Path) -> None:
    register(page)

    order_id = create_order(page, CUSTOMER_ID)
    add_item(page, "SHIRT-1", "Linen shirt", "45.00", "2")
    total(page).to_have_text("90.00 EUR")
    add_item(page, "SCARF-1", "Wool scarf", "19.50", "1")
    total(page).to_have_text(TOTAL)
    page.click("#place-button")
    expect(page.locator(".summary .badge")).to_have_text("placed")
    expect(page.locator(".timeline li.event")).to_have_count(PLACED_VERSION)
    ship_to = page.locator(".summary .ship-to")
    expect(ship_to).to_contain_text("Ships to")
    expect(ship_to).to_contain_text(STREET)
    expect(ship_to).to_contain_text(TOWN)
    lines = page.locator("table.lines tbody tr")
    expect(lines).to_have_count(2)
    lines_before = lines.all_inner_texts()
    audit(page)
    page.screenshot(path=str(artifacts / "forget-before-order.png"), full_page=True)

    page.goto(f"/customers/{CUSTOMER_ID}")
    expect(page.locator("#customer-details")).to_contain_text(NAME)
    expect(page.locator(f"a[href='/orders/{order_id}']")).to_have_count(1)
    assert details_in(page) == list(PERSONAL)  # what the checks after the forget look for is there now
    audit(page)
    page.screenshot(path=str(artifacts / "forget-before-customer.png"), full_page=True)

    page.goto(f"/notifications?order={order_id}")
    message = page.locator("#notifications tbody tr")
    expect(message).to_have_count(1)
    expect(message).to_contain_text(NAME)
    expect(message).to_contain_text(STREET)
    audit(page)

    forget_refused_to_a_clerk(page)

    sign_out(page)
    sign_in(page, ADMIN, to=f"/customers/{CUSTOMER_ID}")
    expect(page.get_by_role("heading", name="Forget this customer")).to_be_visible()
    expect(page.locator("#customer-details")).to_contain_text(NAME)
    audit(page)
    page.get_by_label("Reason (recorded with your name)").fill(REASON)
    page.get_by_role("button", name="Forget this customer").click()

    details = page.locator("#customer-details")
    expect(details.locator(".badge")).to_have_text("forgotten")
    expect(page.locator("#forgotten")).to_contain_text(f"Forgotten by {ADMIN}")
    expect(page.locator("#forgotten")).to_contain_text(REASON)
    expect(details.locator("dd .erased")).to_have_count(3)  # name, email, shipping address
    expect(page.get_by_role("heading", name="Forget this customer")).to_have_count(0)
    expect(page.get_by_role("heading", name="Change the details")).to_have_count(0)
    shows_none_of_the_details(page, page.locator("main"))
    expect(page.locator(f"a[href='/orders/{order_id}']")).to_have_count(1)  # the order stays
    audit(page)
    page.screenshot(path=str(artifacts / "forget-after-customer.png"), full_page=True)

    page.goto(f"/orders/{order_id}")
    total(page).to_have_text(TOTAL)
    expect(page.locator(".summary .badge")).to_have_text("placed")
    expect(page.locator(".summary .ship-to .erased")).to_have_text("erased")
    expect(lines).to_have_text(lines_before)
    shows_none_of_the_details(page, page.locator("main"))
    audit(page)
    page.screenshot(path=str(artifacts / "forget-after-order.png"), full_page=True)

    page.goto(f"/orders/{order_id}/history?version={PLACED_VERSION}")
    expect(page.locator(f"#event-{PLACED_VERSION}")).to_have_attribute("aria-current", "step")
    total(page).to_have_text(TOTAL)
    expect(page.locator(".summary .ship-to .erased")).to_have_text("erased")
    expect(lines).to_have_text(lines_before)
    page.click(f"#event-{PLACED_VERSION} summary")  # the placing event's data, loaded when opened
    detail = page.locator(f"#event-{PLACED_VERSION} .event-detail")
    expect(detail).to_contain_text("ship_to")
    expect(detail).to_contain_text("[erased]")
    shows_none_of_the_details(page, page.locator("main"))
    audit(page)

    page.goto(f"/notifications?order={order_id}")
    expect(message).to_have_count(1)
    expect(message).to_contain_text(f"Your order {order_id[:8]} is placed")  # the subject holds no detail
    expect(message).to_contain_text("[erased]")  # the body
    shows_none_of_the_details(page, page.locator("main"))
    audit(page)

    page.goto("/events")
    log = page.locator("#event-rows")
    expect(log.locator("tr").first).to_contain_text("CustomerForgotten")
    expect(log.locator("tr").first).to_contain_text(REASON)
    registered = log.locator("tr", has_text="CustomerRegistered")
    expect(registered).to_have_count(1)
    expect(registered).to_contain_text("[erased]")
    placed = log.locator("tr", has_text="OrderPlaced")
    expect(placed).to_have_count(1)
    expect(placed).to_contain_text("[erased]")
    shows_none_of_the_details(page, page.locator("main"))
    audit(page)
