"""The slider and the history URL: the order as it was at each version, checked against our own fold."""

from __future__ import annotations

import re
from datetime import UTC, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING
from urllib.parse import quote

from tests.support.pages import Page

if TYPE_CHECKING:
    from tests.support.ledger import Ledger
    from tests.support.page_client import PageClient

# What the person does after creating the order (version 1), one event each.
STEPS: list[tuple[str, ...]] = [
    ("add", "TEA-1", "Green tea", "3.50", "2"),
    ("add", "CUP-1", "Cup", "12.00", "1"),
    ("add", "TEA-1", "Green tea", "3.50", "3"),
    ("add", "SPN-1", "Spoon", "0.99", "4"),
    ("remove", "CUP-1", ""),
    ("remove", "SPN-1", "1"),
    ("add", "POT-1", "Teapot", "1000.00", "1"),
    ("remove", "TEA-1", "2"),
    ("add", "CUP-1", "Cup", "12.50", "2"),
]


def money(cents: int) -> str:
    return f"{cents // 100:,}.{cents % 100:02d}"


def expected_lines(steps: list[tuple[str, ...]]) -> list[list[str]]:
    """The lines table after `steps`, folded here without the app's code."""
    lines: dict[str, tuple[str, int, int]] = {}
    for action, sku, *rest in steps:
        if action == "add":
            name, price, quantity = rest
            cents = int(Decimal(price) * 100)
            lines[sku] = (name, cents, lines.get(sku, (name, cents, 0))[2] + int(quantity))
        else:
            name, cents, held = lines[sku]
            left = held - int(rest[0]) if rest[0] else 0
            if left:
                lines[sku] = (name, cents, left)
            else:
                del lines[sku]
    return [[sku, n, str(q), money(c), money(c * q)] for sku, (n, c, q) in lines.items()]


async def perform(browser: PageClient, order_id: str, version: int, step: tuple[str, ...]) -> None:
    if step[0] == "add":
        response = await browser.add_item(order_id, *step[1:], expected_version=str(version))
    else:
        form = {"quantity": step[2], "expected_version": str(version)}
        response = await browser.post(f"/orders/{order_id}/items/{step[1]}/remove", form, htmx=True)
    assert response.status_code == 200, response.text


def total_of(page: Page) -> str:
    found = re.search(r'<dd class="total">([^<]*)</dd>', page.html)
    assert found is not None
    return found.group(1)


def assert_shows_version(page: Page, order_id: str, version: int, latest: int, steps: int) -> None:
    rows = expected_lines(STEPS[:steps])
    assert page.lines == rows
    assert total_of(page) == f"{money(sum(int(Decimal(r[4].replace(',', '')) * 100) for r in rows))} EUR"
    assert page.current_steps == [f"event-{version}"]
    assert f"Version <strong>{version}</strong> of {latest}" in page.html
    assert ("Back to now" in page.html) is (version < latest)
    editable = version == latest and latest <= 1 + len(STEPS)
    for action in ("items", "place", "cancel"):
        assert (f"/orders/{order_id}/{action}" in page.forms) is editable, (version, action)


async def test_every_version_shows_the_fold_up_to_it(browser: PageClient) -> None:
    order_id = await browser.create_order()
    for version, step in enumerate(STEPS, start=1):
        await perform(browser, order_id, version, step)
    latest = 1 + len(STEPS)
    for version in range(1, latest + 1):
        page = Page(await browser.get(f"/orders/{order_id}/history?version={version}"))
        assert page.status == 200
        assert page.is_full_page
        assert page.inputs["version-slider"]["value"] == str(version)
        assert page.inputs["version-slider"]["max"] == str(latest)
        assert page.inputs["version-slider"]["min"] == "1"
        assert_shows_version(page, order_id, version, latest, version - 1)
        partial = Page(await browser.get(f"/orders/{order_id}/history?version={version}", htmx=True))
        assert "<html" not in partial.html
        assert_shows_version(partial, order_id, version, latest, version - 1)


async def test_past_versions_of_a_placed_then_cancelled_order(browser: PageClient) -> None:
    order_id = await browser.create_order()
    for version, step in enumerate(STEPS, start=1):
        await perform(browser, order_id, version, step)
    await browser.post(f"/orders/{order_id}/place", {"expected_version": "10"}, htmx=True)
    await browser.post(
        f"/orders/{order_id}/cancel", {"reason": "Too dear", "expected_version": "11"}, htmx=True
    )
    for version, status in [(10, "draft"), (11, "placed"), (12, "cancelled")]:
        page = Page(await browser.get(f"/orders/{order_id}/history?version={version}"))
        assert f'<span class="badge {status}">{status}</span>' in page.html
        assert page.inputs["version-slider"]["max"] == "12"
        assert_shows_version(page, order_id, version, 12, len(STEPS))
    now = Page(await browser.get(f"/orders/{order_id}"))
    assert now.inputs["version-slider"]["value"] == "12"
    assert "Cancelled: Too dear" in now.html
    assert list(now.forms) == ["/logout"]  # no command left to send: only the header's sign-out


OFFSETS = [timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)), UTC]


async def test_history_at_a_moment_in_any_time_zone(browser: PageClient, ledger: Ledger) -> None:
    order_id = await browser.draft_with_items(
        ("TEA-1", "Green tea", "3.50", "2"), ("CUP-1", "Cup", "1.00", "1")
    )
    rows = await ledger.pool.fetch("SELECT version, recorded_at FROM events WHERE stream_id = $1", order_id)
    for version, recorded_at in rows:
        naive = recorded_at.astimezone(UTC).replace(tzinfo=None).isoformat()
        moments = [quote(recorded_at.astimezone(zone).isoformat()) for zone in OFFSETS]
        moments += [quote(naive), quote(naive + "Z"), quote(naive.replace("T", " "))]
        # As typed into an address bar: the "+" of the offset is not encoded and arrives as a space.
        moments.append(recorded_at.astimezone(timezone(timedelta(hours=1))).isoformat())
        for moment in moments:
            page = Page(await browser.get(f"/orders/{order_id}/history?at={moment}"))
            assert page.status == 200, moment
            assert page.inputs["version-slider"]["value"] == str(version), moment


BAD_HISTORY = [
    ("version=0", 400, "There is no version 0: versions start at 1."),
    ("version=-1", 400, "There is no version -1: versions start at 1."),
    ("version=abc", 400, "“abc” is not a version: versions are whole numbers from 1."),
    ("version=1.5", 400, "“1.5” is not a version"),
    ("version=", 400, "“” is not a version"),
    ("version=3", 404, "has 2 versions; there is no version 3."),
    ("version=999999999", 404, "has 2 versions; there is no version 999999999."),
    ("at=yesterday", 400, "“yesterday” is not a moment: use ISO 8601"),
    ("at=2000-01-01T00:00:00Z", 404, "did not exist yet at 2000-01-01T00:00:00+00:00"),
    ("", 400, "Say which version to show: ?version=N or ?at=an ISO 8601 moment."),
]


async def test_history_of_a_version_that_is_not_there(browser: PageClient) -> None:
    order_id = await browser.draft_with_items(("TEA-1", "Green tea", "3.50", "2"))
    for query, status, message in BAD_HISTORY:
        for htmx in (False, True):
            response = await browser.get(f"/orders/{order_id}/history?{query}", htmx=htmx)
            page = Page(response)
            assert response.status_code == status, query
            assert message in page.html, query
            assert page.is_full_page is not htmx, query
