"""The people of the journeys, and signing in as one of them through the real sign-in page."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect

from tests.browser.audit import audit
from tests.support.accounts import PASSWORD

CLERK = "clara"  # the person of the staff journeys
OTHER_CLERK = "sam"  # someone else at work on the same orders
CUSTOMER, CUSTOMER_ID = "cora", "journey-cora"
# name, role, customer id: made in the server's database before the browser starts.
PEOPLE = ((CLERK, "clerk", None), (OTHER_CLERK, "clerk", None), (CUSTOMER, "customer", CUSTOMER_ID))
# Everyone the journeys order for: registered customers (a new order is for one), made in the
# server's database before the browser starts.
CUSTOMER_IDS = (
    CUSTOMER_ID,
    "journey-someone-else",
    "journey-alice",
    "journey-bob",
    "journey-carol",
    "journey-dave",
    "journey-erin-with-a-rather-long-customer-identifier-for-phones",
    "journey-live",
    "journey-log",
    "journey-slider",
    "travel-tess",
)
# The one-time link that makes the first admin (none of the people above is one).
SETUP_TOKEN = secrets.token_urlsafe(24)


def sign_in(page: Page, name: str, password: str = PASSWORD, to: str = "/orders") -> None:
    """Open `to`, be sent to the sign-in page, type the name and password, land back on `to`."""
    page.goto(to)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    audit(page)
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(to) + "$"))
    expect(page.locator("#signed-in-as")).to_have_text(name)


@contextmanager
def signed_in_elsewhere(chromium: Any, page: Page, name: str) -> Iterator[Page]:
    """A second browser of its own, signed in as `name`, on the same server as `page`."""
    where = urlsplit(page.url)
    context = chromium.new_context(base_url=f"{where.scheme}://{where.netloc}")
    other = context.new_page()
    other.set_default_timeout(10_000)
    try:
        sign_in(other, name)
        yield other
    finally:
        context.close()
