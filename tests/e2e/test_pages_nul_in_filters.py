"""A NUL byte in a filter (PostgreSQL text cannot hold one) finds nothing instead of failing."""

from __future__ import annotations

from tests.support.accounts import token_at
from tests.support.page_client import PageClient


async def test_a_nul_in_a_filter_lists_nothing(browser: PageClient, database_url: str) -> None:
    await browser.create_order("alice", "EUR")
    listed = await browser.get("/orders?customer=%00alice")
    assert listed.status_code == 200
    assert "No orders match these filters" in listed.text
    log = await browser.get("/events?customer=%00")
    assert log.status_code == 200
    assert "OrderCreated</td>" not in log.text
    bearer = {"Authorization": "Bearer " + await token_at(database_url, "till", "clerk")}
    api = await browser.client.get("/api/orders?customer=%00alice", headers=bearer)
    assert api.status_code == 200
    assert "alice" not in api.text
