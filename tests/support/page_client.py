"""The app in process, asked as a browser asks: the CSRF cookie and header, forms, htmx fragments."""

from __future__ import annotations

from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support.customers import register_in


class PageClient:
    """An AsyncTestClient that carries the CSRF cookie and header as a page would."""

    def __init__(self, client: AsyncTestClient[Any]) -> None:
        self.client = client
        self.token = ""

    @property
    def app(self) -> Litestar:
        app: Litestar = self.client.app
        return app

    async def get(
        self, url: str, *, htmx: bool = False, target: str | None = None, follow_redirects: bool = True
    ) -> httpx.Response:
        """Get a page, or with htmx (which naming a target implies) the fragment it asks for."""
        headers = {"HX-Request": "true"} if htmx or target else {}
        if target:
            headers["HX-Target"] = target
        response = await self.client.get(url, headers=headers, follow_redirects=follow_redirects)
        self.token = self.client.cookies.get("csrftoken", self.token) or self.token
        return response

    async def csrf(self) -> dict[str, str]:
        """The CSRF header a page's script sends, fetching the cookie first if need be."""
        if not self.token:
            await self.get("/orders")
            assert self.token, "the app set no csrftoken cookie"
        return {"x-csrftoken": self.token}

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

    def register(self, *customer_ids: str) -> None:
        """Register these customers (unless they are) through the app's own application layer."""
        register_in(self.client, *customer_ids)

    async def create_order(self, customer_id: str = "alice", currency: str = "EUR") -> str:
        """A new draft through the create form, for `customer_id` (registered first if need be)."""
        self.register(customer_id)
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

    async def draft(self, customer_id: str = "mallory") -> str:
        """A new draft order holding one line, TEA-1."""
        order_id = await self.create_order(customer_id)
        added = await self.add_item(order_id, quantity="2", htmx=False)
        assert added.status_code == 303, added.text
        return order_id

    async def placed(self) -> str:
        order_id = await self.draft()
        assert (await self.post(f"/orders/{order_id}/place")).status_code == 303
        return order_id

    async def cancelled(self) -> str:
        order_id = await self.draft()
        assert (await self.post(f"/orders/{order_id}/cancel", {"reason": "Test"})).status_code == 303
        return order_id
