"""Who did it: each event names its account, the log filters by it, a stale form names who changed it."""

from __future__ import annotations

import json

import asyncpg

from tests.support.accounts import session_for
from tests.support.ledger import Ledger
from tests.support.page_client import PageClient
from tests.support.pages import Page
from web.access import SESSION_COOKIE

TEA = ("TEA-1", "Green tea", "3.50", "2")


async def as_account(browser: PageClient, pool: asyncpg.Pool, name: str, role: str) -> None:
    """Sign the page client in as another account, as a second person at another desk would be."""
    browser.client.cookies.set(SESSION_COOKIE, await session_for(pool, name, role))


async def test_every_event_names_the_account_that_wrote_it(
    browser: PageClient, pool: asyncpg.Pool, ledger: Ledger
) -> None:
    order_id = await browser.draft_with_items(TEA)  # as ada, the admin
    await as_account(browser, pool, "till", "clerk")
    response = await browser.post(f"/orders/{order_id}/place", htmx=True)
    assert response.status_code == 200, response.text

    rows = await pool.fetch(
        "SELECT metadata::text FROM events WHERE stream_id = $1 ORDER BY version", order_id
    )
    written_by = [json.loads(row[0]) for row in rows]
    ids = dict(await pool.fetch("SELECT name, account_id::text FROM accounts"))
    assert [(m["actor"], m["actor_id"]) for m in written_by] == [
        ("ada", ids["ada"]),
        ("ada", ids["ada"]),
        ("till", ids["till"]),
    ]
    timeline = Page(await browser.get(f"/orders/{order_id}/timeline"))
    # Each entry says who wrote it (the header's "Signed in as ada" does not count).
    assert timeline.html.count('<span class="muted">by ada</span>') == 2
    assert timeline.html.count('<span class="muted">by till</span>') == 1


async def test_the_event_log_shows_one_accounts_events(browser: PageClient, pool: asyncpg.Pool) -> None:
    mine = await browser.draft_with_items(TEA)  # ada: created and added
    await as_account(browser, pool, "till", "clerk")
    theirs = await browser.create_order("bob")
    page = await browser.get("/events?actor=till")
    assert page.status_code == 200
    assert theirs[:8] in page.text
    assert mine[:8] not in page.text
    everyone = await browser.get("/events")
    assert mine[:8] in everyone.text
    assert theirs[:8] in everyone.text


async def test_a_stale_form_names_who_changed_the_order(browser: PageClient, pool: asyncpg.Pool) -> None:
    order_id = await browser.draft_with_items(TEA)  # version 2, seen by ada
    await as_account(browser, pool, "till", "clerk")
    await browser.post(f"/orders/{order_id}/cancel", {"reason": "Out of stock"}, htmx=True)
    await as_account(browser, pool, "ada", "admin")
    response = await browser.post(f"/orders/{order_id}/place", {"expected_version": "2"}, htmx=True)
    assert response.status_code == 409
    assert Page(response).problems["general"].endswith("Changed since by till.")


async def test_a_diff_names_who_made_its_changes(browser: PageClient, pool: asyncpg.Pool) -> None:
    order_id = await browser.draft_with_items(TEA)  # ada: versions 1 and 2
    await as_account(browser, pool, "till", "clerk")
    await browser.post(f"/orders/{order_id}/place", htmx=True)  # till: version 3
    assert "Changed by till</p>" in (await browser.get(f"/orders/{order_id}/diff?from_version=2")).text
    assert "Changed by ada, till</p>" in (await browser.get(f"/orders/{order_id}/diff?from_version=1")).text
