"""What sealing customers' personal data costs: the command rate and the order page, now and before.

    uv run --group bench python -m bench.personal_data [--before REV] [--seconds 5] [--rounds 3]

"Before" is the code at REV (default: the last commit before customers had personal data),
checked out in a git worktree of its own with an environment of its own (both made on first
use, in the temp folder); "now" is this checkout. Each serves `web.cli:app_factory` with
uvicorn on the same PostgreSQL (DATABASE_URL's server, or an embedded one), in a database of
its own, one server at a time, the two alternating round by round, under the same load
(bench/load.py of this checkout, 16 signed-in connections):

- the order workflow as form posts: create, three items, place. Now, the customer is
  registered, creating checks it, and placing copies their sealed address into the order;
- the page of a placed order of 20 lines. Now, its shipping address is opened to show it.

Prints the medians side by side and writes bench/RESULTS-personal-data.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import asyncpg
import httpx
import uvloop

from bench.http import SECRET, free_port
from bench.lab import clerk_session, with_database
from bench.runner import postgres
from domain.customer import RegisterCustomer
from store.application import Envelope, Orders
from store.personal import MasterKey

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS-personal-data.md"
BEFORE = "2687a31"  # main before issue 15: customers were ids, with no personal data
CUSTOMER = "customer-42"  # the customer bench/load.py's workflow orders for
LINES = 20
CONNECTIONS = 16


@dataclass(frozen=True)
class Side:
    name: str
    root: Path
    python: str


def before_side(rev: str) -> Side:
    """The code at `rev`, in a worktree with its own environment (made once, then reused)."""
    root = Path(tempfile.gettempdir()) / f"orders-bench-before-{rev}"
    if not root.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(root), rev], cwd=ROOT, check=True)
    python = root / ".venv" / "bin" / "python"
    if not python.exists():
        subprocess.run(["uv", "sync", "--quiet"], cwd=root, check=True)
    return Side(f"before ({rev})", root, str(python))


@asynccontextmanager
async def serving(side: Side, database_url: str) -> AsyncIterator[str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "ORDERS_SECRET": SECRET}
    for name in ("ORDERS_WRITE_LIMIT", "ORDERS_ALLOWED_HOSTS", "ORDERS_MASTER_KEY_FILE", "VIRTUAL_ENV"):
        env.pop(name, None)
    with tempfile.TemporaryFile() as log:
        process = await asyncio.create_subprocess_exec(
            *(side.python, "-m", "uvicorn", "web.cli:app_factory", "--factory", "--host", "127.0.0.1"),
            *("--port", str(port), "--log-level", "warning", "--no-access-log"),
            cwd=side.root,
            env=env,
            stdout=log,
            stderr=log,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient() as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if (await client.get(f"{url}/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if process.returncode is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise RuntimeError(
                            f"{side.name}: the server did not start:\n{log.read().decode()[-3000:]}"
                        )
                    await asyncio.sleep(0.1)
            yield url
        finally:
            process.terminate()
            await process.wait()


async def placed_order(url: str, session: str) -> str:
    """A placed order of LINES lines, made through the pages as a clerk would."""
    async with httpx.AsyncClient(base_url=url, cookies={"session": session}) as client:
        await client.get("/orders")
        token = {"_csrf_token": client.cookies["csrftoken"]}
        created = await client.post("/orders", data={"customer_id": CUSTOMER, "currency": "EUR", **token})
        assert created.status_code == 303, created.text
        order = created.headers["location"]
        for line in range(LINES):
            item = {"sku": f"SKU-{line:02d}", "name": f"Item number {line}", "unit_price": "3.50"}
            added = await client.post(f"{order}/items", data={**item, "quantity": "1", **token})
            assert added.status_code == 303, added.text
        placed = await client.post(f"{order}/place", data=token)
        assert placed.status_code == 303, placed.text
        return order


async def register(database_url: str) -> None:
    """The workflow's customer, registered (before issue 15 there were none to register)."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        orders = Orders(pool, master=MasterKey.from_secret(SECRET))
        details = RegisterCustomer(CUSTOMER, "Bench Customer", "bench@example.org", "1 Bench Street\nTesting")
        await orders.register_customer(details, Envelope(uuid4()))
    finally:
        await pool.close()


