"""The app in process, on its own database, with a client that behaves like a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from web.app import create_app


class Browser:
    """An AsyncTestClient that carries the CSRF cookie and header as a page would."""

    def __init__(self, client: AsyncTestClient[Any]) -> None:
        self.client = client
        self.token = ""

    async def get(self, url: str, *, htmx: bool = False, target: str | None = None) -> httpx.Response:
        headers = {"HX-Request": "true"} if htmx else {}
        if target:
            headers["HX-Target"] = target
        response = await self.client.get(url, headers=headers)
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


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(database_url, csrf_secret="test-secret", pool_size=4)
    async with AsyncTestClient(app=app) as client:
        yield client


@pytest.fixture
def browser(client: AsyncTestClient[Any]) -> Browser:
    return Browser(client)
