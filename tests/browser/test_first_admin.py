"""The one-time set-up link in a real Chromium: the first admin is made, signed in, and sees every link."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.audit import audit
from tests.browser.people import SETUP_TOKEN
from tests.browser.test_customer_journey import status_of

ADMIN_PASSWORD = "a long admin passphrase"


def test_the_set_up_link_makes_the_first_admin_once(signed_out_page: Page) -> None:
    page = signed_out_page
    page.goto(f"/setup?token={SETUP_TOKEN}")
    expect(page.get_by_role("heading", name="Create the first admin")).to_be_visible()
    audit(page)
    page.get_by_label("Name").fill("root")
    page.get_by_label("Password (12 characters or more)").fill(ADMIN_PASSWORD)
    page.get_by_label("The password again").fill(ADMIN_PASSWORD + " typo")
    page.get_by_role("button", name="Create the admin and sign in").click()
    expect(page.locator("#setup-problem")).to_have_text("The two passwords differ.")
    audit(page)
    page.get_by_label("Password (12 characters or more)").fill(ADMIN_PASSWORD)
    page.get_by_label("The password again").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Create the admin and sign in").click()
    page.wait_for_url(re.compile(r"/orders$"))
    expect(page.locator("#signed-in-as")).to_have_text("root")
    for name in ("Event log", "Sales", "Notifications", "Read models", "Accounts"):
        expect(page.locator("header.site").get_by_role("link", name=name)).to_be_visible()
    audit(page)
    assert status_of(page, f"/setup?token={SETUP_TOKEN}") == 404
    expect(page.locator("main")).to_contain_text("an admin exists already")
    audit(page)
