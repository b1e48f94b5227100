"""Pages of the read models kept by subscriptions: customers, sales, and the admin page's rebuild."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from tests.support.accounts import session_at
from tests.support.app import make_app
from tests.support.page_client import PageClient
from tests.support.subscriptions import insert_unknown_event
from tests.support.waiting import eventually
from web.access import SESSION_COOKIE


@pytest.fixture
async def live_browser(database_url: str) -> AsyncIterator[PageClient]:
    """The app with its subscription runners, as `orders serve` runs it."""
    app = make_app(database_url, csrf_secret="test-secret", pool_size=6, subscriptions=True)
    async with AsyncTestClient(app=app) as client:
        # An admin: these tests place orders, read the summaries and rebuild them on the admin page.
        client.cookies.set(SESSION_COOKIE, await session_at(database_url, "root", "admin"))
        yield PageClient(client)


async def page_showing(browser: PageClient, url: str, *texts: str, timeout: float = 10.0) -> Any:
    """The page once every text is on it: subscriptions apply events a moment after they commit."""

    async def shown() -> Any:
        page = await browser.get(url)
        return page if all(text in page.text for text in texts) else None

    return await eventually(shown, timeout=timeout, interval=0.1)


async def orders_of_ada(browser: PageClient) -> None:
    for step in ("place", "cancel", None):
        order_id = await browser.create_order("ada", "EUR")
        await browser.post(
            f"/orders/{order_id}/items",
            {"sku": "S-1", "name": "Slate", "unit_price": "4.25", "quantity": "2"},
        )
        if step == "place":
            await browser.post(f"/orders/{order_id}/place")
        elif step == "cancel":
            await browser.post(f"/orders/{order_id}/cancel", {"reason": "Changed plans"})


async def test_the_customer_page_and_the_filtered_list_show_the_summary(live_browser: PageClient) -> None:
    await orders_of_ada(live_browser)
    page = await page_showing(
        live_browser,
        "/customers/ada",
        "<dt>Placed value</dt><dd>8.50 EUR</dd>",
        *(f"<dt>{label}</dt><dd>1</dd>" for label in ("Draft", "Placed", "Cancelled")),
    )
    assert page.text.count('<a href="/orders/') >= 3
    listed = await live_browser.get("/orders?customer=ada")
    assert "<dt>Placed value</dt><dd>8.50 EUR</dd>" in listed.text
    assert (await live_browser.get("/customers/nobody")).status_code == 404


async def test_sales_by_day_draws_the_day_as_svg(live_browser: PageClient) -> None:
    await orders_of_ada(live_browser)
    # The day's row once the subscription has applied both the placing and the cancelling.
    cells = '<td class="num">1</td><td class="num">8.50</td><td class="num">1</td><td class="num">8.50</td>'
    page = await page_showing(live_browser, "/sales", cells)
    assert re.search(r"<tr><td>\d{4}-\d\d-\d\d</td>" + re.escape(cells) + "</tr>", page.text)
    assert '<svg class="chart"' in page.text
    heights = dict(re.findall(r'<rect class="bar (placed|cancelled)"[^>]* height="([\d.]+)"', page.text))
    assert float(heights["placed"]) > 0
    assert heights["placed"] == heights["cancelled"], "equal values draw equal bars"
    assert "<script" not in page.text.split("<main", 1)[1]


async def test_a_rebuild_from_the_admin_page_ends_with_the_same_summary(live_browser: PageClient) -> None:
    await orders_of_ada(live_browser)
    await page_showing(live_browser, "/customers/ada", "<dt>Placed value</dt><dd>8.50 EUR</dd>")
    admin = await live_browser.get("/admin/projections")
    for name in ("order_read_model", "customer_summaries", "sales_by_day"):
        assert f'id="projection-{name}"' in admin.text
    started = await live_browser.post("/admin/projections/customer_summaries/rebuild", htmx=True)
    assert started.status_code == 200
    assert 'id="projections"' in started.text
    await page_showing(live_browser, "/admin/projections", "last: done")
    page = await live_browser.get("/customers/ada")
    assert "<dt>Placed value</dt><dd>8.50 EUR</dd>" in page.text
    assert (await live_browser.post("/admin/projections/nothing/rebuild", htmx=True)).status_code == 404


async def test_an_event_a_subscription_cannot_read_is_named_on_the_admin_page(
    live_browser: PageClient, pool: asyncpg.Pool
) -> None:
    await orders_of_ada(live_browser)
    await page_showing(live_browser, "/customers/ada", "<dt>Placed value</dt><dd>8.50 EUR</dd>")
    await insert_unknown_event(pool)
    # Each subscription meets the event on its own schedule: wait for both.
    page = await page_showing(
        live_browser,
        "/admin/projections",
        'id="error-customer_summaries"',
        'id="error-sales_by_day"',
    )
    assert '<span class="state failing">failing</span>' in page.text
    assert page.text.count("UnknownEventType: unknown event type &#39;OrderTeleported&#39;") == 2
    # The rest of the service goes on: the order pages are kept by the append itself.
    order_id = await live_browser.create_order("grace", "EUR")
    assert "grace" in (await live_browser.get(f"/orders/{order_id}")).text
