"""`orders backup DIR`, `orders restore DIR` and `orders import FILE`."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import click

from store.backup import BackupRefused, backup, restore
from store.backup_checks import check_restored, report_lines
from store.database import UNAVAILABLE, DatabaseUnavailable, connect_pool, embedded_postgres
from store.log.importing import ImportRefused, import_export
from store.migrations import migrate
from store.read.replay import READ_MODELS, rebuild
from web.cli.jobs import master_key_lines, progress
from web.cli.startup import DEFAULT_DATA_DIR, database, exit_with, fail
from web.settings import Settings, SettingsError, from_environment


def _say(line: str) -> None:
    click.echo(f"orders: {line}", err=True)


@click.command("backup")
@click.argument("folder", type=click.Path(path_type=Path))
def backup_command(folder: Path) -> None:
    """Back the database up into FOLDER (new or empty): a pg_dump and a manifest of every stream's head."""
    with database() as (settings, _):
        try:
            manifest = asyncio.run(backup(settings.database_url, folder, _say))
        except BackupRefused as error:
            fail(str(error), 1)
        except RuntimeError as error:
            fail(f"the backup failed: {error}", 1)
    click.echo(
        f"orders backup: {manifest.events:,} events of {len(manifest.streams):,} orders, "
        f"up to position {manifest.last_position:,}, into {folder}"
    )


@click.command("restore")
@click.argument("folder", type=click.Path(path_type=Path, exists=True, file_okay=False))
def restore_command(folder: Path) -> None:
    """Restore the backup in FOLDER into a new embedded data folder or an empty DATABASE_URL, then check it.

    Exits 1 if the target is not empty (nothing is changed) or a check finds a difference.
    """
    try:
        settings = from_environment(os.environ)
    except SettingsError as error:
        fail(str(error))
    if settings.database_url:
        exit_with(_restore(settings.database_url, folder, settings))
        return
    data = Path(os.environ.get("ORDERS_DATA_DIR", DEFAULT_DATA_DIR)).resolve() / "postgres"
    if data.exists() and any(data.iterdir()):
        fail(f"{data} is not empty: restore into a new data folder (set ORDERS_DATA_DIR)", 1)
    _say(f"starting the embedded PostgreSQL in {data}")
    with embedded_postgres(data) as url:
        code = _restore(url, folder, settings)
    exit_with(code)


def _restore(url: str, folder: Path, settings: Settings) -> int:
    started = time.monotonic()
    try:
        manifest = asyncio.run(restore(url, folder, _say))
    except BackupRefused as error:
        _say(str(error))
        return 1
    except (DatabaseUnavailable, *UNAVAILABLE) as error:
        _say(f"cannot reach the target database: {error}")
        return 2
    except RuntimeError as error:
        _say(f"the restore failed: {error}")
        return 1
    asyncio.run(_migrate(url))
    checks = asyncio.run(check_restored(url, manifest))
    click.echo(
        f"orders restore: restored the backup of {manifest.taken_at} in {time.monotonic() - started:.1f} s"
    )
    for line in asyncio.run(_master_key_lines(url, settings)):  # the backup's keys and this master key
        click.echo(f"orders restore: {line}")
    for line in report_lines(checks):
        click.echo(f"orders restore: {line}" if not line.startswith(" ") else line)
    return 0 if all(c.ok for c in checks) else 1


async def _master_key_lines(url: str, settings: Settings) -> list[str]:
    pool = await connect_pool(url, min_size=1, max_size=1)
    try:
        return await master_key_lines(pool, settings)
    finally:
        await pool.close()


async def _migrate(url: str) -> None:
    pool = await connect_pool(url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)  # a backup of an older release gets this release's migrations
    finally:
        await pool.close()


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
def import_command(file: Path) -> None:
    """Load FILE, an NDJSON `orders export`, into an empty database, checking every hash chain.

    A file changed after its export is refused at the first line that does not fit, and nothing is written.
    """
    with database() as (settings, _):
        exit_with(asyncio.run(_import(settings.database_url, file)))


async def _import(url: str, file: Path) -> int:
    pool = await connect_pool(url, min_size=1, max_size=3)
    try:
        with file.open("rb") as lines:
            try:
                chain = await import_export(pool, lines)
            except ImportRefused as error:
                click.echo(f"orders import: refused, nothing written: {file}: {error}", err=True)
                return 1
        for name in READ_MODELS:
            async with progress(name, "events") as update:
                await rebuild(pool, name, update)
    finally:
        await pool.close()
    click.echo(f"orders import: {chain.events:,} events of {len(chain.heads):,} orders from {file}")
    return 0
