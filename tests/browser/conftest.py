"""Debian's Chromium through Playwright, against a real uvicorn server and PostgreSQL.

The people of the journeys (people.py) have accounts in the server's database and
sign in through the sign-in page; axe-core audits what each page shows (audit.py).
Skipped with a reason where no Chromium is installed, unless ORDERS_REQUIRE_BROWSER=1
(CI sets it once it has installed Chromium), which turns the skip into a failure.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from playwright.sync_api import expect

from store.access.sessions import digest
from tests.browser.audit import audit, audited, kind_of
from tests.browser.people import CLERK, CUSTOMER_IDS, PEOPLE, SETUP_TOKEN, sign_in
from tests.support.accounts import add_account
from tests.support.customers import register_at
from tests.support.databases import fresh_database_sync
from tests.support.servers import uvicorn_server

# What a page shows after a click or a live update is waited for, never timed: on a busy
# machine (CI shares one) an htmx answer can take seconds. The pages never reload by
# themselves, so a change that arrives at all arrived live.
expect.set_options(timeout=15_000)

CHROMIUM = Path(os.environ.get("ORDERS_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "artifacts"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Chromium reports every 4xx answer to a fetch as a console error; those answers are
# the app explaining a broken rule, not a script failing.
EXPECTED_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM}: apt-get install chromium (CI does)"
        if os.environ.get("ORDERS_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    """Each phase's report on the test, so a fixture's teardown knows whether the test passed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


async def _add_people(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        for name, role, customer_id in PEOPLE:
            await add_account(connection, name, role, customer_id)
        await connection.execute("INSERT INTO setup_tokens (token_hash) VALUES ($1)", digest(SETUP_TOKEN))
    finally:
        await connection.close()
    await register_at(database_url, *CUSTOMER_IDS)  # with the server's master key (ORDERS_SECRET)


@pytest.fixture(scope="session")
def app_url(server_url: str, template_database: str, chromium_path: Path) -> Iterator[str]:
    with (
        fresh_database_sync(server_url, "orders_browser", template_database) as database_url,
        uvicorn_server(database_url) as url,
    ):
        asyncio.run(_add_people(database_url))
        yield url


# Module scope, and set up after app_url: Playwright's sync API keeps an event loop
# running on this thread while it lives, so no asyncio.run() may happen meanwhile.
@pytest.fixture(scope="module")
def chromium(chromium_path: Path, app_url: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def signed_out_page(chromium: object, app_url: str, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh browser context and page, signed in as nobody.

    Any JavaScript error fails the test; so does, once the test has passed, an axe-core
    violation on the page it ends on, or a kind of page it opened and never audited.
    """
    from playwright.sync_api import Browser, Frame

    assert isinstance(chromium, Browser)
    context = chromium.new_context(base_url=app_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            errors.append(f"console {message.type}: {message.text}")
            if message.type == "error" and not EXPECTED_CONSOLE.search(message.text)
            else None
        ),
    )
    opened: set[str] = set()

    def note_page(frame: Frame) -> None:
        if frame == page.main_frame and frame.url.startswith("http"):
            opened.add(kind_of(frame.url))

    page.on("framenavigated", note_page)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.passed:
        if page.url.startswith("http"):
            audit(page)
        unaudited = opened - audited(page)
        assert not unaudited, f"pages opened and never audited with axe: {sorted(unaudited)}"
    context.close()
    assert not errors, "JavaScript errors in the console:\n" + "\n".join(errors)


@pytest.fixture
def page(signed_out_page: object) -> object:
    """A page signed in as the clerk of the journeys, through the sign-in page."""
    from playwright.sync_api import Page

    assert isinstance(signed_out_page, Page)
    sign_in(signed_out_page, CLERK)
    return signed_out_page


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
