"""The `orders` command: serve the app, migrate, replay, seed, export, verify; accounts and tokens.

The only code that reads the process's environment: it builds the Settings
once, from the variables and flags, and hands them down.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click
import msgspec

from store.log.export import FORMATS
from store.read.replay import READ_MODELS
from web.cli import accounts, backup, customers, jobs, serving
from web.cli.multiprocess import shared_metrics
from web.cli.startup import database, exit_with
from web.settings import Settings, from_environment

if TYPE_CHECKING:
    from litestar import Litestar

# Served to people, writes are limited per client unless ORDERS_WRITE_LIMIT says otherwise.
DEFAULT_WRITE_LIMIT = "300/minute"
# How `orders serve` hands its settings to uvicorn's workers (app_factory); not for people to set.
SERVE_SETTINGS = "ORDERS_SERVE_SETTINGS"


def main(argv: Sequence[str] | None = None) -> int:
    """The console script `orders`; returns the exit code."""
    try:
        orders.main(args=argv, prog_name="orders")
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else int(done.code is not None)
    return 0


def app_factory() -> Litestar:
    """The factory uvicorn calls in each worker: the settings `orders serve` built, else the environment's."""
    from web.app import create_app

    encoded = os.environ.get(SERVE_SETTINGS)
    settings = msgspec.json.decode(encoded, type=Settings) if encoded else from_environment(os.environ)
    app = create_app(settings)
    signals = serving.StopSignals()
    app.on_startup.append(signals.watch)
    app.on_shutdown.append(signals.restore)
    return app


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def orders() -> None:
    """The event-sourced order service."""


orders.add_command(accounts.users)
orders.add_command(accounts.tokens)
orders.add_command(backup.backup_command)
orders.add_command(backup.restore_command)
orders.add_command(backup.import_command)
orders.add_command(customers.customers)
orders.add_command(customers.keys)


@orders.command()
@click.option("--host", envvar="ORDERS_HOST", default="127.0.0.1", show_default=True, show_envvar=True)
@click.option("--port", envvar="ORDERS_PORT", type=int, default=8000, show_default=True, show_envvar=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="uvicorn workers")
@click.option(
    "--grace",
    type=click.FloatRange(min=0, min_open=True, max=3600),
    help="seconds in-flight requests get to finish at a stop  [default: ORDERS_SHUTDOWN_SECONDS, else 10]",
)
def serve(host: str, port: int, workers: int, grace: float | None) -> None:
    """Run the web app (embedded PostgreSQL unless DATABASE_URL); SIGTERM or Ctrl-C stops it gracefully."""
    with shared_metrics(workers), database(write_limit=DEFAULT_WRITE_LIMIT) as (settings, _):
        os.environ[SERVE_SETTINGS] = msgspec.json.encode(settings).decode()
        token = asyncio.run(accounts.setup_token(settings))
        if token:
            click.echo(
                f"orders: no admin account yet. Open http://{host}:{port}/setup?token={token} to create "
                "the first admin; the link works once.",
                err=True,
            )
        click.echo(f"orders: serving on http://{host}:{port}", err=True)
        serving.run(host=host, port=port, workers=workers, grace=grace or settings.shutdown_seconds)
    click.echo("orders: stopped", err=True)


@orders.command()
def migrate() -> None:
    """Apply the database migrations and exit."""
    with database() as (_, applied):
        click.echo(f"orders: applied {', '.join(applied)}" if applied else "orders: nothing to apply")


def _known_read_models(ctx: click.Context, param: click.Parameter, names: tuple[str, ...]) -> list[str]:
    if unknown := set(names) - set(READ_MODELS):
        raise click.UsageError(
            f"unknown read model {', '.join(sorted(unknown))}; there are {', '.join(READ_MODELS)}", ctx
        )
    return list(names) or list(READ_MODELS)


@orders.command(
    short_help="Rebuild read models from the event log.",
    help=f"Rebuild read models from the event log (default: all of {', '.join(READ_MODELS)}).",
)
@click.argument("names", metavar="[NAME]...", nargs=-1, callback=_known_read_models)
def replay(names: list[str]) -> None:
    with database() as (settings, _):
        exit_with(asyncio.run(jobs.replay_read_models(settings, names)))


@orders.command()
@click.option("--orders", "count", type=click.IntRange(min=0), default=200, show_default=True)
@click.option(
    "--days", type=click.IntRange(min=1, max=3650), help="spread the orders over this many past days"
)
def seed(count: int, days: int | None) -> None:
    """Write realistic demo orders (now, or over the past --days)."""
    with database() as (settings, _):
        exit_with(asyncio.run(jobs.seed_orders(settings, count, days)))


@orders.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="ndjson", show_default=True)
@click.option("--order", help="only this order's stream")
@click.option("--output", "-o", help="file to write (default: standard output)")
def export(fmt: str, order: str | None, output: str | None) -> None:
    """Write the event log as NDJSON or CSV."""
    with database() as (settings, _):
        exit_with(asyncio.run(jobs.export_log(settings, fmt, order, output)))


@orders.command()
def verify() -> None:
    """Check every stream's hash chain and the read model; exit 1 on any difference."""
    with database() as (settings, _):
        exit_with(asyncio.run(jobs.verify_log(settings)))
