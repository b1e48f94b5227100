"""The soak's record and report: a row per window of time, and memory from start to end."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bench.read_side import percentile
from bench.report import machine
from bench.results import fmt


@dataclass
class Window:
    """What happened to the requests due in one window of time."""

    latencies: list[float] = field(default_factory=list)  # ms, of every answered request
    writes: list[float] = field(default_factory=list)  # ms, of the form posts among them
    by_action: dict[str, list[float]] = field(default_factory=dict)  # ms, of each action's requests
    errors: Counter[str] = field(default_factory=Counter)
    memory: dict[str, float] = field(default_factory=dict)  # the last sample taken in the window
    load: float = 0.0


@dataclass
class Record:
    seconds: float
    rate: float
    window: float
    windows: list[Window] = field(default_factory=list)
    done: Counter[str] = field(default_factory=Counter)  # answered requests, by action
    ended: float | None = None  # seconds, when stopped before its time (a warm-up, its caches full)

    def __post_init__(self) -> None:
        self.windows = [Window() for _ in range(max(1, round(self.seconds / self.window)))]

    def at(self, elapsed: float) -> Window:
        return self.windows[min(int(elapsed // self.window), len(self.windows) - 1)]

    @property
    def errors(self) -> Counter[str]:
        return sum((w.errors for w in self.windows), Counter[str]())


def _p(values: list[float], q: float) -> str:
    return fmt(percentile(values, q)) if values else "–"


def _memory(value: float | None, name: str) -> str:
    if value is None:
        return "–"
    return str(int(value)) if name.endswith("processes") else f"{value:.1f}"


def table(record: Record) -> list[list[str]]:
    """A header, then a row per window: answered, errors, latency, memory (MB) and load."""
    names = list(dict.fromkeys(name for w in record.windows for name in w.memory))
    minutes = record.window % 60 == 0
    header = [f"end ({'min' if minutes else 's'})", "answered", "errors", "p50 ms", "p99 ms", "p99 writes ms"]
    rows = [[*header, *names, "load"]]
    for n, w in enumerate(record.windows):
        end = (n + 1) * record.window / (60 if minutes else 1)
        median = fmt(statistics.median(w.latencies)) if w.latencies else "–"
        figures = [median, _p(w.latencies, 0.99), _p(w.writes, 0.99)]
        memory = [_memory(w.memory.get(name), name) for name in names]
        rows.append([f"{end:g}", str(len(w.latencies)), str(sum(w.errors.values())), *figures, *memory])
        rows[-1].append(f"{w.load:.1f}")
    return rows


def plain(cells: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells)


def by_action(record: Record) -> list[list[str]]:
    """p99 of each action in each window, to tell which one moves."""
    actions = list(dict.fromkeys(action for w in record.windows for action in w.by_action))
    rows = [["window", *actions]]
    for n, w in enumerate(record.windows, 1):
        rows.append([str(n), *(_p(w.by_action.get(action, []), 0.99) for action in actions)])
    return rows


def growth(record: Record) -> list[str]:
    """Each memory figure over the second half of the run: the first half settles (the C
    allocator's free lists after a page cache filled; PostgreSQL touches its buffers; without a
    warm-up, each worker's page cache and per-order caches fill to their bounds).

    A worker whose page cache was still filling in the second half (it had served few pages
    before: a client's keep-alive connections stay with one worker) is said to be warming up, not
    judged. PostgreSQL's private memory is judged per process: a pool that opens connections adds
    backends, each with its own caches, which is not a leak.
    """
    lines = []
    windows = record.windows
    first = windows[max(len(windows) // 2 - 1, min(1, len(windows) - 1))].memory
    last = windows[-1].memory
    for name, before in first.items():
        if name.endswith(("processes", "page cache")) or name not in last:
            continue
        after = last[name]
        count = name.endswith("blocks (k)")  # a count, not MB: a leak shows here as a rise
        if count:
            text = f"{name.replace(' (k)', '')}: {before:,.0f}k → {after:,.0f}k ({after / before - 1:+.1%})"
            verdict = "flat" if abs(after - before) <= 0.05 * before else "GROWING"
        else:
            text = f"{name}: {before:.1f} → {after:.1f} MB ({after - before:+.1f})"
            processes = (first.get("PostgreSQL processes", 1), last.get("PostgreSQL processes", 1))
            if name == "PostgreSQL private" and processes[0] != processes[1]:
                before, after = before / processes[0], after / processes[1]
                each = f"{before:.2f} → {after:.2f} each"
                text += f" over {processes[0]:.0f} → {processes[1]:.0f} processes, {each}"
            verdict = "flat" if abs(after - before) <= max(5.0, 0.05 * before) else "GROWING"
        cache = name.split(" RSS")[0].split(" Python")[0] + " page cache"
        if (
            name.startswith("worker")
            and cache in first
            and cache in last
            and first[cache] < 0.9 * last[cache]
        ):
            filled = f"{first[cache]:.1f} to {last[cache]:.1f} MB"
            verdict = f"warming up (its page cache filled from {filled} meanwhile)"
        if name == "PostgreSQL shared" and verdict != "flat":
            verdict = "its shared buffers being touched: bounded by shared_buffers"
        lines.append(f"{text}, {verdict}")
    return lines


def _markdown_table(cells: list[list[str]]) -> list[str]:
    head, *body = cells
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in body),
    ]


def markdown(record: Record, command: str, facts: dict[str, str], where: str) -> str:
    cells = table(record)
    errors = ", ".join(f"{kind} ×{count}" for kind, count in record.errors.most_common()) or "0"
    answered = sum(len(w.latencies) for w in record.windows)
    warm = facts.get("warm-up")
    warmed = [f"Before them, not in the table, a warm-up: {warm}.", ""] if warm else []
    lines = [
        "# Soak",
        "",
        "Written by `python -m bench.soak`. Produced by:",
        "",
        f"    {command}",
        "",
        f"on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {record.seconds:g} s at {record.rate:g} requests/s, "
        f"open loop; {answered:,} answered; errors: {errors}.",
        "",
        "Answered, by action: " + ", ".join(f"{a} {n:,}" for a, n in record.done.most_common()) + ".",
        "",
        *warmed,
        *machine(facts, where)[:-1],
        f"- Other work on the machine (1-minute load average; PSI CPU pressure, 60 s): {facts['load']}",
        "",
        *_markdown_table(cells),
        "",
        "p99 ms by action, each window:",
        "",
        *_markdown_table(by_action(record)),
        "",
        "Memory over the second half of the run (flat: within 5 MB or 5%):",
        "",
        *(f"- {line}" for line in growth(record)),
        "",
        "Latency runs from when the request was due to its answer, so it includes any wait of the "
        "load generator itself for a CPU. Memory is sampled from /proc every few seconds; a row "
        "shows the window's last sample: VmRSS of each uvicorn worker; PostgreSQL's private memory "
        "is RssAnon summed over its processes (and the largest one's), its shared memory the "
        "largest RssShmem (shared buffers touched, which grows until they are warm), over all of "
        "the server's processes (with DATABASE_URL, those serving other databases too). A worker's "
        "page cache is `orders_page_cache_bytes` from /metrics: the rendered HTML it keeps, "
        "estimated, which fills up to ORDERS_PAGE_CACHE_MB (32 by default) and stays there; a "
        "worker's memory is judged besides it. Python blocks are `orders_python_allocated_blocks` "
        "(sys.getallocatedblocks, thousands): the objects a worker keeps; RSS rising while they "
        "stay flat is the C allocator's fragmentation, not objects kept.",
        "",
    ]
    return "\n".join(lines)
