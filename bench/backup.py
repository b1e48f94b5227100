"""Backup and restore of a large log: `uv run python -m bench.backup [--events 1000000]`.

Builds the log in a throw-away embedded PostgreSQL through `orders seed --days`'s
path (store/seed.py: decided commands, hash chains, COPY), then times what an
operator runs: `orders backup` (pg_dump of the exported snapshot and the
manifest), `orders restore` into a new embedded data folder (pg_restore,
restamp, indexes) and the restore's checks (verify, heads, read models
against a replay), and prints the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

from store.backup import backup, restore
from store.backup_checks import check_restored, report_lines
from store.database import connect_pool, embedded_postgres
from store.migrations import migrate
from store.personal import Keyring, MasterKey
from store.read.replay import CUSTOMERS, READ_MODELS, rebuild
from store.seed import seed_history

T = TypeVar("T")
EVENTS_PER_CALL = 100_000
EVENTS_PER_ORDER = 6.5  # about what seed_history's orders have


async def quiet(_done: int, _total: int) -> None:
    return None


async def timed(what: str, work: Callable[[], Awaitable[T]], figures: dict[str, float]) -> T:
    started = time.monotonic()
    result = await work()
    figures[what] = time.monotonic() - started
    print(f"{what:<34} {figures[what]:8.1f} s", flush=True)
    return result


async def build(url: str, events: int) -> int:
    pool = await connect_pool(url, min_size=1, max_size=4)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        written = 0
        # As `orders seed --days` run again and again: one master key for every call (a later call
        # opens the keys of the customers an earlier one registered, from the customers read model,
        # rebuilt in between).
        keyring = Keyring(pool, MasterKey.generate())
        while written < events:
            orders = max(1, int(min(EVENTS_PER_CALL, events - written) / EVENTS_PER_ORDER))
            written += await seed_history(pool, orders, 365, quiet, keyring=keyring)
            await rebuild(pool, CUSTOMERS)
        for name in READ_MODELS:
            await rebuild(pool, name)
        return written
    finally:
        await pool.close()


async def run(events: int, source: str, target: str, folder: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    written = await timed("build the log (seed --days path)", lambda: build(source, events), figures)
    figures["events"] = written

    async def say(line: str) -> None:
        print(f"    {line}", flush=True)

    manifest = await timed("orders backup", lambda: backup(source, folder, say), figures)
    figures["dump MB"] = sum(p.stat().st_size for p in (folder / "dump").iterdir()) / 1e6
    await timed("orders restore: load", lambda: restore(target, folder, say), figures)

    async def migrate_target() -> None:
        pool = await connect_pool(target, min_size=1, max_size=1)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
        finally:
            await pool.close()

    await timed("orders restore: migrate", migrate_target, figures)
    checks = await timed("orders restore: checks", lambda: check_restored(target, manifest), figures)
    for line in report_lines(checks):
        print(f"    {line}")
    figures["differences"] = sum(len(c.differences) for c in checks)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}, {os.cpu_count()} cores")
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="orders-bench-backup-")))
        source = stack.enter_context(embedded_postgres(scratch / "source", delete=True))
        target = stack.enter_context(embedded_postgres(scratch / "target", delete=True))
        figures = asyncio.run(run(args.events, source, target, scratch / "backup"))
        shutil.rmtree(scratch / "backup", ignore_errors=True)
    restore_total = sum(v for k, v in figures.items() if k.startswith("orders restore"))
    print(
        f"\n{figures['events']:,.0f} events: backup {figures['orders backup']:.1f} s "
        f"({figures['dump MB']:.0f} MB), restore {restore_total:.1f} s "
        f"(load {figures['orders restore: load']:.1f} s, checks {figures['orders restore: checks']:.1f} s), "
        f"{figures['differences']:.0f} differences; load average after: {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
