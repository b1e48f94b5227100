"""Read-side bench: replay, live SSE delay, snapshots, history partial, export memory.

    uv run python -m bench.read_side [--quick] [--replay-events N]

Starts its own embedded PostgreSQL in a temp folder (or uses DATABASE_URL, in
scratch databases it creates and drops), runs each measurement at least twice,
prints medians beside a baseline, and writes bench/RESULTS-read-side.md.
Speed is reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx

from bench.read_side_data import bulk_orders, long_order
from domain.order import fold
from store.database import connect_pool, embedded_postgres
from store.log.event_store import EventStore, Metadata
from store.log.snapshots import Snapshots
from store.migrations import migrate
from store.read.replay import rebuild
from tests.support.accounts import session_for
from tests.support.servers import ROOT, uvicorn_process, with_database
from tests.support.subscriptions import order_events
from web.access import SESSION_COOKIE

RESULTS = ROOT / "bench" / "RESULTS-read-side.md"
RUNS = 2


@dataclass
class Sizes:
    replay_events: int
    live_seconds: float
    long_order: int
    history_seconds: float
    export_large: int
    export_small: int
    load_seconds: float


FULL = Sizes(1_000_000, 10.0, 10_000, 5.0, 100_000, 10_000, 1.0)
QUICK = Sizes(20_000, 2.0, 1_000, 1.0, 10_000, 1_000, 0.25)


@dataclass
class Row:
    name: str
    value: float
    unit: str
    baseline_name: str
    baseline: float
    target: str
    runs: list[float] = field(default_factory=list)
    baseline_runs: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def show(row: Row) -> None:
    print(
        f"  {row.name}: {row.value:,.1f} {row.unit} (runs {', '.join(f'{v:,.1f}' for v in row.runs)}) | "
        f"{row.baseline_name}: {row.baseline:,.1f} | ratio {row.ratio:.3f} | target {row.target}",
        flush=True,
    )


# ------------------------------------------------------------------ databases


class Lab:
    """The server: scratch databases on it, and CHECKPOINT before each test."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"rs_{uuid4().hex[:8]}"
        self.created: list[str] = []

    async def database(self, name: str) -> str:
        full = f"{self.prefix}_{name}"
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(f"CREATE DATABASE {full}")
        finally:
            await conn.close()
        self.created.append(full)
        url = with_database(self.url, full)
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        return url

    async def checkpoint(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute("CHECKPOINT")
        except asyncpg.PostgresError as error:  # not a superuser: say so, go on
            print(f"  (CHECKPOINT refused: {error})")
        finally:
            await conn.close()

    async def server_version(self) -> str:
        conn = await asyncpg.connect(self.url)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    async def drop_all(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            for name in self.created:
                await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()


@contextmanager
def server_url() -> Any:
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    with (
        tempfile.TemporaryDirectory(prefix="read-side-") as folder,
        embedded_postgres(Path(folder) / "pg", delete=True) as url,
    ):
        yield url


@asynccontextmanager
async def pool_on(url: str, size: int = 10) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect_pool(url, min_size=2, max_size=size)
    try:
        yield pool
    finally:
        await pool.close()


# ------------------------------------------------------------ measurements


# Every column of a stored event (what read_stream reads), and only the ones a rebuild's fold
# reads with the checkpoint's (what store/read/replay reads).
FULL_SCAN = (
    "SELECT position, stream_id, version, event_id, type, schema_version, data::text, "
    "metadata::text, recorded_at FROM events ORDER BY position"
)
NARROW_SCAN = (
    "SELECT stream_id, version, type, schema_version, data::text, recorded_at, tx_id::text, position "
    "FROM events ORDER BY position"
)


async def raw_scan(pool: asyncpg.Pool, query: str = FULL_SCAN) -> int:
    count = 0
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        async for _ in conn.cursor(query, prefetch=2000):
            count += 1
    return count


async def timed(lab: Lab, action: Callable[[], Awaitable[int]]) -> float:
    """Events per second of one run of `action` (which returns the events it handled)."""
    await lab.checkpoint()
    started = time.perf_counter()
    events = await action()
    return events / (time.perf_counter() - started)


async def measure_replay(lab: Lab, sizes: Sizes) -> list[Row]:
    url = await lab.database("replay")
    async with pool_on(url) as pool:
        started = time.perf_counter()
        events = await bulk_orders(pool, sizes.replay_events // 10)
        print(f"  wrote {events:,} events in {time.perf_counter() - started:.1f} s", flush=True)
        await pool.execute("VACUUM ANALYZE events")
        replays, scans, narrow = [], [], []
        for _ in range(RUNS):
            scans.append(await timed(lab, lambda: raw_scan(pool)))
            narrow.append(await timed(lab, lambda: raw_scan(pool, NARROW_SCAN)))
            replays.append(await timed(lab, lambda: rebuild(pool, "customer_summaries")))
    title = f"Replay of {events:,} events into customer_summaries"
    return [
        Row(
            title,
            median(replays),
            "events/s",
            f"raw cursor scan ORDER BY position, {columns} (events/s)",
            median(baseline),
            "ratio >= 0.25",
            replays,
            baseline,
        )
        for columns, baseline in (("every column", scans), ("the columns replay reads", narrow))
    ]


_HREF = re.compile(r'href="/orders/([^/"]+)/')


async def live_delays(
    base: str, pool: asyncpg.Pool, seconds: float, session: str, rate: float = 200.0
) -> list[float]:
    """Append at `rate`/s for `seconds`; return the delays (ms) from append return to SSE arrival."""
    store = EventStore(pool)
    committed: dict[str, float] = {}
    delivered: dict[str, float] = {}
    connected = asyncio.Event()
    arrived = asyncio.Event()

    async def listen() -> None:
        async with (
            httpx.AsyncClient(timeout=None, cookies={SESSION_COOKIE: session}) as client,
            client.stream("GET", base + "/events/live", headers={"accept": "text/event-stream"}) as response,
        ):
            async for line in response.aiter_lines():
                now = time.monotonic()
                if line.startswith(":"):
                    connected.set()
                elif line.startswith("data:"):
                    found = _HREF.search(line)
                    if found and found.group(1) not in delivered:
                        delivered[found.group(1)] = now
                        arrived.set()

    listener = asyncio.create_task(listen())
    try:
        await asyncio.wait_for(connected.wait(), 10)
        total = int(seconds * rate)
        started = time.monotonic()
        for n in range(total):
            due = started + n / rate
            pause = due - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            order_id = str(uuid4())
            events = order_events(order_id, "customer-live", 0, place=False)
            await store.append(order_id, 0, events, uuid4(), Metadata(actor="bench"), fold(events))
            committed[order_id] = time.monotonic()
        deadline = time.monotonic() + 3
        while len(delivered.keys() & committed.keys()) < len(committed) and time.monotonic() < deadline:
            arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), max(0.001, deadline - time.monotonic()))
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    missing = len(committed) - len(delivered.keys() & committed.keys())
    if missing:
        print(f"  {missing} of {len(committed)} appends not delivered within 3 s", flush=True)
    return [(delivered[k] - committed[k]) * 1000 for k in committed if k in delivered]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


async def history_rate(
    base: str, order_id: str, version: int, seconds: float, session: str, clients: int = 8
) -> float:
    path = f"/orders/{order_id}/history?version={version}"
    headers = {"HX-Request": "true", "HX-Target": "snapshot"}
    done = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    cookies = {SESSION_COOKIE: session}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30, cookies=cookies) as client:
        (await client.get(path, headers=headers)).raise_for_status()  # warm-up
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                response = await client.get(path, headers=headers)
                response.raise_for_status()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return done / (time.perf_counter() - started)


