"""An operator's morning in a real Chromium: a held horizon and a parked event, seen and dealt with.

The app runs on a database of its own, with a retry policy of one try (an event that
fails parks at once) and a horizon warning after half a second. An event of a type this
release does not know (as a newer release might write) parks its stream; a session
outside the app (named `psql`) keeps a transaction open while the admin writes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.sync_api import Page, expect

from tests.browser.audit import audit
from tests.browser.people import sign_in
from tests.browser.test_order_journeys import create_order
from tests.support.accounts import add_account
from tests.support.customers import register_with
from tests.support.databases import fresh_database_sync
from tests.support.servers import uvicorn_server
from tests.support.subscriptions import insert_unknown_event

ADMIN = "otto"
SETTINGS = {"ORDERS_RETRY_ATTEMPTS": "1", "ORDERS_HORIZON_WARNING_SECONDS": "0.5"}


async def _prepare(database_url: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        await add_account(pool, ADMIN, "admin")
        await register_with(pool, "operator-1")  # whom the admin's order is for
        await insert_unknown_event(pool)  # stream "from-the-future", type OrderTeleported
    finally:
        await pool.close()


# Set up before the module's `chromium`: no asyncio.run() may happen once Playwright runs.
@pytest.fixture(scope="module")
def operated(server_url: str, template_database: str, chromium_path: Path) -> Iterator[tuple[str, str]]:
    with fresh_database_sync(server_url, "orders_operator", template_database) as database_url:
        asyncio.run(_prepare(database_url))
        with uvicorn_server(database_url, env=SETTINGS) as url:
            yield url, database_url


class OpenTransaction:
    """A session outside the app that writes and then keeps its transaction open, in a thread of its own."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.holding = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._hold()), daemon=True)

    def __enter__(self) -> OpenTransaction:
        self.thread.start()
        assert self.holding.wait(30), "the open transaction never began"
        return self

    def __exit__(self, *_: object) -> None:
        self.release.set()
        self.thread.join(30)

    async def _hold(self) -> None:
        conn = await asyncpg.connect(self.database_url, server_settings={"application_name": "psql"})
        try:
            async with conn.transaction():
                await conn.fetchval("SELECT pg_current_xact_id()")  # it now holds a transaction id
                self.holding.set()
                await asyncio.to_thread(self.release.wait)
        finally:
            await conn.close()


def reload_until(page: Page, selector: str, timeout_s: float = 30.0) -> None:
    """Reload the page until `selector` is on it (the runners work in the background)."""
    for _ in range(int(timeout_s / 0.25)):
        page.reload()
        if page.locator(selector).count():
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"{selector} never appeared on {page.url}")


def test_an_admin_sees_the_held_horizon_and_a_parked_event_and_deals_with_both(
    operated: tuple[str, str], chromium: Any, artifacts: Path
) -> None:
    url, database_url = operated
    context = chromium.new_context(base_url=url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        sign_in(page, ADMIN, to="/admin/projections")
        parked_rows = page.locator("#parked tbody tr")
        reload_until(page, "#parked tbody tr")
        expect(parked_rows.first).to_contain_text("from-the-future")
        expect(parked_rows.first).to_contain_text("OrderTeleported v1")
        parked_before = parked_rows.count()
        expect(page.locator("#horizon-state")).to_contain_text("Clear")
        audit(page)

        with OpenTransaction(database_url):
            create_order(page, "operator-1")  # committed while psql holds the horizon
            page.goto("/admin/projections")
            held = page.locator("#horizon-held")
            expect(held).to_be_visible()  # the partial refreshes itself every 3 s
            expect(held).to_contain_text("The horizon is held")
            expect(held).to_contain_text("psql")
            expect(held).to_contain_text("not this app")
            expect(page.locator("#horizon-lag-events")).not_to_have_text("0")
            audit(page)
            page.screenshot(path=str(artifacts / "admin-horizon-held.png"), full_page=True)

        expect(page.locator("#horizon-state")).to_contain_text("Clear", timeout=30_000)

        first = parked_rows.first
        first.get_by_label("Reason").fill("written by a newer release; nothing here can apply it")
        first.get_by_role("button", name="Skip").click()
        expect(page.locator("#parked .notice")).to_be_visible()
        expect(parked_rows).to_have_count(parked_before - 1)
        audit(page)
        page.screenshot(path=str(artifacts / "admin-parked-skipped.png"), full_page=True)
        assert not errors, errors
    finally:
        context.close()

    skips: list[list[tuple[str, str]]] = []
    # Playwright's loop runs on this thread: the check runs in a thread of its own.
    reader = threading.Thread(target=lambda: skips.append(asyncio.run(_skips(database_url))))
    reader.start()
    reader.join(30)
    assert skips == [[(ADMIN, "written by a newer release; nothing here can apply it")]]


async def _skips(database_url: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT * FROM parking_log WHERE kind = 'skipped'")
        return [(row["actor_name"], row["reason"]) for row in rows]
    finally:
        await conn.close()
