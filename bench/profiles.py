"""Where the time goes: pyinstrument in process, py-spy attached to a server worker."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg

PROFILE_LINES = 70
ROOT = Path(__file__).resolve().parent.parent


class InProcessProfile:
    """pyinstrument around a block, when `enabled`; its text report lands in `.text`."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.text = ""
        self._profiler: Any = None

    def __enter__(self) -> InProcessProfile:
        if not self.enabled:
            return self
        try:
            from pyinstrument import Profiler
        except ImportError:
            self.text = "(pyinstrument is not installed: run with `uv run --group bench`)"
            return self
        # async_mode "disabled" samples the event loop's own stack, so CPU spent in
        # asyncpg's protocol and in the loop shows up instead of being folded into awaits.
        self._profiler = Profiler(interval=0.0005, async_mode="disabled")
        self._profiler.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._profiler is None:
            return
        self._profiler.stop()
        text = self._profiler.output_text(unicode=False, color=False, show_all=False)
        self.text = _trim(text)


# What the benchmark's backends are doing, one row per backend; "CPU" when it runs and waits on nothing.
_BACKEND_STATES = """
SELECT CASE
         WHEN state = 'active' THEN coalesce(wait_event_type || ': ' || wait_event, 'CPU (running)')
         ELSE state || coalesce(' (' || wait_event || ')', '')
       END
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND datname LIKE 'bench\\_%' AND pid <> pg_backend_pid()
"""


class DatabaseWaits:
    """Samples pg_stat_activity every few milliseconds: where the server's backends spend their time."""

    def __init__(self, admin: asyncpg.Connection, enabled: bool, interval: float = 0.005) -> None:
        self.admin = admin
        self.enabled = enabled
        self.interval = interval
        self.counts: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DatabaseWaits:
        if self.enabled:
            self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sample(self) -> None:
        while True:
            for (state,) in await self.admin.fetch(_BACKEND_STATES):
                self.counts[state] += 1
            await asyncio.sleep(self.interval)

    @property
    def text(self) -> str:
        total = sum(self.counts.values())
        if not total:
            return ""
        lines = ["PostgreSQL backends, share of samples of pg_stat_activity:"]
        lines += [f"{100 * n / total:8.1f}%  {state}" for state, n in self.counts.most_common(12)]
        return "\n".join(lines)


def join(*texts: str) -> str:
    return "\n\n".join(text for text in texts if text)


def _trim(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > PROFILE_LINES:
        lines = [*lines[:PROFILE_LINES], f"... ({len(lines) - PROFILE_LINES} more lines)"]
    return "\n".join(lines)


def py_spy_path() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def py_spy(pid: int, seconds: float) -> str:
    """Sample process `pid` (and its worker subprocesses) for `seconds`; a summary of the stacks."""
    binary = py_spy_path()
    if binary is None:
        return "(py-spy is not installed: run with `uv run --group bench`)"
    with tempfile.TemporaryDirectory(prefix="bench-py-spy-") as folder:
        output = Path(folder) / "stacks.txt"
        process = await asyncio.create_subprocess_exec(
            binary,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--nonblocking",
            "--nolineno",
            "--full-filenames",
            "--rate",
            "250",
            "--duration",
            str(max(1, round(seconds))),
            "--format",
            "raw",
            "--output",
            str(output),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        log, _ = await process.communicate()
        if process.returncode != 0 or not output.exists():
            return f"(py-spy failed with {process.returncode}: {log.decode(errors='replace')[-500:]})"
        return summarise_stacks(output.read_text())


# Where a sample's innermost frame lives says which layer was on the CPU.
LAYERS = (
    ("uvicorn/", "HTTP server (uvicorn)"),
    ("h11/", "HTTP server (uvicorn)"),
    ("httptools/", "HTTP server (uvicorn)"),
    ("litestar", "Litestar (routing, middleware, CSRF, forms, responses)"),
    ("multipart", "Litestar (routing, middleware, CSRF, forms, responses)"),
    ("anyio/", "Litestar (routing, middleware, CSRF, forms, responses)"),
    ("jinja2/", "Jinja templates"),
    ("markupsafe/", "Jinja templates"),
    (".html", "Jinja templates"),
    ("asyncpg/", "asyncpg"),
    ("store/", "store/ (this app)"),
    ("domain/", "domain/ (this app)"),
    ("web/", "web/ (this app)"),
    ("asyncio/", "event loop (uvloop, asyncio)"),
    ("uvloop/", "event loop (uvloop, asyncio)"),
)


# Functions whose inclusive share the explanations refer to, shown whatever their rank.
WATCHED = (
    "handle",
    "EventStore.read_stream",
    "EventStore.append",
    "PoolConnectionHolder.release",
    "SubscriptionRunner.catch_up",
    "Template.render",
    "timeline",
    "state_at",
    "fold",
)


def layer(frame: str) -> str:
    for needle, name in LAYERS:
        if needle in frame:
            return name
    return "other (stdlib, msgspec, uuid …)"


def summarise_stacks(collapsed: str, top: int = 30) -> str:
    """Self time by layer, then inclusive and self shares of functions, from py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # With --subprocesses the first frame names the process; skip it.
        frames = [_short(frame) for frame in stack.split(";") if not frame.startswith("process ")]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            own[frames[-1]] += count
            layers[layer(frames[-1])] += count
    if total == 0:
        return "(py-spy recorded no samples)"
    lines = [f"py-spy: {total} samples of the worker on the CPU", "", "self time by layer"]
    lines += [f"{100 * n / total:8.1f}%  {name}" for name, n in layers.most_common()]
    # Frames on (nearly) every stack of the server say nothing: uvicorn's main, the loop's run.
    widest = max(inclusive.values())
    telling = [(name, n) for name, n in inclusive.most_common() if n < 0.95 * widest][:top]
    lines += ["", "inclusive  function (file)"]
    lines += [f"{100 * n / total:8.1f}%  {name}" for name, n in telling]
    lines += ["", "self       function (file)"]
    lines += [f"{100 * n / total:8.1f}%  {name}" for name, n in own.most_common(top // 2)]
    watched = [(name, n) for name, n in inclusive.most_common() if name.split(" (")[0] in WATCHED]
    if watched:
        lines += ["", "inclusive  functions the explanation refers to"]
        lines += [f"{100 * n / total:8.1f}%  {name}" for name, n in watched]
    return "\n".join(lines)


def _short(frame: str) -> str:
    """'handle (store/log/commands.py)' from a frame naming a long path, with or without a line."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")")
    if path.rpartition(":")[2].isdigit():
        path = path.rpartition(":")[0]
    if "site-packages/" in path:
        path = path.split("site-packages/")[-1]
    elif path.startswith(f"{ROOT}/"):
        path = path[len(str(ROOT)) + 1 :]
    else:
        path = "/".join(Path(path).parts[-2:])
    return f"{name} ({path})"