async def load_rate(snapshots: Snapshots, order_id: str, version: int, seconds: float) -> float:
    await snapshots.load(order_id, version)  # warm-up (takes the snapshot when enabled)
    loads = 0
    started = time.perf_counter()
    while loads < 3 or time.perf_counter() - started < seconds:
        await snapshots.load(order_id, version)
        loads += 1
    return loads / (time.perf_counter() - started)


async def measure_app(lab: Lab, sizes: Sizes) -> list[Row]:
    """Snapshots, then the app under uvicorn: SSE delay and the history partial."""
    url = await lab.database("app")
    rows = []
    async with pool_on(url) as pool:
        store = EventStore(pool)
        order_id = await long_order(store, sizes.long_order)
        far, near = sizes.long_order - 10, 10
        print(f"  wrote one order of {sizes.long_order:,} events", flush=True)
        for enabled in (True, False):
            snapshots = Snapshots(pool, every=100, enabled=enabled)
            fars, nears = [], []
            for _ in range(RUNS):
                await lab.checkpoint()
                fars.append(await load_rate(snapshots, order_id, far, sizes.load_seconds))
                nears.append(await load_rate(snapshots, order_id, near, sizes.load_seconds))
            row = Row(
                f"Snapshots.load v{far:,}, snapshots {'on (every 100)' if enabled else 'off'}",
                median(fars),
                "loads/s",
                f"v{near} (loads/s); ratio shown = time v{far}/v{near}",
                median(nears),
                "time ratio <= 3 with snapshots" if enabled else "(comparison)",
                fars,
                nears,
            )
            rows.append(row)
            show_time_ratio(row)

        with uvicorn_process(url) as (base, _process):
            await asyncio.sleep(1.0)  # let the app's subscriptions catch up with the long order
            session = await session_for(pool, "bench-reader", "viewer")  # people read signed in
            p50s, p99s = [], []
            for _ in range(RUNS):
                await lab.checkpoint()
                delays = await live_delays(base, pool, sizes.live_seconds, session)
                p50s.append(percentile(delays, 0.50))
                p99s.append(percentile(delays, 0.99))
                print(f"  SSE run: {len(delays)} delivered, p50 {p50s[-1]:.1f} ms, p99 {p99s[-1]:.1f} ms")
            rows.append(
                Row("SSE delay p50, 200 appends/s", median(p50s), "ms", "aim p99", 100, "-", p50s, [])
            )
            rows.append(
                Row("SSE delay p99, 200 appends/s", median(p99s), "ms", "aim p99", 100, "< 100 ms", p99s, [])
            )
            show(rows[-2])
            show(rows[-1])

            fars, nears = [], []
            for _ in range(RUNS):
                await lab.checkpoint()
                fars.append(await history_rate(base, order_id, far, sizes.history_seconds, session))
                nears.append(await history_rate(base, order_id, near, sizes.history_seconds, session))
            rows.append(
                Row(
                    f"GET history partial v{far:,} (HX-Target: snapshot), 8 connections",
                    median(fars),
                    "req/s",
                    f"same at v{near} (req/s)",
                    median(nears),
                    "-",
                    fars,
                    nears,
                )
            )
            show(rows[-1])
    return rows


