"""Debian's Chromium through Playwright, against a real uvicorn server and PostgreSQL.

Skipped with a reason where no Chromium is installed, unless ORDERS_REQUIRE_BROWSER=1
(CI sets it once it has installed Chromium), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import fresh_database_sync
from tests.support.servers import uvicorn_server

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


@pytest.fixture(scope="session")
def app_url(server_url: str, template_database: str, chromium_path: Path) -> Iterator[str]:
    with (
        fresh_database_sync(server_url, "orders_browser", template_database) as database_url,
        uvicorn_server(database_url) as url,
    ):
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
def page(chromium: object, app_url: str) -> Iterator[object]:
    """A fresh browser context and page; any JavaScript error fails the test."""
    from playwright.sync_api import Browser

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
    yield page
    context.close()
    assert not errors, "JavaScript errors in the console:\n" + "\n".join(errors)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
