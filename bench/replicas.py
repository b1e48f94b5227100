"""Read replicas bench: the order page and the list, on the primary alone beside one streaming replica.

    uv run --group bench python -m bench.replicas [--quick] [--seconds N] [--clients N]

Starts its own primary (embedded PostgreSQL) and a streaming standby of it
(tests/support/standby.py), seeds orders, then serves the app with uvicorn
twice over the same database: on the primary alone, and with
ORDERS_REPLICA_URLS naming the standby. The same load (N clients, each
GETting an order page or the list as fast as answered) runs against each,
alternating rounds, and the medians are printed side by side with their
ratio. One machine holds both servers, the app and the clients: a replica
here adds no CPU, so the figures show what the choice of server costs, not
what a replica on its own machine would give.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from store.application import Orders
from store.database import connect_pool
from store.migrations import migrate
from store.personal import MasterKey
from store.seed import seed
from tests.support.accounts import session_at
from tests.support.customers import SERVER_SECRET
from tests.support.databases import create_database, database_name
from tests.support.servers import uvicorn_process
from tests.support.standby import primary_with_standby
from web.access import SESSION_COOKIE


async def _quiet(done: int, total: int) -> None:
    pass


async def prepare(database_url: str, orders: int) -> list[str]:
    pool = await connect_pool(database_url, min_size=1, max_size=8)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        # The seed registers its customers with the key of the server that serves them.
        await seed(Orders(pool, master=MasterKey.from_secret(SERVER_SECRET)), orders, _quiet)
        return [row[0] for row in await pool.fetch("SELECT order_id FROM order_read_model")]
    finally:
        await pool.close()


async def load(base: str, session: str, paths: list[str], clients: int, seconds: float) -> dict[str, float]:
    """`clients` loops GETting random `paths` for `seconds`: requests per second and latency percentiles."""
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal failures
        async with httpx.AsyncClient(base_url=base, cookies={SESSION_COOKIE: session}, timeout=30) as http:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = await http.get(random.choice(paths))
                latencies.append(time.perf_counter() - started)
                failures += response.status_code != 200

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.monotonic() - started
    cuts = statistics.quantiles(latencies, n=20)
    return {
        "rate": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p95": cuts[18] * 1000,
        "failures": failures,
    }


@contextmanager
def served(database_url: str, replica_url: str | None) -> Iterator[str]:
    saved = os.environ.get("ORDERS_REPLICA_URLS")
    os.environ["ORDERS_REPLICA_URLS"] = replica_url or ""
    try:
        with uvicorn_process(database_url) as (base, _):
            yield base
    finally:
        if saved is None:
            os.environ.pop("ORDERS_REPLICA_URLS", None)
        else:
            os.environ["ORDERS_REPLICA_URLS"] = saved


async def replica_reads(base: str, session: str) -> str:
    """The admin page's count of reads the replica served (templates/_replicas.html)."""
    async with httpx.AsyncClient(base_url=base, cookies={SESSION_COOKIE: session}) as http:
        text = (await http.get("/admin/projections")).text
    cells = text.split('<tr class="replica">', 1)[1].split("</tr>", 1)[0].split('<td class="num">')
    return cells[-1].split("<", 1)[0]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 s per round")
    parser.add_argument("--seconds", type=float, help="seconds per round (default 8; quick 2)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each configuration (default 3)")
    parser.add_argument("--orders", type=int, default=400, help="orders seeded (default 400)")
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 8.0)
    with (
        tempfile.TemporaryDirectory(prefix="orders-bench-replicas-") as folder,
        primary_with_standby(Path(folder)) as (primary, standby),
    ):
        database_url = asyncio.run(create_database(primary.url(), "orders_bench"))
        replica_url = standby.url(database_name(database_url))
        order_ids = asyncio.run(prepare(database_url, args.orders))
        session = asyncio.run(session_at(database_url, "bench", "admin"))
        pages = {"order page": [f"/orders/{o}" for o in order_ids], "list": ["/orders"]}
        print(
            f"bench.replicas: {len(order_ids)} orders, {args.clients} clients, {seconds:g} s x "
            f"{args.rounds} rounds, load {os.getloadavg()[0]:.2f} before",
            flush=True,
        )
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        served_by_replica = ""
        for _ in range(args.rounds):
            for setup, url in (("primary alone", None), ("one replica", replica_url)):
                with served(database_url, url) as base:
                    for page, paths in pages.items():
                        asyncio.run(load(base, session, paths, args.clients, min(1.0, seconds / 4)))
                        figures = asyncio.run(load(base, session, paths, args.clients, seconds))
                        results.setdefault((page, setup), []).append(figures)
                    if url:
                        served_by_replica = asyncio.run(replica_reads(base, session))
        report(results, served_by_replica)
        print(f"bench.replicas: load {os.getloadavg()[0]:.2f} after (2 cores shared with other work)")


def report(results: dict[tuple[str, str], list[dict[str, float]]], served_by_replica: str) -> None:
    def med(page: str, setup: str, key: str) -> float:
        return statistics.median(r[key] for r in results[(page, setup)])

    print(f"\n{'page':<12} {'setup':<14} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'failed':>7}  each round")
    for page in ("order page", "list"):
        for setup in ("primary alone", "one replica"):
            failed = sum(r["failures"] for r in results[(page, setup)])
            rounds = ", ".join(f"{r['rate']:.0f}" for r in results[(page, setup)])
            print(
                f"{page:<12} {setup:<14} {med(page, setup, 'rate'):8.0f} {med(page, setup, 'p50'):8.1f} "
                f"{med(page, setup, 'p95'):8.1f} {failed:7.0f}  {rounds} req/s"
            )
        ratio = med(page, "one replica", "rate") / med(page, "primary alone", "rate")
        print(f"{page:<12} {'ratio':<14} {ratio:8.2f}x (one replica / primary alone, medians)")
    print(f"reads the replica served in the last round (admin page): {served_by_replica}")


if __name__ == "__main__":
    main()
