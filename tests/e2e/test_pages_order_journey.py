"""The journey of the issue, through the HTTP app: create, add three, remove one, place."""

from __future__ import annotations

from typing import Any


async def test_create_add_remove_place(browser: Any) -> None:
    order_id = await browser.create_order("alice", "EUR")
    for version, (sku, name, price, quantity) in enumerate(
        [
            ("TEA-1", "Green tea", "3.50", "2"),
            ("CUP-1", "Cup", "12.00", "1"),
            ("POT-1", "Teapot", "30.25", "1"),
        ],
        start=1,
    ):
        response = await browser.post(
            f"/orders/{order_id}/items",
            {
                "sku": sku,
                "name": name,
                "unit_price": price,
                "quantity": quantity,
                "expected_version": str(version),
            },
            htmx=True,
        )
        assert response.status_code == 200, response.text
    assert "49.25 EUR" in response.text
    response = await browser.post(
        f"/orders/{order_id}/items/CUP-1/remove", {"expected_version": "4"}, htmx=True
    )
    assert response.status_code == 200
    assert "37.25 EUR" in response.text
    response = await browser.post(f"/orders/{order_id}/place", {"expected_version": "5"}, htmx=True)
    assert response.status_code == 200
    assert "badge placed" in response.text
    page = await browser.get(f"/orders/{order_id}")
    assert page.text.count('<li class="event') == 6
