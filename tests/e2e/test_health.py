"""/healthz tells a load balancer whether the database answers; pages say so too, never a 500."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support.databases import create_database, database_name, drop_database

if TYPE_CHECKING:
    from tests.support.page_client import PageClient


async def test_health_pages_and_posts_say_503_while_the_database_is_gone(
    browser: PageClient, server_url: str, template_database: str, database_url: str
) -> None:
    name = database_name(database_url)
    order_id = await browser.draft_with_items()
    assert (await browser.get("/healthz")).status_code == 200

    await drop_database(server_url, name)
    response = await browser.get("/healthz")
    assert response.status_code == 503
    assert response.text.strip() == "database unavailable"
    assert response.headers["retry-after"] == "5"

    response = await browser.add_item(order_id, "CUP-1", "Cup", "1.00", "1")
    assert response.status_code == 503
    assert "Database unavailable" in response.text

    page = await browser.get("/orders")
    assert page.status_code == 503
    assert "The database is not answering right now. Nothing was changed" in page.text
    assert "<html" in page.text

    await create_database(server_url, name, template_database)
    response = await browser.get("/healthz")
    assert response.status_code == 200
    assert response.text.strip() == "ok"