def show_time_ratio(row: Row) -> None:
    show(row)
    print(f"    time ratio v-far/v-near = {row.baseline / row.value:.2f}", flush=True)


def export_child(url: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "bench.read_side_export", url],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


async def measure_export(lab: Lab, sizes: Sizes) -> list[Row]:
    growth: dict[int, list[float]] = {}
    rates: dict[int, list[float]] = {}
    for events in (sizes.export_small, sizes.export_large):
        url = await lab.database(f"export_{events}")
        async with pool_on(url) as pool:
            await bulk_orders(pool, events // 10)
        for _ in range(RUNS):
            await lab.checkpoint()
            result = await asyncio.to_thread(export_child, url)
            assert result["events"] == events, result
            growth.setdefault(events, []).append((result["hwm_after_kb"] - result["hwm_before_kb"]) / 1024)
            rates.setdefault(events, []).append(result["events"] / result["seconds"])
    large, small = sizes.export_large, sizes.export_small

    def row(what: str, by_size: dict[int, list[float]], unit: str, target: str) -> Row:
        label, baseline = f"Export NDJSON {large:,} events: {what}", f"{small:,} events ({unit})"
        big, few = by_size[large], by_size[small]
        return Row(label, median(big), unit, baseline, median(few), target, big, few)

    rows = [row("peak RSS growth", growth, "MB", "flat (ratio ~1)"), row("rate", rates, "events/s", "-")]
    for row in rows:
        show(row)
    return rows


# ------------------------------------------------------------------ report


def machine(pg_version: str) -> dict[str, str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    return {
        "CPU": cpu,
        "Cores": str(os.cpu_count()),
        "RAM": ram,
        "Python": platform.python_version(),
        "PostgreSQL": pg_version,
        "OS": platform.platform(),
    }


def write_results(rows: list[Row], command: str, info: dict[str, str], seconds: float, note: str) -> None:
    lines = [
        "# Read-side bench results",
        "",
        f"Command: `{command}`  ",
        f"Run at {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, took {seconds:.0f} s. {note}",
        "",
        "## Machine",
        "",
        *(f"- {key}: {value}" for key, value in info.items()),
        "",
        "## Figures (medians of at least 2 runs; each run after a CHECKPOINT)",
        "",
        "| Measurement | Median | Unit | Baseline | Baseline median | Ratio | Target | Runs "
        "| Baseline runs |",
        "|---|---:|---|---|---:|---:|---|---|---|",
    ]
    for row in rows:
        ratio = row.ratio
        if row.unit == "loads/s":
            ratio = row.baseline / row.value  # time ratio
        lines.append(
            f"| {row.name} | {row.value:,.1f} | {row.unit} | {row.baseline_name} | {row.baseline:,.1f} | "
            f"{ratio:.3f} | {row.target} | {', '.join(f'{v:,.1f}' for v in row.runs)} | "
            f"{', '.join(f'{v:,.1f}' for v in row.baseline_runs) or '-'} |"
        )
    lines += [
        "",
        "## Notes",
        "",
        "- Replay: orders of 10 events (created, 8-9 items, 70% placed) made by the decider as 64",
        "  templates, copied with fresh order ids and customers (orders / 20 customers) by bulk",
        "  `INSERT ... SELECT ... FROM unnest(...)`; their hash column is left NULL (replay does not",
        "  read it). The raw scans use an asyncpg cursor (prefetch 2000) in `ORDER BY position`: one",
        "  fetches every column of a stored event (as read_stream does), the other only the columns",
        "  the replay reads (stream, version, type, schema version, data, time, and the checkpoint's",
        "  tx_id and position), so the second ratio is the replay's own work beside the same reading.",
        "- SSE: the bench appends one OrderCreated per new order through `EventStore.append` (NOTIFY in",
        "  the statement) at a steady 200/s, and reads `GET /events/live` with httpx in the same process;",
        "  the delay runs from the append's return to the arrival of the `data:` line naming the order.",
        "- Snapshots: one draft order whose items are added and removed in turn; the `loads/s` rows'",
        "  ratio is the time ratio (far version / version 10). The first load of each run is a",
        "  warm-up that takes the snapshot when snapshots are on.",
        "- History: the app under uvicorn (1 worker, its subscriptions running), the client (httpx,",
        "  8 connections) in the bench process on the same cores.",
        "- Export: each run in a child process; growth = VmHWM after the export minus before it.",
        "",
    ]
    RESULTS.write_text("\n".join(lines))


async def run(args: argparse.Namespace, url: str) -> None:
    sizes = QUICK if args.quick else FULL
    if args.replay_events:
        sizes.replay_events = args.replay_events
    started = time.perf_counter()
    lab = Lab(url)
    rows: list[Row] = []
    try:
        info = machine(await lab.server_version())
        print(f"1. Replay ({sizes.replay_events:,} events)", flush=True)
        for row in await measure_replay(lab, sizes):
            show(row)
            rows.append(row)
        print("2-4. Snapshots, SSE delay, history partial", flush=True)
        rows += await measure_app(lab, sizes)
        print("5. Export memory", flush=True)
        rows += await measure_export(lab, sizes)
    finally:
        await lab.drop_all()
    seconds = time.perf_counter() - started
    command = "uv run python -m bench.read_side " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    note = "Quick sizes." if args.quick else "Full sizes."
    if args.replay_events and not args.quick and args.replay_events != 1_000_000:
        note += f" Replay at a medium size ({args.replay_events:,} events), not 1,000,000."
    write_results(rows, command.strip(), info, seconds, note)
    print(f"Done in {seconds:.1f} s; wrote {RESULTS.relative_to(ROOT)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="sizes shrunk 10-100x (about a minute)")
    parser.add_argument("--replay-events", type=int, default=0, help="events for the replay test")
    args = parser.parse_args()
    with server_url() as url:
        asyncio.run(run(args, url))


if __name__ == "__main__":
    main()
