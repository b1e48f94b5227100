"""Two app instances on one database: one leads each subscription; the other takes over."""

from __future__ import annotations

import asyncio
import subprocess

import asyncpg
import httpx

from tests.support.accounts import session_for
from tests.support.customers import register_with
from web.access import SESSION_COOKIE


async def create_and_add(client: httpx.AsyncClient, customer: str) -> None:
    await client.get("/orders")
    token = client.cookies["csrftoken"]
    created = await client.post(
        "/orders", data={"customer_id": customer, "currency": "EUR"}, headers={"x-csrftoken": token}
    )
    assert created.status_code == 303
    assert created.headers["location"].startswith("/orders/")
    added = await client.post(
        f"{created.headers['location']}/items",
        headers={"x-csrftoken": token},
        data={"sku": "S-1", "name": "Thing", "unit_price": "2.50", "quantity": "2"},
    )
    assert added.status_code == 303


async def settled(pool: asyncpg.Pool, timeout: float = 10.0) -> str:
    """Wait until the customer summaries have applied every event; return the leader."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        row = await pool.fetchrow(
            "SELECT events_applied, leader, (SELECT count(*) FROM events) AS total "
            "FROM subscriptions WHERE name = 'customer_summaries'"
        )
        if row is not None and row["events_applied"] == row["total"]:
            return str(row["leader"])
        assert asyncio.get_running_loop().time() < deadline, f"not caught up: {row}"
        await asyncio.sleep(0.1)


async def test_the_subscription_runs_once_and_moves_when_its_leader_stops(
    servers: list[tuple[str, subprocess.Popen[bytes]]], pool: asyncpg.Pool
) -> None:
    clerk = {SESSION_COOKIE: await session_for(pool, "till", "clerk")}
    await register_with(pool, "customer-0", "customer-1")
    for n, (url, _) in enumerate(servers * 3):
        async with httpx.AsyncClient(base_url=url, cookies=clerk) as client:
            await create_and_add(client, f"customer-{n % 2}")
    leader = await settled(pool)
    pids = {process.pid: (url, process) for url, process in servers}
    leader_pid = int(leader.rsplit(":", 1)[1])
    assert leader_pid in pids
    summaries = await pool.fetch(
        "SELECT customer_id, draft, placed_value::text FROM customer_summaries ORDER BY 1"
    )
    assert [(r[0], r[1]) for r in summaries] == [("customer-0", 3), ("customer-1", 3)]

    pids[leader_pid][1].terminate()
    pids[leader_pid][1].wait(10)
    ((survivor_url, survivor),) = [v for pid, v in pids.items() if pid != leader_pid]
    async with httpx.AsyncClient(base_url=survivor_url, cookies=clerk) as client:
        await create_and_add(client, "customer-0")
    started = asyncio.get_running_loop().time()
    new_leader = await settled(pool, timeout=8)
    assert new_leader.endswith(f":{survivor.pid}")
    assert asyncio.get_running_loop().time() - started < 5
    draft = await pool.fetchval("SELECT draft FROM customer_summaries WHERE customer_id = 'customer-0'")
    assert draft == 4
