"""The time-travel pages: moments with time zones, step and play, compare, through HTTP."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from tests.support.page_client import PageClient


async def an_order(browser: PageClient) -> str:
    order_id = await browser.create_order("traveller", "EUR")
    for sku, price in (("A-1", "1.00"), ("B-1", "2.00"), ("C-1", "4.00")):
        response = await browser.post(
            f"/orders/{order_id}/items", {"sku": sku, "name": sku, "unit_price": price, "quantity": "1"}
        )
        assert response.status_code == 303
    return order_id


async def test_a_moment_with_a_time_zone_shows_the_order_as_it_was(browser: PageClient) -> None:
    order_id = await an_order(browser)
    page = await browser.get(f"/orders/{order_id}")
    first = datetime.fromisoformat(re.search(r'id="event-1".*?datetime="([^"]+)"', page.text, re.S)[1])  # type: ignore[index]
    in_paris = (first + timedelta(microseconds=1)).astimezone(
        datetime.fromisoformat("2026-01-01T00:00+01:00").tzinfo
    )
    response = await browser.client.get(f"/orders/{order_id}/history", params={"at": in_paris.isoformat()})
    assert response.status_code == 200
    assert "Version <strong>1</strong> of 4" in response.text
    before = await browser.client.get(
        f"/orders/{order_id}/history", params={"at": "2001-01-01T00:00:00+02:00"}
    )
    assert before.status_code == 404
    assert "did not exist yet at 2001-01-01T00:00:00+02:00" in before.text
    bad = await browser.client.get(f"/orders/{order_id}/history", params={"at": "yesterday"})
    assert bad.status_code == 400
    assert "ISO 8601" in bad.text


async def test_step_links_and_play_walk_the_versions(browser: PageClient) -> None:
    order_id = await an_order(browser)
    page = await browser.get(f"/orders/{order_id}/history?version=2")
    assert f'href="/orders/{order_id}/history?version=1"' in page.text
    assert 'id="step-back"' in page.text
    assert f'href="/orders/{order_id}/history?version=3"' in page.text
    playing = await browser.client.get(
        f"/orders/{order_id}/history",
        params={"version": "2", "play": "fast"},
        headers={"HX-Request": "true", "HX-Target": "order-main"},
    )
    assert playing.status_code == 200
    assert 'id="order-main"' in playing.text
    assert f"/orders/{order_id}/history?version=3&amp;play=fast" in playing.text
    assert 'hx-trigger="load delay:250ms"' in playing.text
    at_end = await browser.client.get(
        f"/orders/{order_id}/history",
        params={"version": "4", "play": "fast"},
        headers={"HX-Request": "true", "HX-Target": "order-main"},
    )
    assert "play=fast" not in at_end.text.split('id="snapshot"')[1], "playing stops at the latest version"


async def test_compare_two_versions_and_with_now(browser: PageClient) -> None:
    order_id = await an_order(browser)
    await browser.post(f"/orders/{order_id}/items/A-1/remove")
    compare = await browser.get(f"/orders/{order_id}/diff?from_version=2&to_version=5")
    assert compare.status_code == 200
    assert "From version 2 to 5" in compare.text
    assert "B-1" in compare.text
    assert "C-1" in compare.text
    assert "A-1" in compare.text
    assert "Total 1.00 → <strong>6.00</strong> EUR" in compare.text
    assert "(+5.00)" in compare.text
    partial = await browser.get(f"/orders/{order_id}/diff?from_version=1", htmx=True)
    assert "<html" not in partial.text
    assert "From version 1 to 5" in partial.text
    past = await browser.get(f"/orders/{order_id}/history?version=2")
    assert "Compare with now" in past.text
    assert (await browser.get(f"/orders/{order_id}/diff?from_version=0")).status_code == 400
    assert (await browser.get(f"/orders/{order_id}/diff?from_version=9")).status_code == 404


async def test_each_event_has_a_detail_with_its_metadata_and_change(browser: PageClient) -> None:
    order_id = await an_order(browser)
    detail = await browser.get(f"/orders/{order_id}/events/3", htmx=True)
    assert detail.status_code == 200
    assert "<html" not in detail.text
    for label in (
        "Event id",
        "Position",
        "Command id",
        "Correlation id",
        "Causation id",
        "Actor",
        "Schema version",
    ):
        assert f"<dt>{label}</dt>" in detail.text
    assert "From version 2 to 3" in detail.text
    assert "B-1" in detail.text
    page = await browser.get(f"/orders/{order_id}/events/1")
    assert "<html" in page.text
    assert "Order created for customer traveller" in page.text
    assert (await browser.get(f"/orders/{order_id}/events/9")).status_code == 404
    assert (await browser.get(f"/orders/{order_id}/events/0")).status_code == 400
