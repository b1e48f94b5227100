"""The order list and the event log: filters, and keyset paging that shows every row exactly once."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

if TYPE_CHECKING:
    from tests.support.ledger import Ledger
    from tests.support.page_client import PageClient

ORDER_LINK = re.compile(r'<td><a href="/orders/([0-9a-f-]{36})">')
NEXT_PAGE = re.compile(r'<p class="pager"><a href="([^"]+)"')


def next_page(text: str) -> str | None:
    found = NEXT_PAGE.search(text)
    return html.unescape(found.group(1)) if found else None


async def walk(browser: PageClient, url: str, target: str) -> tuple[list[str], list[str]]:
    """Follow the pager from `url` as htmx would; the raw HTML of every page, and the URLs visited."""
    pages: list[str] = []
    urls: list[str] = []
    next_url: str | None = url
    while next_url is not None:
        assert len(urls) < 20, "the pager does not end"
        response = await browser.get(next_url, htmx=True, target=target)
        assert response.status_code == 200
        pages.append(response.text)
        urls.append(next_url)
        next_url = next_page(response.text)
    return pages, urls


async def listed(browser: PageClient, query: str) -> list[str]:
    response = await browser.get(f"/orders?{query}", htmx=True, target="orders-table")
    assert response.status_code == 200
    return ORDER_LINK.findall(response.text)


async def test_filtering_orders_by_customer_prefix_and_status(browser: PageClient) -> None:
    alice = await browser.draft_with_items(("TEA-1", "Tea", "1.00", "1"), customer_id="alice")
    alicia = await browser.create_order("alicia")
    bob = await browser.draft_with_items(("TEA-1", "Tea", "1.00", "1"), customer_id="bob")
    await browser.post(f"/orders/{bob}/place", htmx=True)
    await browser.post(f"/orders/{alicia}/cancel", {"reason": "Duplicate"}, htmx=True)
    assert set(await listed(browser, "")) == {alice, alicia, bob}
    assert set(await listed(browser, "customer=ali")) == {alice, alicia}
    assert await listed(browser, "customer=alice") == [alice]
    assert await listed(browser, "customer=Ali") == []
    assert await listed(browser, "customer=zed") == []
    assert await listed(browser, "status=placed") == [bob]
    assert await listed(browser, "status=cancelled") == [alicia]
    assert await listed(browser, "status=draft") == [alice]
    assert await listed(browser, "customer=ali&status=draft") == [alice]
    assert set(await listed(browser, "status=bogus")) == {alice, alicia, bob}
    empty = await browser.get("/orders?customer=zed", htmx=True, target="orders-table")
    assert "No orders match these filters." in empty.text
    page = await browser.get("/orders?customer=ali&status=placed")
    assert 'name="customer" value="ali"' in page.text
    assert '<option value="placed" selected>' in page.text


async def test_paging_through_more_than_a_page_of_orders(browser: PageClient) -> None:
    others = [await browser.create_order("zoe") for _ in range(3)]
    mine = [await browser.create_order(f"c-{n}") for n in range(28)]
    for customer, orders in [("", others + mine), ("c-", mine)]:
        expected = list(reversed(orders))
        pages, urls = await walk(browser, f"/orders?customer={customer}", "orders-table")
        seen = [order_id for page in pages for order_id in ORDER_LINK.findall(page)]
        assert seen == expected, customer
        assert [len(ORDER_LINK.findall(page)) for page in pages] == [25, len(expected) - 25], customer
        assert all(f"customer={customer}&" in url and "after=" in url for url in urls[1:]), urls

    full = await browser.get("/orders?customer=c-")
    assert "Older orders" in full.text
    url = next_page(full.text)
    assert url is not None
    rest = await browser.get(url)
    assert "<html" in rest.text
    assert ORDER_LINK.findall(rest.text) == list(reversed(mine))[25:]


def log_rows(text: str) -> list[tuple[int, str, str]]:
    """(position, stream id, type) of each row of the event log: an order's, or a customer's."""
    rows = []
    for row in re.findall(r"<tr\b[^>]*>(.*?)</tr>", text, re.DOTALL):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)
        if cells:
            order = re.search(r"/orders/([0-9a-f-]{36}|customer:[^/\"]+)/history", cells[2])
            customer = re.search(r'/customers/([^/"?]+)"', cells[2])
            if order:
                stream = order.group(1)
            else:
                assert customer is not None, cells[2]
                stream = f"customer:{unquote(customer.group(1))}"
            kind = re.match(r"\w+", cells[4])
            assert kind is not None
            rows.append((int(cells[0]), stream, kind.group(0)))
    return rows


async def test_paging_through_the_event_log_with_and_without_filters(
    browser: PageClient, ledger: Ledger
) -> None:
    orders = []
    for n in range(6):
        items = [(f"SKU-{i}", f"Item {i}", "1.00", "1") for i in range(9)]
        orders.append(await browser.draft_with_items(*items))
        if n == 0:
            await browser.post(f"/orders/{orders[0]}/place", htmx=True)
    total = await ledger.event_count()
    assert total == 62  # alice's registration, then the orders' 61 events

    pages, urls = await walk(browser, "/events", "event-log")
    rows = [row for page in pages for row in log_rows(page)]
    assert [position for position, _, _ in rows] == list(range(total, 0, -1))
    assert rows[-1][1:] == ("customer:alice", "CustomerRegistered")
    assert [len(log_rows(page)) for page in pages] == [50, 12]
    assert "before=" in urls[1]

    pages, _ = await walk(browser, "/events?type=ItemAdded", "event-log")
    added = [row for page in pages for row in log_rows(page)]
    assert len(added) == 54
    assert {kind for _, _, kind in added} == {"ItemAdded"}
    assert len(pages) == 2

    pages, _ = await walk(browser, f"/events?order={orders[0]}", "event-log")
    assert [(stream, kind) for page in pages for _, stream, kind in log_rows(page)] == [
        (orders[0], "OrderPlaced"),
        *[(orders[0], "ItemAdded")] * 9,
        (orders[0], "OrderCreated"),
    ]

    pages, _ = await walk(browser, f"/events?type=OrderPlaced&order={orders[1]}", "event-log")
    assert "No events match these filters" in pages[0]
    assert (await browser.get("/events?before=abc")).status_code == 400
