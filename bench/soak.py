"""A bounded soak: `orders serve` under a steady mix of reads and writes; errors, latency, memory.

    uv run --group bench python -m bench.soak [--minutes 10] [--rate 50] [--workers 2]
        [--warm-up 15] [--quick]

Starts `orders serve --workers N` on a fresh embedded data folder (or on a new database of
DATABASE_URL's server), signs in as a clerk, and sends requests at a steady rate whatever the
answers' speed (open loop): people create orders, add items, place and cancel them, and open
order pages, the list and timelines. Latency runs from when a request was due, so a server
falling behind shows. Every few seconds it reads the resident memory of each uvicorn worker
and of the PostgreSQL processes from /proc. Prints a table per window (a minute; 5 s with
--quick) and writes it to bench/RESULTS-soak.md (--quick: a temp file). Not run in CI.
Exits 1 when any request failed.

Before the measured minutes, the same load warms the server up until every worker's page
cache is full (`--warm-up`: at most that many minutes; 0: none). A cache filling to its bound
is memory the server is meant to take, and how long it takes depends on how many pages each
worker happens to serve; what the soak looks for is memory that goes on rising after that.
The warm-up's requests are not in the table, but an error in them counts as one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shlex
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from uuid import uuid4

import httpx
import uvloop
from prometheus_client.parser import text_string_to_metric_families

from bench import workload
from bench.http import ROOT, worker_pids
from bench.lab import clerk_session
from bench.load import ITEMS, Connection, Tally
from bench.runner import _machine_load
from bench.soak_report import Record, by_action, growth, markdown, plain, table
from bench.soak_server import memory, server_facts, serving
from web.access import SESSION_COOKIE

RESULTS = ROOT / "bench" / "RESULTS-soak.md"
# What people do, by weight: mostly reading, and orders moving create → 3 items → place (→ cancel).
MIX = {"order page": 28, "list": 14, "timeline": 14, "create": 8, "add item": 24, "place": 8, "cancel": 4}
READS = {"order page", "list", "timeline"}
REQUEST_BOUND = 30.0  # seconds: a request still unanswered after this counts as an error
MOST_IN_FLIGHT = 500  # past this the server is not keeping up: a due request is dropped, as an error
CUSTOMERS = [f"soak-{n}" for n in range(100)]  # registered before the soak starts
IDLE_EXPIRY = 2.0  # seconds: idle connections are dropped before uvicorn closes them (5 s)
OPEN_AT_ONCE = 8  # keep-alive connections opened before the load, used in turn
FULL = 0.97  # a page cache this near its bound is full: what leaves it makes room for what comes


class Connections:
    """Keep-alive connections (bench/load.py's) for requests sent at once, all with one session."""

    def __init__(self, port: int, cookies: dict[str, str]) -> None:
        self.port, self.cookies = port, cookies
        self.idle: deque[tuple[Connection, float]] = deque()
        self.tally = Tally()

    async def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        """The status and Location of one request; the connection is closed if it failed."""
        now = time.monotonic()
        while self.idle:
            # The longest idle first: requests go round the open connections, which the kernel
            # handed to the workers as they accepted them, so every worker serves from the start.
            connection, used = self.idle.popleft()
            if now - used < IDLE_EXPIRY:
                break
            connection.close()
        else:
            connection = Connection("127.0.0.1", self.port, self.tally)
            connection.cookies = dict(self.cookies)
        try:
            async with asyncio.timeout(REQUEST_BOUND):
                status, headers = await connection.request(method, path, form)
        except BaseException:
            connection.close()
            raise
        self.idle.append((connection, time.monotonic()))
        return status, headers.get("location", "")


class Shop:
    """The soak's people: each action takes an order in the right state, so none is refused."""

    def __init__(self, connections: Connections, rng: random.Random) -> None:
        self.connections, self.rng = connections, rng
        self.adding: deque[tuple[str, int]] = deque()  # drafts, with the items they have
        self.placing: deque[str] = deque()  # drafts with three items
        self.cancelling: deque[str] = deque()  # placed orders someone will cancel
        self.seen: deque[str] = deque(maxlen=500)  # orders to read

    def next_action(self) -> str:
        action = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        waiting = {"add item": self.adding, "place": self.placing, "cancel": self.cancelling}
        if action in waiting and not waiting[action]:
            return "create"  # nobody at that step yet: a new customer instead
        if action in READS - {"list"} and not self.seen:
            return "list"
        return action

    async def act(self, action: str) -> None:
        """One request; raises Refused (its status) or a connection's error."""
        form = {"command_id": str(uuid4())}
        if action == "create":
            form |= {"customer_id": self.rng.choice(CUSTOMERS), "currency": "EUR"}
            location = await self._expect("POST", "/orders", 303, form)
            order = location.rsplit("/", 1)[1]
            self.adding.append((order, 0))
            self.seen.append(order)
        elif action == "add item":
            order, items = self.adding.popleft()
            sku, name, price, quantity = ITEMS[items]
            form |= {"sku": sku, "name": name, "unit_price": price, "quantity": quantity}
            await self._expect("POST", f"/orders/{order}/items", 303, form)
            if items + 1 < len(ITEMS):
                self.adding.append((order, items + 1))
            else:
                self.placing.append(order)
        elif action == "place":
            order = self.placing.popleft()
            await self._expect("POST", f"/orders/{order}/place", 303, form)
            if self.rng.random() < 0.5:
                self.cancelling.append(order)
        elif action == "cancel":
            order = self.cancelling.popleft()
            form["reason"] = "Changed my mind"
            await self._expect("POST", f"/orders/{order}/cancel", 303, form)
        elif action == "list":
            await self._expect("GET", "/orders", 200)
        else:
            page = "" if action == "order page" else "/timeline"
            await self._expect("GET", f"/orders/{self.rng.choice(self.seen)}{page}", 200)

    async def _expect(self, method: str, path: str, status: int, form: dict[str, str] | None = None) -> str:
        got, location = await self.connections.request(method, path, form)
        if got != status:
            raise Refused(got)
        return location


class Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")


async def drive(
    record: Record,
    shop: Shop,
    server_pid: int,
    postmaster: int | None,
    scraper: httpx.AsyncClient,
    *,
    until_full: float | None = None,
) -> None:
    """Send a request every 1/rate s for the record's seconds, whatever the answers' speed; with
    `until_full` (bytes), stop sooner once every worker's page cache holds that much."""
    started = time.perf_counter()  # uvloop's loop.time() counts whole milliseconds
    full = asyncio.Event()
    sampler = asyncio.create_task(sample(record, started, server_pid, postmaster, scraper, until_full, full))

    async def one(due: float) -> None:
        action, window = shop.next_action(), record.at(due - started)
        try:
            await shop.act(action)
        except Refused as refused:
            window.errors[f"{action}: {refused}"] += 1
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
            window.errors[f"{action}: {type(error).__name__}"] += 1
        else:
            latency = 1000 * (time.perf_counter() - due)
            window.latencies.append(latency)
            window.by_action.setdefault(action, []).append(latency)
            if action not in READS:
                window.writes.append(latency)
            record.done[action] += 1

    in_flight: set[asyncio.Task[None]] = set()
    for n in range(int(record.seconds * record.rate)):
        if full.is_set():
            record.ended = time.perf_counter() - started
            break
        due = started + n / record.rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        if len(in_flight) >= MOST_IN_FLIGHT:
            record.at(due - started).errors[f"dropped: {MOST_IN_FLIGHT} requests in flight"] += 1
            continue
        task = asyncio.create_task(one(due))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    await asyncio.gather(*in_flight)
    sampler.cancel()


async def sample(
    record: Record,
    started: float,
    server_pid: int,
    postmaster: int | None,
    scraper: httpx.AsyncClient,
    until_full: float | None,
    full: asyncio.Event,
) -> None:
    """Memory and load into the current window, every few seconds; a worker replaced is an error.
    Sets `full` once every worker's page cache holds `until_full` bytes, if given."""
    workers = worker_pids(server_pid)
    while True:
        window = record.at(time.perf_counter() - started)
        if (now := worker_pids(server_pid)) != workers:
            window.errors["a uvicorn worker was replaced"] += 1
            workers = now
        taken = memory(workers, postmaster)
        figures = await per_worker(scraper, workers)
        for n, pid in enumerate(workers, 1):
            if pid in figures["orders_page_cache_bytes"]:
                taken[f"worker {n} page cache"] = figures["orders_page_cache_bytes"][pid] / 2**20
            if pid in figures["orders_python_allocated_blocks"]:
                taken[f"worker {n} Python blocks (k)"] = figures["orders_python_allocated_blocks"][pid] / 1000
        window.memory = taken
        window.load = os.getloadavg()[0]
        caches = figures["orders_page_cache_bytes"]
        if until_full is not None and all(caches.get(pid, -1.0) >= until_full for pid in workers):
            full.set()
        await asyncio.sleep(min(5.0, record.window / 3))


async def per_worker(scraper: httpx.AsyncClient, workers: list[int]) -> dict[str, dict[int, float]]:
    """Each worker's page cache (bytes) and Python's allocated blocks, by pid, from /metrics (which
    adds up every worker's files; a single process, serving alone, labels them with no pid)."""
    response = await scraper.get("/metrics")
    response.raise_for_status()
    found: dict[str, dict[int, float]] = {"orders_page_cache_bytes": {}, "orders_python_allocated_blocks": {}}
    alone = workers[0] if len(workers) == 1 else 0
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name in found:
                found[sample.name][int(sample.labels.get("pid", alone))] = sample.value
    return found


async def soak(args: argparse.Namespace, command: str) -> tuple[Record, str]:
    record = Record(60 * args.minutes, args.rate, 5.0 if args.quick else 60.0)
    async with serving(args.workers) as served:
        facts = await server_facts(served.database)
        await workload.register_at(served.database, served.master, CUSTOMERS)  # whom the shop orders for
        connections = Connections(served.port, {SESSION_COOKIE: await clerk_session(served.database)})
        await connections.request("GET", "/orders")  # the CSRF cookie, as a browser's first page
        connections.cookies = dict(connections.idle[0][0].cookies)
        # Connections opened at once, for the workers to share (each accepts some): reused in turn.
        await asyncio.gather(*(connections.request("GET", "/orders") for _ in range(OPEN_AT_ONCE)))
        admin = {SESSION_COOKIE: await clerk_session(served.database, "admin")}  # reads /metrics
        load_before = _machine_load()
        print(f"soak: {served.where}; {record.seconds:g} s at {record.rate:g}/s, {args.workers} workers")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.port}", cookies=admin) as scraper:
            shop = Shop(connections, random.Random(16))
            warm = Record(60 * args.warm_up, args.rate, record.window) if args.warm_up else None
            if warm is not None:
                bound = FULL * served.page_cache_mb * 2**20
                print(f"soak: warming up until every worker's page cache holds {bound / 2**20:.1f} MB")
                await drive(warm, shop, served.pid, served.postmaster, scraper, until_full=bound)
                print(f"soak: {warm_up(warm, args.warm_up)}")
            await drive(record, shop, served.pid, served.postmaster, scraper)
        facts["load"] = f"{load_before} before the run, {_machine_load()} after"
        if warm is not None:
            facts["warm-up"] = warm_up(warm, args.warm_up)
            record.windows[0].errors.update({f"warm-up: {e}": n for e, n in warm.errors.items()})
    return record, markdown(record, command, facts, served.where)


