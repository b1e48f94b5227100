"""Fifty people writing to one order at once, for ten seconds, through the HTTP app."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from uuid import uuid4

import asyncpg
import httpx

from domain.order import fold
from store.log.event_store import EventStore
from tests.support.forms import problem, seen_version

WRITERS = 50
SECONDS = 10.0


async def test_fifty_writers_on_one_order_for_ten_seconds(
    http: httpx.AsyncClient, shared_pool: asyncpg.Pool
) -> None:
    pool, store = shared_pool, EventStore(shared_pool)
    create_id = str(uuid4())
    created = await http.post(
        "/orders", data={"customer_id": "crowd", "currency": "EUR", "command_id": create_id}
    )
    assert created.status_code == 303
    order = created.headers["location"]
    order_id = order.rsplit("/", 1)[1]
    acknowledged: list[str] = []
    answers: Counter[str] = Counter()
    refusals: list[tuple[int, str | None]] = []
    quantities: dict[str, int] = {}
    stop = asyncio.get_running_loop().time() + SECONDS

    async def writer(n: int) -> None:
        """Adds and removes its own SKU. Even writers post the form of the page they last saw
        (with its expected_version); odd ones post without one, as a script might."""
        sku, with_version = f"W-{n:02d}", n % 2 == 0
        quantities[sku] = 0
        version = seen_version((await http.get(order, headers={"HX-Request": "true"})).text)
        while asyncio.get_running_loop().time() < stop:
            command_id = str(uuid4())
            form = {"command_id": command_id}
            if with_version:
                form["expected_version"] = str(version)
            if quantities[sku] < 3:
                path, change = f"{order}/items", 1
                form |= {"sku": sku, "name": f"Thing {n}", "unit_price": f"{n + 1}.25", "quantity": "1"}
            else:
                path, change = f"{order}/items/{sku}/remove", -1
                form |= {"quantity": "1"}
            headers = {"HX-Request": "true"} if with_version else {}
            response = await http.post(path, data=form, headers=headers)
            kind = "form" if with_version else "script"
            if response.status_code in (200, 303):
                acknowledged.append(command_id)
                quantities[sku] += change
                answers[f"{kind}: acknowledged"] += 1
            else:
                refusals.append((response.status_code, problem(response.text)))
                answers[f"{kind}: {response.status_code}"] += 1
            if with_version:
                version = seen_version(response.text)

    await asyncio.gather(*(writer(n) for n in range(WRITERS)))

    assert acknowledged, "no command was acknowledged"
    assert not [status for status, _ in refusals if status >= 500], "a server error"
    for status, message in refusals:
        assert status == 409, (status, message)
        assert message is not None
        assert message.startswith("This order changed while you were looking at it")

    rows = await pool.fetch(
        "SELECT version, metadata->>'command_id' AS command_id FROM events "
        "WHERE stream_id = $1 ORDER BY version",
        order_id,
    )
    assert [r["version"] for r in rows] == list(range(1, len(rows) + 1)), "versions have a hole"
    logged = Counter(r["command_id"] for r in rows)
    assert set(logged.values()) == {1}, "a command is in the log twice"
    assert set(logged) == {create_id, *acknowledged}, "an acknowledged command is missing, or one was not"

    # The final state is the fold of the log, and so is what the app shows.
    state = fold(e.event for e in await store.read_stream(order_id))
    assert {line.sku: line.quantity for line in state.lines} == {s: q for s, q in quantities.items() if q}
    row = await pool.fetchrow("SELECT * FROM order_read_model WHERE order_id = $1", order_id)
    assert row is not None
    assert (row["version"], row["item_count"], row["line_count"], row["total_cents"]) == (
        state.version,
        state.item_count,
        len(state.lines),
        state.total_cents,
    )
    page = await http.get(order, headers={"HX-Request": "true"})
    assert seen_version(page.text) == state.version
    print(json.dumps({"acknowledged": len(acknowledged), "events": len(rows), **answers}))