async def load(url: str, scenario: str, path: str, session: str, seconds: float) -> dict[str, float]:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bench.load", url, scenario, "--path", path),
        *(
            "--connections",
            str(CONNECTIONS),
            "--seconds",
            str(seconds),
            "--warmup",
            str(min(1.0, seconds / 4)),
        ),
        f"--session={session}",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    result = json.loads(out.decode().splitlines()[-1])
    if result["errors"] > 0.01 * max(1, result["requests"]):
        raise RuntimeError(f"{scenario} {path}: {result['errors']} errors, first: {result['first_error']}")
    return {"rate": result["units"] / result["seconds"], "p50": result["p50_ms"], "p99": result["p99_ms"]}


async def round_of(
    side: Side, database_url: str, session: str, seconds: float
) -> dict[str, dict[str, float]]:
    async with serving(side, database_url) as url:
        order = await placed_order(url, session)
        return {
            "workflow": await load(url, "workflow", "/orders", session, seconds),
            "order page": await load(url, "get", order, session, seconds),
        }


async def run(rev: str, seconds: float, rounds: int) -> str:
    sides = [before_side(rev), Side("now", ROOT, sys.executable)]
    found: dict[str, dict[str, list[dict[str, float]]]] = {s.name: {} for s in sides}
    with postgres() as (server, how):
        admin = await asyncpg.connect(server)
        databases, sessions = {}, {}
        try:
            for side in sides:
                name = f"bench_personal_{'now' if side.root == ROOT else 'before'}_{os.getpid()}"
                await admin.execute(f"CREATE DATABASE {name}")
                databases[side.name] = with_database(server, name)
            # Each side migrates its own database as it starts; sessions need its tables.
            for side in sides:
                async with serving(side, databases[side.name]):
                    sessions[side.name] = await clerk_session(databases[side.name])
            for database in databases.values():
                # "now" has customers; so has a revision after issue 15 (--before), which refuses
                # an order for a customer not registered.
                conn = await asyncpg.connect(database)
                try:
                    has_customers = await conn.fetchval("SELECT to_regclass('customers') IS NOT NULL")
                finally:
                    await conn.close()
                if has_customers:
                    await register(database)
            for number in range(rounds):
                for side in sides if number % 2 == 0 else sides[::-1]:
                    figures = await round_of(side, databases[side.name], sessions[side.name], seconds)
                    for what, sample in figures.items():
                        found[side.name].setdefault(what, []).append(sample)
                    print(
                        f"round {number + 1} {side.name}: "
                        + ", ".join(f"{what} {sample['rate']:,.1f}/s" for what, sample in figures.items()),
                        flush=True,
                    )
        finally:
            for name in databases.values():
                await admin.execute(f"DROP DATABASE IF EXISTS {name.rsplit('/', 1)[1]} WITH (FORCE)")
            await admin.close()
    return report(found, sides, rev, how, seconds, rounds)


def report(
    found: dict[str, dict[str, list[dict[str, float]]]],
    sides: list[Side],
    rev: str,
    how: str,
    seconds: float,
    rounds: int,
) -> str:
    before, now = (s.name for s in sides)
    lines = [
        "# Sealing customers' personal data: what it costs",
        "",
        f"`uv run --group bench python -m bench.personal_data --before {rev} --seconds {seconds:g} "
        f"--rounds {rounds}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, PostgreSQL {how}, "
        f"{os.cpu_count()} cores; {CONNECTIONS} connections; medians of {rounds} alternating rounds.",
        "",
        f"| what | {before} | now | now / before | p50 ms before / now | p99 ms before / now |",
        "|---|---|---|---|---|---|",
    ]
    units = {"workflow": "orders/s (5 form posts each)", "order page": "pages/s"}
    for what, unit in units.items():
        b, n = found[before][what], found[now][what]
        rate_b, rate_n = (statistics.median(s["rate"] for s in x) for x in (b, n))
        p50 = " / ".join(f"{statistics.median(s['p50'] for s in x):.1f}" for x in (b, n))
        p99 = " / ".join(f"{statistics.median(s['p99'] for s in x):.1f}" for x in (b, n))
        lines.append(
            f"| {what}, {unit} | {rate_b:,.1f} | {rate_n:,.1f} | {rate_n / rate_b:.2f}× | {p50} | {p99} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.personal_data", description=__doc__)
    parser.add_argument("--before", default=BEFORE, help=f"the revision to compare with (default {BEFORE})")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    text = uvloop.run(run(args.before, args.seconds, args.rounds))
    print(text)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
