"""Server-sent events: resumable with Last-Event-ID, and shared across app instances."""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
from uuid import uuid4

import asyncpg
import httpx

from domain.order import fold
from store.log.event_store import EventStore, Metadata
from tests.support.accounts import session_at
from tests.support.customers import register_at
from tests.support.sse import sse_events
from tests.support.subscriptions import order_events
from web.access import SESSION_COOKIE


async def test_a_client_reconnecting_100_times_with_last_event_id_gets_every_event_once(
    servers: list[tuple[str, subprocess.Popen[bytes]]],
    pool: asyncpg.Pool,
    store: EventStore,
    database_url: str,
) -> None:
    url = servers[0][0]
    writing = True

    async def writer() -> int:
        written = 0
        while writing:
            order_id = str(uuid4())
            events = order_events(order_id, "sse-client", random.randint(0, 3), place=False)
            await store.append(order_id, 0, events, uuid4(), Metadata(), fold(events))
            written += len(events)
            await asyncio.sleep(0.01)
        return written

    writes = asyncio.create_task(writer())
    received: list[int] = []
    last_id: str | None = None
    viewer = {SESSION_COOKIE: await session_at(database_url, "vera", "viewer")}  # the log is staff's to read
    async with httpx.AsyncClient(base_url=url, timeout=10, cookies=viewer) as client:
        for _reconnect in range(100):
            headers = {"Last-Event-ID": last_id} if last_id else {}
            async with client.stream("GET", "/events/live?horizon=1", headers=headers) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                wanted = random.randint(1, 5)
                async for event in sse_events(response):
                    assert event.event == "appended"
                    assert event.id is not None
                    received.append(int(event.id))
                    last_id = event.id
                    wanted -= 1
                    if wanted == 0:
                        break
        writing = False
        await writes
        total = await pool.fetchval("SELECT count(*) FROM events")
        headers = {"Last-Event-ID": last_id or ""}
        while len(received) < total:  # the rest, written after the last reconnect
            async with client.stream("GET", "/events/live?horizon=1", headers=headers) as response:
                async for event in sse_events(response):
                    received.append(int(event.id or 0))
                    if len(received) >= total:
                        break
    stored = [r[0] for r in await pool.fetch("SELECT position FROM events ORDER BY position")]
    assert len(received) == len(set(received)), "an event was delivered twice"
    assert sorted(received) == stored, "an event was missed"


async def test_an_event_written_through_one_instance_reaches_a_stream_served_by_the_other(
    servers: list[tuple[str, subprocess.Popen[bytes]]], database_url: str
) -> None:
    (first, _), (second, _) = servers
    await register_at(database_url, "two-instances")
    clerk = {SESSION_COOKIE: await session_at(database_url, "till", "clerk")}
    viewer = {SESSION_COOKIE: await session_at(database_url, "vera", "viewer")}
    async with (
        httpx.AsyncClient(base_url=first, timeout=10, cookies=clerk) as writer,
        httpx.AsyncClient(base_url=second, timeout=10, cookies=viewer) as reader,
    ):
        await writer.get("/orders")
        token = writer.cookies["csrftoken"]
        created = await writer.post(
            "/orders",
            data={"customer_id": "two-instances", "currency": "EUR"},
            headers={"x-csrftoken": token},
        )
        assert created.status_code == 303
        order_path = created.headers["location"]
        async with reader.stream("GET", f"{order_path}/live?version=1") as response:
            events = sse_events(response)
            sent = time.monotonic()
            added = await writer.post(
                f"{order_path}/items",
                headers={"x-csrftoken": token},
                data={"sku": "X-1", "name": "Across", "unit_price": "1.00", "quantity": "1"},
            )
            assert added.status_code == 303
            event = await asyncio.wait_for(events.__anext__(), 5)
            delay = time.monotonic() - sent
    assert event.event == "appended"
    assert "Version 2 is now the latest" in event.data
    assert delay < 1.0, f"took {delay:.2f}s"
