"""The JSON API as a program drives it: no cookies, problem details for every refusal."""

from __future__ import annotations

from typing import Any

import httpx
from litestar.testing import AsyncTestClient

from tests.support.customers import register_in

PROBLEM_JSON = "application/problem+json"


def price(amount: str, currency: str = "EUR") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


class Api:
    """A JSON client of /api with the calls the tests repeat."""

    def __init__(self, client: AsyncTestClient[Any]) -> None:
        self.client = client

    async def create_order(self, customer_id: str = "alice", currency: str = "EUR") -> str:
        """A new draft for `customer_id`, registered first if need be."""
        self.register(customer_id)
        response = await self.client.post(
            "/api/orders", json={"customer_id": customer_id, "currency": currency}
        )
        assert response.status_code == 201, response.text
        order_id: str = response.json()["order"]["order_id"]
        return order_id

    def register(self, *customer_ids: str) -> None:
        """Register these customers (unless they are) through the app's own application layer."""
        register_in(self.client, *customer_ids)

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
