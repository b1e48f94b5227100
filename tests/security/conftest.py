"""The app in process on its own database, with the orders a hostile client would aim at."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.reliability.figures import print_figures
from web.app import create_app
from web.settings import Settings


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    print_figures(terminalreporter)


class Site:
    """A browser's view of the app (the CSRF cookie and header), and the database's view of the log."""

    def __init__(self, client: AsyncTestClient[Any], pool: asyncpg.Pool) -> None:
        self.client = client
        self.pool = pool
        self.token = ""

    @property
    def app(self) -> Litestar:
        app: Litestar = self.client.app
        return app

    async def csrf(self) -> dict[str, str]:
        if not self.token:
            await self.client.get("/orders")
            self.token = self.client.cookies["csrftoken"]
        return {"x-csrftoken": self.token}

    async def post(self, url: str, form: dict[str, str], **headers: str) -> httpx.Response:
        return await self.client.post(
            url, data=form, headers={**await self.csrf(), **headers}, follow_redirects=False
        )

    async def draft(self, customer_id: str = "mallory") -> str:
        """A new draft order holding one line, TEA-1."""
        created = await self.post("/orders", {"customer_id": customer_id, "currency": "EUR"})
        assert created.status_code == 303, created.text
        order_id = created.headers["location"].rsplit("/", 1)[1]
        item = {"sku": "TEA-1", "name": "Green tea", "unit_price": "3.50", "quantity": "2"}
        assert (await self.post(f"/orders/{order_id}/items", item)).status_code == 303
        return order_id

    async def placed(self) -> str:
        order_id = await self.draft()
        assert (await self.post(f"/orders/{order_id}/place", {})).status_code == 303
        return order_id

    async def cancelled(self) -> str:
        order_id = await self.draft()
        assert (await self.post(f"/orders/{order_id}/cancel", {"reason": "Test"})).status_code == 303
        return order_id

    async def event_count(self) -> int:
        count: int = await self.pool.fetchval("SELECT count(*) FROM events")
        return count


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(
        Settings(database_url=database_url, csrf_secret="security-test", pool_size=4, subscriptions=False)
    )
    async with AsyncTestClient(app=app) as client:
        yield client


@pytest.fixture
def site(client: AsyncTestClient[Any], pool: asyncpg.Pool) -> Site:
    return Site(client, pool)
