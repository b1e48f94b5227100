"""The app in process, on its own database, with a client that behaves like a browser."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from web.app import create_app
from web.settings import Settings


class Browser:
    """An AsyncTestClient that carries the CSRF cookie and header as a page would."""

    def __init__(self, client: AsyncTestClient[Any]) -> None:
        self.client = client
        self.token = ""

    async def get(
        self, url: str, *, htmx: bool = False, target: str | None = None, follow_redirects: bool = True
    ) -> httpx.Response:
        headers = {"HX-Request": "true"} if htmx else {}
        if target:
            headers["HX-Target"] = target
        response = await self.client.get(url, headers=headers, follow_redirects=follow_redirects)
        self.token = self.client.cookies.get("csrftoken", self.token) or self.token
        return response

    async def post(
        self, url: str, data: dict[str, str] | None = None, *, htmx: bool = False
    ) -> httpx.Response:
        """Post a form with the CSRF header, as htmx does (or as a plain form field when not htmx)."""
        if not self.token:
            await self.get("/orders")
        form = dict(data or {})
        headers = {}
        if htmx:
            headers = {"HX-Request": "true", "x-csrftoken": self.token}
        else:
            form["_csrf_token"] = self.token
        return await self.client.post(url, data=form, headers=headers, follow_redirects=False)

    async def create_order(self, customer_id: str = "alice", currency: str = "EUR") -> str:
        response = await self.post("/orders", {"customer_id": customer_id, "currency": currency})
        assert response.status_code == 303, response.text
        return response.headers["location"].rsplit("/", 1)[1]

    async def add_item(
        self,
        order_id: str,
        sku: str = "TEA-1",
        name: str = "Green tea",
        unit_price: str = "3.50",
        quantity: str = "1",
        *,
        htmx: bool = True,
        expected_version: str | None = None,
        command_id: str | None = None,
    ) -> httpx.Response:
        """Post the add-item form, with the envelope fields that are given."""
        form = {"sku": sku, "name": name, "unit_price": unit_price, "quantity": quantity}
        envelope = {"expected_version": expected_version, "command_id": command_id}
        form.update({field: value for field, value in envelope.items() if value is not None})
        return await self.post(f"/orders/{order_id}/items", form, htmx=htmx)

    async def draft_with_items(self, *items: tuple[str, str, str, str], customer_id: str = "alice") -> str:
        """A new draft order holding `items` (sku, name, unit price, quantity), one event each."""
        order_id = await self.create_order(customer_id)
        for sku, name, price, quantity in items:
            response = await self.add_item(order_id, sku, name, price, quantity)
            assert response.status_code == 200, response.text
        return order_id


class Ledger:
    """The database as a reader of the log sees it: the events and the order's read-model row."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def event_count(self) -> int:
        count: int = await self.pool.fetchval("SELECT count(*) FROM events")
        return count

    async def events(self, order_id: str) -> list[tuple[str, dict[str, Any]]]:
        rows = await self.pool.fetch(
            "SELECT type, data::text FROM events WHERE stream_id = $1 ORDER BY version", order_id
        )
        return [(row["type"], json.loads(row["data"])) for row in rows]

    async def row(self, order_id: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow("SELECT * FROM order_read_model WHERE order_id = $1", order_id)
        return None if row is None else dict(row)

    @asynccontextmanager
    async def unchanged(self, order_id: str | None = None) -> AsyncIterator[None]:
        """Assert that the block writes no event and leaves the order's read-model row as it was."""
        before = (await self.event_count(), order_id and await self.row(order_id))
        yield
        after = (await self.event_count(), order_id and await self.row(order_id))
        assert after == before, "the request wrote to the database"


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    # The pages read the inline read model only; the catch-up runners are left off, which also
    # keeps a runner that ignores its cancel (see test_app_lifecycle) from hanging the teardown.
    app = create_app(
        Settings(database_url=database_url, csrf_secret="test-secret", pool_size=4, subscriptions=False)
    )
    async with AsyncTestClient(app=app) as client:
        yield client


@pytest.fixture
def browser(client: AsyncTestClient[Any]) -> Browser:
    return Browser(client)


@pytest.fixture
def ledger(pool: asyncpg.Pool) -> Ledger:
    return Ledger(pool)
