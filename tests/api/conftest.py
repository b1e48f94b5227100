"""The app in process on its own database, driven as a program drives the JSON API: no cookies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient

from store.database import connect_pool
from tests.databases import fresh_database
from web.app import create_app
from web.settings import Settings

PROBLEM_JSON = "application/problem+json"


def price(amount: str, currency: str = "EUR") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


class Api:
    """A JSON client of /api with the calls the tests repeat."""

    def __init__(self, client: AsyncTestClient[Any]) -> None:
        self.client = client

    async def create_order(self, customer_id: str = "alice", currency: str = "EUR") -> str:
        response = await self.client.post(
            "/api/orders", json={"customer_id": customer_id, "currency": currency}
        )
        assert response.status_code == 201, response.text
        order_id: str = response.json()["order"]["order_id"]
        return order_id

    async def add_item(
        self,
        order_id: str,
        sku: str = "TEA-1",
        name: str = "Green tea",
        amount: str = "3.50",
        quantity: int = 1,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> httpx.Response:
        body = {"sku": sku, "name": name, "unit_price": price(amount), "quantity": quantity, **extra}
        return await self.client.post(f"/api/orders/{order_id}/items", json=body, headers=headers)

    async def draft_with_items(self, *items: tuple[str, str, str, int]) -> str:
        """A new EUR draft holding `items` (sku, name, amount, quantity), one event each."""
        order_id = await self.create_order()
        for sku, name, amount, quantity in items:
            response = await self.add_item(order_id, sku, name, amount, quantity)
            assert response.status_code == 200, response.text
        return order_id

    async def placed_order(self) -> str:
        order_id = await self.draft_with_items(("TEA-1", "Green tea", "3.50", 2))
        response = await self.client.post(f"/api/orders/{order_id}/place")
        assert response.status_code == 200, response.text
        return order_id


class Ledger:
    """What a reader of the database sees: events, handled commands, keys and read-model rows."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def counts(self) -> tuple[int, int]:
        row = await self.pool.fetchrow(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM commands)"
        )
        assert row is not None
        return row[0], row[1]

    async def event_types(self, order_id: str) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT type FROM events WHERE stream_id = $1 ORDER BY version", order_id
        )
        return [row["type"] for row in rows]

    async def read_model_row(self, order_id: str | None) -> dict[str, Any] | None:
        if order_id is None:
            return None
        row = await self.pool.fetchrow("SELECT * FROM order_read_model WHERE order_id = $1", order_id)
        return None if row is None else dict(row)

    @asynccontextmanager
    async def unchanged(self, order_id: str | None = None) -> AsyncIterator[None]:
        """Assert that the block writes no event and leaves the order's read-model row as it was."""
        before = (await self.counts(), await self.read_model_row(order_id))
        yield
        after = (await self.counts(), await self.read_model_row(order_id))
        assert after == before, "the request wrote to the database"


def assert_problem(
    response: httpx.Response, status: int, detail: str, field: str | None = None
) -> dict[str, Any]:
    """A problem-details answer with `status` whose detail (and field, if named) says `detail`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "set-cookie" not in response.headers
    problem: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= problem.keys()
    assert problem["status"] == status
    assert detail in problem["detail"], problem
    if field is not None:
        messages = {error["field"]: error["message"] for error in problem["errors"]}
        assert field in messages, problem
        assert detail in messages[field]
    return problem


@asynccontextmanager
async def running_app(database_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(Settings(database_url=database_url, csrf_secret="test-secret", pool_size=4))
    async with AsyncTestClient(app=app) as client:
        yield client


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    async with running_app(database_url) as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_database_url(server_url: str, template_database: str) -> AsyncIterator[str]:
    """One database for a whole module, for tests that each make their own orders and only read deltas."""
    async with fresh_database(server_url, "orders_api", template_database) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_api(module_database_url: str) -> AsyncIterator[Api]:
    async with running_app(module_database_url) as client:
        yield Api(client)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_ledger(module_database_url: str) -> AsyncIterator[Ledger]:
    pool = await connect_pool(module_database_url, min_size=1, max_size=2)
    yield Ledger(pool)
    await pool.close()


@pytest.fixture
def api(client: AsyncTestClient[Any]) -> Api:
    return Api(client)


@pytest.fixture
def ledger(pool: asyncpg.Pool) -> Ledger:
    return Ledger(pool)
