"""Every HTML route answers a full page to a browser and just its fragment to htmx."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx

from tests.support.customers import SealedFor
from tests.support.pages import Page

if TYPE_CHECKING:
    from tests.support.ledger import Ledger
    from tests.support.page_client import PageClient

STATIC = Path(__file__).resolve().parents[2] / "static"


def assert_full_page(response: httpx.Response, *ids: str) -> Page:
    page = Page(response)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert page.is_full_page
    assert '<a class="brand" href="/orders">Orders</a>' in page.html
    assert set(ids) <= page.ids
    return page


def assert_partial(response: httpx.Response, fragment_id: str) -> Page:
    """An htmx answer: no layout, and its outermost element is the fragment htmx swaps."""
    assert response.status_code == 200, response.text
    assert "<html" not in response.text
    assert "<body" not in response.text
    outermost = re.match(r"\s*<\w+[^>]*>", response.text)
    assert outermost is not None
    assert f'id="{fragment_id}"' in outermost.group(0)
    return Page(response)


async def test_order_list_as_page_and_as_the_table_partial(browser: PageClient) -> None:
    await browser.create_order("alice")
    page = assert_full_page(await browser.get("/orders"), "orders-table", "customer_id", "currency")
    assert "alice" in page.html
    partial = assert_partial(await browser.get("/orders", htmx=True, target="orders-table"), "orders-table")
    assert "alice" in partial.html
    assert "customer_id" not in partial.ids


async def test_creating_an_order_redirects_to_its_page(browser: PageClient, ledger: Ledger) -> None:
    browser.register("bob")
    response = await browser.post("/orders", {"customer_id": "bob", "currency": "usd"})
    assert response.status_code == 303
    location = response.headers["location"]
    assert re.fullmatch(r"/orders/[0-9a-f-]{36}", location)
    order_id = location.rsplit("/", 1)[1]
    assert await ledger.events(order_id) == [
        ("OrderCreated", {"order_id": order_id, "customer_id": "bob", "currency": "USD"})
    ]
    page = assert_full_page(await browser.get(location), "order-main", "snapshot", "timeline")
    assert "0.00 USD" in page.html


async def test_order_page_and_its_main_partial(browser: PageClient) -> None:
    order_id = await browser.draft_with_items(("TEA-1", "Green tea", "3.50", "2"))
    page = assert_full_page(await browser.get(f"/orders/{order_id}"), "order-main", "version-slider")
    assert page.lines == [["TEA-1", "Green tea", "2", "3.50", "7.00"]]
    partial = assert_partial(await browser.get(f"/orders/{order_id}", htmx=True), "order-main")
    assert partial.lines == page.lines
    assert "version-slider" in partial.ids


async def test_history_as_page_and_as_the_snapshot_partial(browser: PageClient) -> None:
    order_id = await browser.draft_with_items(("TEA-1", "Green tea", "3.50", "2"))
    url = f"/orders/{order_id}/history?version=1"
    page = assert_full_page(await browser.get(url), "order-main", "snapshot", "version-slider")
    assert page.lines == []
    partial = assert_partial(await browser.get(url, htmx=True), "snapshot")
    assert "version-slider" not in partial.ids
    assert "Back to now" in partial.html


async def test_history_at_a_moment_as_page_and_partial(browser: PageClient) -> None:
    order_id = await browser.draft_with_items(("TEA-1", "Green tea", "3.50", "2"))
    url = f"/orders/{order_id}/history?at={quote('2999-01-01T00:00:00+01:00')}"
    page = assert_full_page(await browser.get(url), "snapshot")
    assert page.inputs["version-slider"]["value"] == "2"
    assert_partial(await browser.get(url, htmx=True), "snapshot")


async def test_timeline_as_page_and_partial(browser: PageClient) -> None:
    order_id = await browser.draft_with_items(("TEA-1", "Green tea", "3.50", "2"))
    page = assert_full_page(await browser.get(f"/orders/{order_id}/timeline"), "timeline")
    assert "Added 2 × Green tea (TEA-1) at 3.50 EUR" in page.html
    partial = assert_partial(await browser.get(f"/orders/{order_id}/timeline", htmx=True), "timeline")
    assert {"event-1", "event-2"} <= partial.ids


async def test_event_log_as_page_and_partial(browser: PageClient) -> None:
    await browser.draft_with_items(("TEA-1", "Green tea", "3.50", "2"))
    page = assert_full_page(await browser.get("/events"), "event-log")
    assert "ItemAdded" in page.html
    partial = assert_partial(await browser.get("/events", htmx=True, target="event-log"), "event-log")
    assert "OrderCreated" in partial.html


async def test_home_health_and_static_files(browser: PageClient) -> None:
    home = await browser.get("/", follow_redirects=False)
    assert home.status_code == 303
    assert home.headers["location"] == "/orders"
    health = await browser.get("/healthz")
    assert health.status_code == 200
    assert health.text.strip() == "ok"
    htmx = await browser.get("/static/htmx.min.js")
    assert htmx.status_code == 200
    assert "javascript" in htmx.headers["content-type"]
    assert htmx.content == (STATIC / "htmx.min.js").read_bytes()


COMMANDS = [
    ("add", "/items", {"sku": "CUP-1", "name": "Cup", "unit_price": "12.00", "quantity": "1"}),
    ("remove whole line", "/items/TEA-1/remove", {}),
    ("remove part of a line", "/items/TEA-1/remove", {"quantity": "1"}),
    ("place", "/place", {}),
    ("cancel", "/cancel", {"reason": "Ordered by mistake"}),
]

EXPECTED = {
    "add": (
        "ItemAdded",
        {"sku": "CUP-1", "name": "Cup", "unit_price_cents": 1200, "quantity": 1, "note": ""},
    ),
    "remove whole line": ("ItemRemoved", {"sku": "TEA-1", "quantity": 2}),
    "remove part of a line": ("ItemRemoved", {"sku": "TEA-1", "quantity": 1}),
    # Shipped to alice's address (the drafts are hers), stored sealed with her key.
    "place": ("OrderPlaced", {"total_cents": 700, "ship_to": SealedFor("alice")}),
    "cancel": ("OrderCancelled", {"reason": "Ordered by mistake"}),
}


async def test_a_plain_form_post_redirects_to_the_order(browser: PageClient, ledger: Ledger) -> None:
    for name, path, form in COMMANDS:
        order_id = await browser.draft_with_items(("TEA-1", "Green tea", "3.50", "2"))
        response = await browser.post(f"/orders/{order_id}{path}", {**form, "expected_version": "2"})
        assert response.status_code == 303, name
        assert response.headers["location"] == f"/orders/{order_id}", name
        assert (await ledger.events(order_id))[2:] == [EXPECTED[name]], name
        row = await ledger.row(order_id)
        assert row is not None
        assert row["version"] == 3, name


async def test_an_htmx_post_answers_the_order_main_partial(browser: PageClient, ledger: Ledger) -> None:
    for name, path, form in COMMANDS:
        order_id = await browser.draft_with_items(("TEA-1", "Green tea", "3.50", "2"))
        form = {**form, "expected_version": "2"}
        page = assert_partial(await browser.post(f"/orders/{order_id}{path}", form, htmx=True), "order-main")
        assert (await ledger.events(order_id))[2:] == [EXPECTED[name]], name
        assert page.inputs["version-slider"]["max"] == "3", name
        assert "Version <strong>3</strong> of 3" in page.html, name
