"""A thousand double submits: the same command id sent twice at once, through the HTTP app."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from uuid import uuid4

import asyncpg
import httpx

from tests.support.customers import register_with
from tests.support.forms import problem, seen_version, without_fresh_ids

ORDERS = 100
AT_ONCE = 20  # orders worked on at the same time


def steps(order: str) -> list[tuple[str, dict[str, str], bool]]:
    """The nine commands after CreateOrder, as (path, form, sent by htmx).

    An htmx answer is the order as it now is, so twins must show the same page;
    a plain form's answer is a redirect, so twins must redirect alike.
    """
    adds = [("TEA-1", "3.50", True), ("CUP-1", "12.00", False), ("TEA-1", "3.50", True)]
    adds += [("POT-1", "30.25", False), ("MAT-1", "4.00", False), ("SPN-1", "1.10", False)]
    forms = [
        (f"{order}/items", {"sku": sku, "name": f"Item {sku}", "unit_price": price, "quantity": "2"}, htmx)
        for sku, price, htmx in adds
    ]
    forms.append((f"{order}/items/TEA-1/remove", {"quantity": "1"}, True))
    forms.append((f"{order}/place", {}, False))
    forms.append((f"{order}/cancel", {"reason": "Double-clicked it"}, False))
    return forms


async def test_a_thousand_double_submits_write_once_and_answer_alike(
    http: httpx.AsyncClient, shared_pool: asyncpg.Pool
) -> None:
    outcomes: Counter[str] = Counter()
    await register_with(shared_pool, *(f"clicker-{n}" for n in range(9)))

    async def twice(path: str, form: dict[str, str], htmx: bool) -> tuple[httpx.Response, httpx.Response]:
        headers = {"HX-Request": "true"} if htmx else {}
        first, second = await asyncio.gather(
            http.post(path, data=form, headers=headers), http.post(path, data=form, headers=headers)
        )
        outcomes["pairs"] += 1
        assert first.status_code == second.status_code, (path, first.status_code, second.status_code)
        assert first.status_code in (200, 303), (path, first.status_code, problem(first.text))
        if htmx:
            assert problem(first.text) is None
            assert problem(second.text) is None
            assert without_fresh_ids(first.text) == without_fresh_ids(second.text), path
        else:
            assert first.headers["location"] == second.headers["location"], path
        outcomes[f"both {first.status_code}"] += 1
        return first, second

    async def one_order(command_ids: list[str]) -> None:
        create = {
            "customer_id": f"clicker-{len(command_ids) % 9}",
            "currency": "EUR",
            "command_id": str(uuid4()),
        }
        first, _ = await twice("/orders", create, htmx=False)
        command_ids.append(create["command_id"])
        order, version = first.headers["location"], 1
        orders.append(order.rsplit("/", 1)[1])
        for path, form, htmx in steps(order):
            form = {**form, "command_id": str(uuid4()), "expected_version": str(version)}
            first, _ = await twice(path, form, htmx)
            command_ids.append(form["command_id"])
            version += 1
            if htmx:
                assert seen_version(first.text) == version

    queue = list(range(ORDERS))
    sent: list[list[str]] = []
    orders: list[str] = []

    async def worker() -> None:
        while queue:
            queue.pop()
            command_ids: list[str] = []
            sent.append(command_ids)
            await one_order(command_ids)

    await asyncio.gather(*(worker() for _ in range(AT_ONCE)))

    assert outcomes["pairs"] == ORDERS * 10 == 1000
    rows = await shared_pool.fetch(
        "SELECT type, metadata->>'command_id' AS command_id FROM events WHERE stream_id = ANY($1::text[])",
        orders,
    )
    assert len(rows) == ORDERS * 10, "a duplicate submit wrote twice, or one was lost"
    per_command = Counter(r["command_id"] for r in rows)
    assert set(per_command.values()) == {1}
    assert set(per_command) == {command_id for ids in sent for command_id in ids}
    kinds = Counter(r["type"] for r in rows)
    assert kinds == {
        "OrderCreated": 100,
        "ItemAdded": 600,
        "ItemRemoved": 100,
        "OrderPlaced": 100,
        "OrderCancelled": 100,
    }
    print(json.dumps(dict(outcomes)))
