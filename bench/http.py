"""3, 4 and 6: the app under uvicorn, loaded from another process: form posts, pages, memory."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

from bench import workload
from bench.lab import Lab, Sample, Trial, TrialGroup, app_orders, clerk_session
from bench.profiles import DatabaseWaits, join, py_spy
from bench.results import Row, Target, explain, extras, values
from domain.order import AddItem, CreateOrder
from store.application import Envelope
from store.personal import MasterKey

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 16
SECRET = "bench-csrf-secret"
SERVER_MASTER = MasterKey.from_secret(SECRET)  # the servers' master key: ORDERS_SECRET is SECRET
ORDER_LINES = 20
LISTED_ORDERS = 40
ORDER_PAGE = f"order page, {ORDER_LINES} lines"
LIST_PAGE = "list page"

WHY_HTTP = (
    "The workers were on the CPU {cpu:.0f}% of the measured time (100% = one core), and the "
    "py-spy layer table says on what: asyncpg's protocol first (Connection._do_execute: each "
    "form post runs the append, read_stream too when this worker did not write the order "
    "last, and the subscription runners and the Notifier add their own statements), then the "
    "subscription runners (SubscriptionRunner.catch_up: every notification wakes each "
    "projection and workflow in the same process, which reads and applies the new events in "
    "a transaction), then Litestar's middleware, CSRF and form parsing (HTTP parsing is "
    "httptools' C parser since it became a dependency; with the pure-Python h11 this figure "
    "was about half). The database samples show how much of the rest is waiting on commits "
    "(`IO: WalSync`, `LWLock: WALWrite`). On 2 cores a second worker competes with PostgreSQL "
    "and the load generator for the same CPU, so it gains little. What would close it: the "
    "subscription runners in a process of their own, or catching up once per burst of "
    "notifications."
)
WHY_PAGE = (
    "The worker was on the CPU {cpu:.0f}% of the measured time. Both pages come from the "
    "render cache (web/render_cache.py): the order's HTML at its version and the list's for "
    "its rows at their versions are rendered once, and a request only fills in its CSRF token "
    "and command ids and renders base.html around them, so Jinja is a small share of the "
    "py-spy table. What is left per request: two statements (the session's resume in "
    "web/access.who, and the order's version, or the list's page of the read model) in "
    "asyncpg, Litestar's middleware, CSRF and response, and uvicorn writing the page (the "
    "order page of 20 lines is about 52 KB: a remove form per line and 21 timeline entries). "
    "A hello world does none of these. When the worker is well under 100%, it waits for "
    "PostgreSQL, which shares the two cores with the load generator."
)
WHY_MEMORY = (
    "The profile shows what the worker was running; the peak follows the size of the pages it renders."
)


@dataclass(frozen=True)
class Server:
    url: str
    pid: int
    session: str = ""  # a clerk's signed-in session on the server's database ("" for hello world)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def uvicorn(app: str, database_url: str = "", workers: int = 1) -> AsyncIterator[Server]:
    """`app` served as `orders serve` serves the app: factory, default loop and parser, no access log.

    What the server prints goes to a temp file (the app logs at INFO), shown only if it fails.
    """
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "ORDERS_SECRET": SECRET}
    # A write rate limit or a host allow-list set for this shell would skew or refuse the load.
    for name in ("ORDERS_WRITE_LIMIT", "ORDERS_ALLOWED_HOSTS"):
        env.pop(name, None)
    with tempfile.TemporaryFile() as log:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port)),
            *("--workers", str(workers), "--log-level", "warning", "--no-access-log"),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            try:
                await _wait_until_up("127.0.0.1", port, process)
            except (RuntimeError, TimeoutError) as error:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-3000:]
                raise RuntimeError(f"{app}: {error}; its output ends with:\n{tail}") from None
            session = await clerk_session(database_url) if database_url else ""
            yield Server(f"http://127.0.0.1:{port}", process.pid, session)
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 15)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def _wait_until_up(host: str, port: int, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"uvicorn exited with {process.returncode}")
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET /healthz HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n")
            answer = await reader.read()
            writer.close()
            if answer.startswith(b"HTTP/1.1 200"):
                return
        except OSError:
            pass
        await asyncio.sleep(0.05)
    raise TimeoutError("uvicorn did not answer /healthz within 60 s")


def worker_pids(pid: int) -> list[int]:
    """The uvicorn processes that serve requests: the server itself, or its worker children."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [int(p) for p in children.read_text().split()] if children.exists() else []
    found = [p for p in pids if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()]
    return found or [pid]