def warm_up(warm: Record, limit: float) -> str:
    """How the warm-up went, in a line: how long, the memory it ended with, its errors."""
    took = warm.ended if warm.ended is not None else warm.seconds
    memory = next((w.memory for w in reversed(warm.windows) if w.memory), {})
    workers = ", ".join(f"{k} {v:.1f} MB" for k, v in memory.items() if k.startswith("worker") and "RSS" in k)
    how = (
        "every worker's page cache was full"
        if warm.ended is not None
        else f"the {limit:.3g} minutes allowed ran out before every worker's page cache was full"
    )
    errors = sum(warm.errors.values())
    return f"{took / 60:.1f} min at the same rate until {how} ({workers}); errors: {errors}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--rate", type=float, default=50.0, help="requests a second (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2)")
    parser.add_argument(
        "--warm-up", type=float, default=15.0, help="at most this long until the page caches are full (15)"
    )
    parser.add_argument("--quick", action="store_true", help="a 20-second smoke run, 5-second windows")
    parser.add_argument("--output", type=Path, help="the report (default bench/RESULTS-soak.md; quick: temp)")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes, args.warm_up = 20 / 60, min(args.warm_up, 10 / 60)
    if args.minutes <= 0 or args.rate <= 0 or args.workers < 1 or args.warm_up < 0:
        parser.error("--minutes and --rate must be more than 0, --warm-up 0 or more, --workers at least 1")
    given = sys.argv[1:] if argv is None else argv
    command = shlex.join(["uv", "run", "--group", "bench", "python", "-m", "bench.soak", *given])
    output = args.output or (Path(tempfile.gettempdir()) / "orders-soak-quick.md" if args.quick else RESULTS)
    record, report = uvloop.run(soak(args, command))
    print("\n".join(["", plain(table(record)), "", "p99 ms by action:", plain(by_action(record))]))
    print("\n".join(["", *growth(record)]))
    output.write_text(report)
    print(f"\nsoak: errors: {dict(record.errors) or 0}; wrote {output}")
    return 1 if record.errors else 0


if __name__ == "__main__":
    sys.exit(main())
