"""How every `orders` command starts: the settings, then a database up and migrated."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import NoReturn

import click
import msgspec

from store.database import DatabaseUnavailable, embedded_postgres
from web.cli import jobs
from web.settings import Settings, SettingsError, from_environment

DEFAULT_DATA_DIR = ".data"


@contextmanager
def database(*, write_limit: str | None = None) -> Iterator[tuple[Settings, list[str]]]:
    """The settings, with the database up and migrated: DATABASE_URL, or an embedded PostgreSQL.

    Yields them and the migrations just applied. Exits 2 with one line on stderr when a
    variable makes no sense or the database cannot be reached.
    """
    # SIGTERM stops a command as Ctrl-C does: by KeyboardInterrupt, so every `with` below is left
    # and the embedded PostgreSQL too. Python's default for it ends the process on the spot.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        settings = from_environment(os.environ, write_limit=write_limit)
    except SettingsError as error:
        fail(str(error))
    with ExitStack() as stack:
        try:
            url = settings.database_url or _embedded(stack)
            applied, secret = asyncio.run(jobs.prepare(url))
        except DatabaseUnavailable as error:
            fail(str(error))
        except Exception as error:  # the embedded server failed to start, most often
            fail(f"cannot start the database: {error}")
        if settings.master_key_file:  # a key rotation a crash interrupted (store/personal/rotation.py)
            settled = asyncio.run(jobs.settle_master_key(url, Path(settings.master_key_file)))
            if settled:
                click.echo(f"orders: {settled}", err=True)
        secret = settings.csrf_secret or secret  # ORDERS_SECRET, else the one made once per database
        yield msgspec.structs.replace(settings, database_url=url, csrf_secret=secret), applied


def _embedded(stack: ExitStack) -> str:
    folder = Path(os.environ.get("ORDERS_DATA_DIR", DEFAULT_DATA_DIR)).resolve() / "postgres"
    click.echo(f"orders: starting the embedded PostgreSQL in {folder}", err=True)
    url = stack.enter_context(embedded_postgres(folder))
    stack.callback(_ignore_stop_signals)  # runs first on the way out, before PostgreSQL is left
    return url


def _ignore_stop_signals() -> None:
    """Leaving the embedded PostgreSQL may stop it: a second Ctrl-C or SIGTERM must not cut that short."""
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, and the exit status (2: the settings or the database)."""
    click.echo(f"orders: {message}", err=True)
    raise SystemExit(code)


def exit_with(code: int) -> None:
    if code:
        raise SystemExit(code)
