"""The horizon held, as an operator sees it: `uv run --group bench python -m bench.horizon [--quick]`.

Serves the app with uvicorn (its subscriptions running) on a fresh embedded
PostgreSQL, then opens a transaction on a connection of its own (`BEGIN;
SELECT txid_current()`, as an operator's psql would) and keeps it open while
commands are written at a steady rate for a few seconds. It prints what
`/healthz?detail` shows then (the horizon's lag in events and seconds, who
holds it, each subscription's lag), ends the transaction, and prints how long
each subscription took to reach the head of the log: its checkpoint with no
committed event after it, polled every few milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx

from domain.access import system_actor
from domain.order import AddItem, Command, CreateOrder
from store.application import Envelope, Orders
from store.database import connect_pool, embedded_postgres
from store.migrations import migrate
from store.personal import MasterKey
from store.seed import seed
from tests.support.accounts import session_at
from tests.support.customers import SERVER_SECRET
from tests.support.servers import uvicorn_process
from web.access import SESSION_COOKIE

HOLDER = "bench: an operator's psql"
CATCH_UP_LIMIT = 120.0  # seconds: a subscription not at the head by then is reported as such

# Per subscription: is its checkpoint at the head (no committed event after it)?
_AT_HEAD = """
SELECT s.name, NOT EXISTS (SELECT FROM events e WHERE (e.tx_id, e.position) > (s.tx_id, s.position))
FROM subscriptions s ORDER BY s.name
"""


async def _quiet(done: int, total: int) -> None:
    pass


async def at_head(pool: asyncpg.Pool) -> dict[str, bool]:
    return {name: caught_up for name, caught_up in await pool.fetch(_AT_HEAD)}


async def wait_at_head(pool: asyncpg.Pool, limit: float) -> dict[str, float | None]:
    """Seconds until each subscription's checkpoint reached the head (None: not within `limit`)."""
    started = time.monotonic()
    reached: dict[str, float | None] = {}
    while time.monotonic() - started < limit:
        now = await at_head(pool)
        for name, caught_up in now.items():
            if caught_up and name not in reached:
                reached[name] = time.monotonic() - started
        if now and len(reached) == len(now):
            return reached
        await asyncio.sleep(0.005)
    return {name: reached.get(name) for name in await at_head(pool)}


async def write_steadily(orders: Orders, rate: float, seconds: float) -> int:
    """One command every 1/`rate` s for `seconds` (an order created, then four items added, again);
    the commands written."""
    commands = int(rate * seconds)
    started = time.monotonic()
    order_id = ""
    for n in range(commands):
        command: Command
        if n % 5 == 0:
            order_id = str(uuid4())
            command = CreateOrder(order_id, f"customer-{n % 3:03d}", "EUR")
        else:
            command = AddItem(order_id, f"TEA-{n % 5}", "Tea", 450, 1)
        await orders.execute(command, Envelope(uuid4()))
        await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.monotonic()))
    return commands


async def detail(base: str, session: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, cookies={SESSION_COOKIE: session}, timeout=30) as http:
        response = await http.get("/healthz?detail")
        response.raise_for_status()
        shown: dict[str, Any] = response.json()
        return shown


async def held_horizon(base: str, url: str, session: str, rate: float, seconds: float) -> None:
    pool = await connect_pool(url, min_size=1, max_size=4)
    try:
        orders = Orders(pool, master=MasterKey.from_secret(SERVER_SECRET)).acting_as(system_actor("bench"))
        start = await wait_at_head(pool, CATCH_UP_LIMIT)
        print(f"subscriptions at the head before: {', '.join(sorted(start))}", flush=True)
        head_before = await pool.fetchval("SELECT coalesce(max(position), 0) FROM events")
        holder = await asyncpg.connect(url, server_settings={"application_name": HOLDER})
        try:
            transaction = holder.transaction()
            await transaction.start()
            xid = await holder.fetchval("SELECT txid_current()")
            print(
                f"held: a transaction open on another connection (txid {xid}, pid {holder.get_server_pid()})"
            )
            commands = await write_steadily(orders, rate, seconds)
            written = await pool.fetchval("SELECT max(position) FROM events") - head_before
            print(f"written while held: {commands} commands, {written} events in {seconds:g} s", flush=True)
            shown = await detail(base, session)
            report_held(shown)
            ended = time.monotonic()
            await transaction.rollback()
        finally:
            await holder.close()
        reached = await wait_at_head(pool, CATCH_UP_LIMIT)
        print(
            "\nended the transaction; each subscription's checkpoint at the head after (polled every 5 ms):"
        )
        for name, after in sorted(reached.items()):
            took = f"not within {CATCH_UP_LIMIT:g} s" if after is None else f"{after:.3f} s"
            print(f"  {name:<24} {took}")
        report_after(await detail(base, session), time.monotonic() - ended)
    finally:
        await pool.close()


def report_held(shown: dict[str, Any]) -> None:
    horizon, who = shown["horizon"], shown["horizon"]["holder"] or {}
    print(
        f"\n/healthz?detail while held: status {shown['status']}\n"
        f"  horizon lag: {horizon['lag_events']} events, {horizon['lag_seconds']:.2f} s "
        f"(warning after {horizon['warning_after']:g} s; held: {horizon['held']})\n"
        f"  held by: {who.get('application_name')!r}, pid {who.get('pid')}, {who.get('state')}, "
        f"open {who.get('open_seconds', 0):.2f} s, from {who.get('client')}, query {who.get('query')!r}"
    )
    for model in shown["read_models"]:
        print(
            f"  {model['name']:<24} kept by {model['kept_by']:<12} lag {model['lag_events']:>5} events, "
            f"{model['lag_seconds']:7.2f} s  ({model['runner']})"
        )


def report_after(shown: dict[str, Any], seconds: float) -> None:
    horizon = shown["horizon"]
    print(
        f"/healthz?detail {seconds:.2f} s after the end: status {shown['status']}, horizon lag "
        f"{horizon['lag_events']} events; read models' lag: "
        + ", ".join(f"{m['name']} {m['lag_events']}" for m in shown["read_models"])
    )


async def prepare(url: str) -> str:
    """Migrate, seed a few orders (and the customers the writes order for); an admin's session."""
    pool = await connect_pool(url, min_size=1, max_size=4)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        await seed(Orders(pool, master=MasterKey.from_secret(SERVER_SECRET)), 12, _quiet)
    finally:
        await pool.close()
    return await session_at(url, "bench", "admin")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.horizon", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 s of writes")
    parser.add_argument("--seconds", type=float, help="seconds of writes while held (default 10; quick 2)")
    parser.add_argument("--rate", type=float, default=50.0, help="commands per second (default 50)")
    parser.add_argument(
        "--warning", type=float, help="ORDERS_HORIZON_WARNING_SECONDS (default: half the run)"
    )
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 10.0)
    warning = args.warning if args.warning is not None else seconds / 2
    print(
        f"bench.horizon: {args.rate:g} commands/s for {seconds:g} s with the horizon held, "
        f"load average {os.getloadavg()}, {os.cpu_count()} cores",
        flush=True,
    )
    with (
        tempfile.TemporaryDirectory(prefix="orders-bench-horizon-") as folder,
        embedded_postgres(Path(folder) / "pg", delete=True) as url,
    ):
        session = asyncio.run(prepare(url))
        with uvicorn_process(url, env={"ORDERS_HORIZON_WARNING_SECONDS": str(warning)}) as (base, _):
            asyncio.run(held_horizon(base, url, session, args.rate, seconds))
    print(f"bench.horizon: load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
