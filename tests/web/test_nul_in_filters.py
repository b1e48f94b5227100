"""A NUL byte in a filter (PostgreSQL text cannot hold one) finds nothing instead of failing."""

from __future__ import annotations

from tests.web.conftest import Browser


async def test_a_nul_in_a_filter_lists_nothing(browser: Browser) -> None:
    await browser.create_order("alice", "EUR")
    for url in ("/orders?customer=%00alice", "/events?customer=%00", "/api/orders?customer=%00alice"):
        response = await browser.get(url)
        assert response.status_code == 200, url
        assert "alice" not in response.text.replace("%00alice", ""), url
