"""Fifty people writing to one order at once, through the HTTP app: no update lost, none doubled.

The test does a fixed amount of work (each writer makes ROUNDS commands), not
work for a fixed time: a busy machine runs the same races, only slower. A slow
answer is waited for (no per-request timeout); the whole run has one generous
bound. An answer lost on the way (the connection reset, a worker restarted, a
503 "try again") is asked for again with the same form, so the same command
id: the protocol makes that harmless, and the log below proves it stayed so.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from uuid import uuid4

import asyncpg
import httpx

from domain.order import fold
from store.log.event_store import EventStore
from tests.support.customers import register_with
from tests.support.forms import problem, seen_version
from tests.support.waiting import eventually

WRITERS = 50
ROUNDS = 40  # commands per writer: about ten seconds on an idle 2-core machine
RUN_BOUND = 300.0  # seconds for all the writing: only a server that stopped answering takes this long
ATTEMPTS = 5  # sends of one request whose answer was lost
# Where no answer came back, so the server may or may not have handled the request.
ANSWER_LOST = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class Resender:
    """Sends a request again when its answer is lost; counts how often that happened."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.resent: Counter[str] = Counter()

    async def send(
        self, method: str, path: str, form: dict[str, str] | None = None, htmx: bool = False
    ) -> httpx.Response:
        headers = {"HX-Request": "true"} if htmx else {}
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = await self.http.request(method, path, data=form, headers=headers, timeout=None)
            except ANSWER_LOST as error:
                if attempt == ATTEMPTS:
                    raise
                self.resent[type(error).__name__] += 1
                continue
            if response.status_code != 503 or attempt == ATTEMPTS:
                return response
            # The server's own "nothing was changed, try again": once it is healthy again.
            self.resent["503"] += 1
            await eventually(self.healthy, timeout=60, interval=0.2)
        raise AssertionError("unreachable")

    async def healthy(self) -> bool:
        try:
            return (await self.http.get("/healthz", timeout=None)).status_code == 200
        except ANSWER_LOST:
            return False


async def test_fifty_writers_on_one_order_lose_and_double_nothing(
    http: httpx.AsyncClient, shared_pool: asyncpg.Pool
) -> None:
    pool, store, client = shared_pool, EventStore(shared_pool), Resender(http)
    await register_with(pool, "crowd")
    create_id = str(uuid4())
    form = {"customer_id": "crowd", "currency": "EUR", "command_id": create_id}
    created = await client.send("POST", "/orders", form)
    assert created.status_code == 303
    order = created.headers["location"]
    order_id = order.rsplit("/", 1)[1]
    acknowledged: list[str] = []
    answers: Counter[str] = Counter()
    refusals: list[tuple[int, str | None]] = []
    quantities: dict[str, int] = {}

    async def writer(n: int) -> None:
        """Adds and removes its own SKU. Even writers post the form of the page they last saw
        (with its expected_version); odd ones post without one, as a script might."""
        sku, with_version = f"W-{n:02d}", n % 2 == 0
        quantities[sku] = 0
        version = seen_version((await client.send("GET", order, htmx=True)).text)
        for _ in range(ROUNDS):
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
            response = await client.send("POST", path, form, htmx=with_version)
            assert response.status_code < 500, f"a server error: {path} {response.status_code}"
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

    started = asyncio.get_running_loop().time()
    try:
        async with asyncio.timeout(RUN_BOUND), asyncio.TaskGroup() as writers:
            for n in range(WRITERS):
                writers.create_task(writer(n))
    except TimeoutError:
        raise AssertionError(f"the writers had not finished after {RUN_BOUND} s: {answers}") from None
    seconds = asyncio.get_running_loop().time() - started

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
    page = await client.send("GET", order, htmx=True)
    assert seen_version(page.text) == state.version
    figures = {"seconds": round(seconds, 1), "acknowledged": len(acknowledged), "events": len(rows)}
    resent = {f"resent after {cause}": count for cause, count in client.resent.items()}
    print(json.dumps(figures | answers | resent))