def peak_rss_mb(pid: int) -> float:
    """The largest VmHWM (peak resident set) among the server's workers."""
    peaks = []
    for worker in worker_pids(pid):
        for line in Path(f"/proc/{worker}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time the processes have used so far."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def generate_load(lab: Lab, server: Server, scenario: str, path: str, profile: bool) -> Sample:
    """The load of CONNECTIONS users, each signed in as a clerk of the server's database."""
    seconds = lab.settings.profile_seconds if profile else lab.settings.seconds
    await lab.checkpoint()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.load",
        server.url,
        scenario,
        "--path",
        path,
        "--connections",
        str(CONNECTIONS),
        "--seconds",
        str(seconds),
        "--warmup",
        str(lab.settings.warmup),
        f"--session={server.session}",  # one argument: a session id may begin with "-"
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    serving = worker_pids(server.pid)
    await process.stdout.readline()  # "measuring": the warm-up is over
    async with DatabaseWaits(lab.admin, profile) as waits:
        spy = asyncio.create_task(py_spy(server.pid, seconds)) if profile else None
        cpu_before, clock_before = cpu_seconds(serving), time.perf_counter()
        out = await process.stdout.read()
        await process.wait()
        server_cpu = (cpu_seconds(serving) - cpu_before) / (time.perf_counter() - clock_before)
    if process.returncode != 0:
        raise RuntimeError(f"the load generator exited with {process.returncode}")
    result: dict[str, Any] = json.loads(out)
    if result["units"] == 0 or result["errors"] > 0.01 * result["requests"]:
        raise RuntimeError(f"{scenario} {path}: {result['errors']} errors, first: {result['first_error']}")
    return Sample(
        result["units"] / result["seconds"],
        {
            "p50": result["p50_ms"],
            "p99": result["p99_ms"],
            "peak RSS": peak_rss_mb(server.pid),
            "server CPU": 100 * server_cpu,
            "client CPU": 100 * result["client_cpu"],
        },
        join(waits.text, await spy if spy else ""),
    )


def form_posts(lab: Lab, workers: int) -> Trial:
    async def trial(profile: bool) -> Sample:
        async with lab.database() as url:
            await workload.register_at(url, SERVER_MASTER)  # the customer bench.load orders for
            async with uvicorn("web.cli:app_factory", url, workers) as server:
                return await generate_load(lab, server, "workflow", "/orders", profile)

    return trial


async def seed_pages(url: str) -> str:
    """An order of 20 lines (plus 40 small orders for the list); the big order's id."""
    async with app_orders(url, 2, master=SERVER_MASTER) as orders:
        for _ in range(LISTED_ORDERS):
            order_id = workload.new_order_id()
            for command in workload.order_commands(order_id)[:2]:
                await orders.execute(command, Envelope(uuid4()))
        order_id = workload.new_order_id()
        await orders.execute(CreateOrder(order_id, workload.CUSTOMER, "EUR"), Envelope(uuid4()))
        for line in range(ORDER_LINES):
            item = AddItem(order_id, f"SKU-{line:02d}", f"Item number {line}", 350 + line, 1 + line % 3)
            await orders.execute(item, Envelope(uuid4()))
        return order_id


def page(lab: Lab, which: str) -> Trial:
    """One page on its own server (for a profile)."""

    async def trial(profile: bool) -> Sample:
        async with lab.database() as url:
            order_id = await seed_pages(url)
            path = f"/orders/{order_id}" if which == ORDER_PAGE else "/orders"
            async with uvicorn("web.cli:app_factory", url) as server:
                return await generate_load(lab, server, "get", path, profile)

    return trial


def pages(lab: Lab) -> TrialGroup:
    """Both pages, one after the other, from one seeded database and one server."""

    async def trial(profile: bool) -> dict[str, Sample]:
        async with lab.database() as url:
            order_id = await seed_pages(url)
            async with uvicorn("web.cli:app_factory", url) as server:
                return {
                    ORDER_PAGE: await generate_load(lab, server, "get", f"/orders/{order_id}", profile),
                    LIST_PAGE: await generate_load(lab, server, "get", "/orders", profile),
                }

    return trial


def hello_world(lab: Lab) -> Trial:
    async def trial(profile: bool) -> Sample:
        async with uvicorn("bench.hello:create_app") as server:
            return await generate_load(lab, server, "get", "/", profile)

    return trial


def _latency(samples: list[Sample]) -> dict[str, tuple[list[float], str]]:
    return {
        "p50": (extras(samples, "p50"), "ms"),
        "p99": (extras(samples, "p99"), "ms"),
        "server CPU": (extras(samples, "server CPU"), "%"),
    }


async def run(lab: Lab, sections: set[str], library_rates: dict[int, list[float]]) -> list[Row]:
    rows: list[Row] = []
    one_worker_peaks: list[list[float]] = [[] for _ in range(lab.settings.rounds)]
    if sections & {"3", "6"}:
        print(f"3. Order workflow as form posts, {CONNECTIONS} connections", flush=True)
        trials = {f"uvicorn, {n} worker{'s' if n > 1 else ''}": form_posts(lab, n) for n in (1, 2)}
        samples = await lab.alternate(trials)
        for round_number, sample in enumerate(samples["uvicorn, 1 worker"]):
            one_worker_peaks[round_number].append(sample.extra["peak RSS"])
        best = max(library_rates.items(), key=lambda item: statistics.median(item[1]), default=None)
        for key, (name, trial) in zip(("3a", "3b"), trials.items(), strict=True):
            row = Row(key, f"Workflow over HTTP, {name}", "form posts", "orders/s", values(samples[name]))
            row.extra = _latency(samples[name])
            if best is not None:
                threads, rates = best
                row.baseline = f"eventsourcing in process, {threads} thread{'s' if threads > 1 else ''}"
                row.baseline_values = rates
                row.target = Target("at_least", 2.0)
            cpu = statistics.median(extras(samples[name], "server CPU"))
            await explain(lab, row, trial, WHY_HTTP.format(cpu=cpu), kind="server")
            rows.append(row)
    if sections & {"4", "6"}:
        print(f"4. Pages, {CONNECTIONS} connections, 1 worker", flush=True)
        samples = await lab.alternate({"pages": pages(lab), "hello world": hello_world(lab)})
        for name in (ORDER_PAGE, LIST_PAGE):
            for round_number, sample in enumerate(samples[name]):
                one_worker_peaks[round_number].append(sample.extra["peak RSS"])
        hello = "Litestar hello world (load generator at {:.0f}% CPU)".format(
            statistics.median(extras(samples["hello world"], "client CPU"))
        )
        for key, name in (("4a", ORDER_PAGE), ("4b", LIST_PAGE)):
            row = Row(
                key,
                f"GET {name}",
                "the app",
                "requests/s",
                values(samples[name]),
                hello,
                values(samples["hello world"]),
                Target("at_least", 0.3),
            )
            row.extra = _latency(samples[name])
            cpu = statistics.median(extras(samples[name], "server CPU"))
            await explain(lab, row, page(lab, name), WHY_PAGE.format(cpu=cpu), kind="server")
            rows.append(row)
    if "6" in sections:
        row = Row(
            "6",
            "Peak RSS of one worker under the HTTP load",
            "VmHWM",
            "MB",
            [max(peaks) for peaks in one_worker_peaks],
            target=Target("below", 150),
        )
        await explain(lab, row, form_posts(lab, 1), WHY_MEMORY, kind="server")
        rows.append(row)
    return rows
