"""What each `orders` command does once the database is up; each returns the exit code."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from store.application import Orders
from store.database import UNAVAILABLE, DatabaseUnavailable, connect_pool, shared_secret
from store.log.export import export
from store.log.integrity import KINDS, Report, verify
from store.migrations import migrate
from store.personal.master import MasterKeyError, configured
from store.personal.rotation import pending_file, settle
from store.read.parking import ParkingEntry, entries
from store.read.replay import RebuildInProgress, rebuild
from store.seed import seed
from web.settings import Settings

Update = Callable[[int, int], Awaitable[None]]


def orders_of(settings: Settings, pool: asyncpg.Pool) -> Orders:
    """The application layer as the CLI's jobs use it: the configured master key, the service acting."""
    master = configured(settings.master_key_file, settings.master_secret)
    return Orders(pool, snapshot_every=settings.snapshot_every, master=master)


async def prepare(url: str) -> tuple[list[str], str]:
    """Migrate the database and fetch the shared signing secret; one clear error if unreachable."""
    pool = await connect_pool(url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            applied = await migrate(conn)
        return applied, await shared_secret(pool, "csrf")
    finally:
        await pool.close()


async def settle_master_key(url: str, key_file: Path) -> str | None:
    """Finish or undo a master key rotation a crash interrupted; what was done, if anything."""
    if not pending_file(key_file).exists():
        return None
    pool = await connect_pool(url, min_size=1, max_size=1)
    try:
        return await settle(pool, key_file)
    finally:
        await pool.close()


async def replay_read_models(settings: Settings, names: list[str]) -> int:
    pool = await connect_pool(settings.database_url, min_size=1, max_size=3)
    try:
        for name in names:
            try:
                async with progress(name, "events") as update:
                    await rebuild(pool, name, update)
            except RebuildInProgress as error:
                click.echo(f"orders: {error}", err=True)
                return 1
    finally:
        await pool.close()
    return 0


async def seed_orders(settings: Settings, count: int, days: int | None = None) -> int:
    from store.read.replay import READ_MODELS
    from store.seed import seed_history

    pool = await connect_pool(settings.database_url, min_size=2, max_size=10)
    try:
        if days is None:
            async with progress("seeding", "commands") as update:
                await seed(orders_of(settings, pool), count, update)
            return 0
        async with progress(f"seeding {days} days", "events") as update:
            await seed_history(pool, count, days, update, keyring=orders_of(settings, pool).keyring)
        for name in READ_MODELS:  # the history is written as the import writes: the read models follow
            async with progress(name, "events") as update:
                await rebuild(pool, name, update)
    finally:
        await pool.close()
    return 0


async def export_log(settings: Settings, fmt: str, order: str | None, output: str | None) -> int:
    pool = await connect_pool(settings.database_url, min_size=1, max_size=2)
    try:
        target = open(output, "wb") if output else os.fdopen(os.dup(sys.stdout.fileno()), "wb")  # noqa: ASYNC230, SIM115
        with target as out:
            async for chunk in export(pool, fmt, order):
                out.write(chunk)
    except BrokenPipeError:  # `orders export | head`: the reader has all it wants
        return 0
    finally:
        await pool.close()
    return 0


_KEY_WRAPPINGS = "SELECT master_key_id, count(*) FROM customer_keys GROUP BY 1 ORDER BY 2 DESC, 1"


async def master_key_lines(pool: asyncpg.Pool, settings: Settings) -> list[str]:
    """Whether the configured master key opens the customer keys (ids only): after a restore of a
    backup older than a rotation, it does not."""
    wrappings = [tuple(row) for row in await pool.fetch(_KEY_WRAPPINGS)]
    if not wrappings:
        return []
    key_file = Path(settings.master_key_file) if settings.master_key_file else None
    if key_file is not None and not key_file.exists():
        return [f"no master key file at {key_file}: no customer's personal data can be opened"]
    try:
        master = configured(settings.master_key_file, settings.master_secret)
    except MasterKeyError as error:
        return [str(error)]
    total = sum(count for _, count in wrappings)
    if master is None:
        return [f"no master key configured: the {total:,} customer keys cannot be opened"]
    lines = []
    for key_id, count in wrappings:
        if key_id == master.id:
            lines.append(
                f"{count:,} of {total:,} customer keys are wrapped by the configured master key {key_id}"
            )
        else:
            lines.append(
                f"{count:,} of {total:,} customer keys are wrapped by master key {key_id}, "
                f"not the configured {master.id}: those customers' personal data cannot be opened "
                "(a backup from before a rotation: only the old master key opens them, and if it was "
                "destroyed, nothing does)"
            )
    return lines


async def verify_log(settings: Settings) -> int:
    try:
        pool = await connect_pool(settings.database_url, min_size=1, max_size=2)
        try:
            report = await verify(pool)
            set_aside = await entries(pool, ("skipped", "dropped"))
            keys = await master_key_lines(pool, settings)
        finally:
            await pool.close()
    except (DatabaseUnavailable, *UNAVAILABLE) as error:
        click.echo(f"orders verify: the database went away: {error}", err=True)
        return 2
    lines = report_lines(report)
    lines[-1:-1] = set_aside_lines(set_aside) + keys  # the verdict stays the last line
    for line in lines:
        click.echo(f"orders verify: {line}" if not line.startswith(" ") else line)
    # A skip or a drop is a person's recorded decision, not a broken log: shown, never a failure.
    return 0 if report.ok else 1


def set_aside_lines(found: list[ParkingEntry]) -> list[str]:
    """The parked events admins skipped and the parked messages they dropped, with who, when and why."""
    if not found:
        return []
    lines = [f"{len(found):,} set aside by an admin (recorded decisions, not integrity failures):"]
    for e in found:
        what = (
            f"message {e.notification_id} ({e.event_type}) of order {e.stream_id}"
            if e.kind == "dropped"
            else f"{e.event_type} v{e.version} of order {e.stream_id} (event {e.event_id})"
        )
        lines.append(
            f"  {e.at:%Y-%m-%d %H:%M:%S%z} {e.subscription}: {e.kind} {what} by {e.actor_name}: {e.reason!r}"
        )
    return lines


def report_lines(report: Report, shown: int = 50) -> list[str]:
    """The report as `orders verify` prints it: a line per check, then what each found."""
    seconds = (report.finished_at - report.started_at).total_seconds()
    lines = [
        f"checked {report.streams:,} streams, {report.events:,} events and "
        f"{report.read_model_rows:,} order_read_model rows in {seconds:.2f} s"
    ]
    left = shown
    for kind, check in KINDS.items():
        found = [f for f in report.findings if f.kind == kind]
        lines.append(f"  {'ok' if not found else len(found):<5} {check}")
        for finding in found[: max(left, 0)]:
            lines.append(f"        {finding.stream_id}: {finding.detail}")
        if len(found) > max(left, 0):
            lines.append(f"        … and {len(found) - max(left, 0):,} more")
        left -= len(found)
    lines.append(f"log digest {report.digest}")
    problems = len(report.findings)
    lines.append(f"{problems:,} difference{'s' * (problems != 1)} found" if problems else "no differences")
    return lines


@asynccontextmanager
async def progress(name: str, unit: str) -> AsyncIterator[Update]:
    """A progress bar on stderr, fed `(done, total)`; a closing line says how many and how long."""
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description:<20}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeRemainingColumn(),
    )
    started = time.monotonic()
    done = 0
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(name, total=None)

        async def update(count: int, total: int) -> None:
            nonlocal done
            done = count
            bar.update(task, completed=count, total=total)

        yield update
    console.print(f"{name:<20} done: {done:,} {unit} in {time.monotonic() - started:.1f}s", highlight=False)
