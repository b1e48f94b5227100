"""JSON log lines: one command followed from its HTTP request to its events and the message it caused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from store.personal import MasterKey
from tests.support.accounts import session_at
from tests.support.customers import register_at
from tests.support.servers import ROOT, free_port, wait_until_up
from tests.support.waiting import eventually
from web.access import SESSION_COOKIE


@pytest.fixture
def json_server(database_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """uvicorn serving the app with ORDERS_LOG_FORMAT=json, its stderr in a file; its URL and that file."""
    port, log = free_port(), tmp_path / "stderr.log"
    env = {**os.environ, "DATABASE_URL": database_url, "ORDERS_SECRET": "s", "ORDERS_LOG_FORMAT": "json"}
    command = [sys.executable, "-m", "uvicorn", "web.cli:app_factory", "--factory", "--port", str(port)]
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=stderr)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url, process)
            yield url, log
        finally:
            process.terminate()
            process.wait(15)


def json_lines(log: Path) -> list[dict[str, Any]]:
    """Every line written to stderr (uvicorn's own too), each parsed as one JSON object."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


async def test_a_command_is_followed_from_its_request_to_its_events_and_its_message(
    json_server: tuple[str, Path], database_url: str, pool: asyncpg.Pool
) -> None:
    url, log = json_server
    await register_at(database_url, "cust-j", master=MasterKey.from_secret("s"))  # the server's ORDERS_SECRET
    clerk = await session_at(database_url, "till", "clerk")
    async with httpx.AsyncClient(base_url=url, cookies={SESSION_COOKIE: clerk}) as client:
        await client.get("/orders")
        client.headers["x-csrftoken"] = client.cookies["csrftoken"]
        created = await client.post(
            "/orders",
            data={"customer_id": "cust-j", "currency": "EUR"},
            headers={"X-Request-ID": "trace-1.a"},
        )
        order = created.headers["location"]
        item = {"sku": "TEA-1", "name": "Tea", "unit_price": "3.50", "quantity": "1"}
        added = await client.post(f"{order}/items", data=item, headers={"X-Request-ID": "not well formed!"})
        placing = str(uuid4())
        placed = await client.post(f"{order}/place", data={}, headers={"X-Request-ID": placing})
    order_id = order.rsplit("/", 1)[1]

    # The request ids: a well-formed one is kept, another replaced; each is echoed back.
    assert created.headers["x-request-id"] == "trace-1.a"
    assert UUID(added.headers["x-request-id"])
    assert placed.headers["x-request-id"] == placing
    # The correlation id: the request id when that is a UUID, else a new one.
    assert added.headers["x-correlation-id"] == added.headers["x-request-id"]
    assert placed.headers["x-correlation-id"] == placing
    correlations = [r.headers["x-correlation-id"] for r in (created, added, placed)]
    assert len(set(correlations)) == 3
    assert UUID(correlations[0])

    # Each command's events carry its request's correlation id.
    rows = await pool.fetch(
        "SELECT type, metadata->>'correlation_id' FROM events WHERE stream_id = $1 ORDER BY version", order_id
    )
    assert [tuple(row) for row in rows] == [
        ("OrderCreated", correlations[0]),
        ("ItemAdded", correlations[1]),
        ("OrderPlaced", correlations[2]),
    ]

    # The relay's line for the message the placing caused carries the placing's correlation id.
    async def notification() -> dict[str, Any] | None:
        found = [line for line in json_lines(log) if line["logger"] == "orders.notifications"]
        return found[0] if found else None

    message = await eventually(notification)
    assert message["correlation_id"] == placing
    assert "request_id" not in message  # the relay works outside any request
    assert order_id[:8] in message["message"]

    lines = json_lines(log)
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    commands = [line for line in lines if line["logger"] == "orders.commands"]
    assert [(c["command"], c["outcome"], c["request_id"], c["correlation_id"]) for c in commands] == [
        ("CreateOrder", "accepted", "trace-1.a", correlations[0]),
        ("AddItem", "accepted", added.headers["x-request-id"], correlations[1]),
        ("PlaceOrder", "accepted", placing, placing),
    ]
    assert all(c["order_id"] == order_id and c["ms"] > 0 and c["level"] == "INFO" for c in commands)

    # uvicorn's access line for each request carries that request's ids too.
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert all(line["request_id"] and line["correlation_id"] for line in access)
    posts = [
        (a["message"].split('"')[1], a["request_id"], a["correlation_id"])
        for a in access
        if '"POST' in a["message"]
    ]
    assert posts == [
        ("POST /orders HTTP/1.1", "trace-1.a", correlations[0]),
        (f"POST {order}/items HTTP/1.1", added.headers["x-request-id"], correlations[1]),
        (f"POST {order}/place HTTP/1.1", placing, placing),
    ]
