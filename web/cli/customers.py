"""`orders customers …` and `orders keys rotate`: customers' personal data, for operators.

`forget` acts as the orders command (a system actor naming the operating-system
user) or as the admin account `--as` names; the CustomerForgotten event's
metadata says which. `list` shows ids and status, personal details only when
asked. `keys rotate` rewraps every customer key under a new master key
(store/personal/rotation.py). Each works while `orders serve` runs on the same
data folder, as every command does (web/cli/startup.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from uuid import uuid4

import asyncpg
import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from domain.access import Actor
from domain.customer import ForgetCustomer
from domain.errors import DomainError
from store.access.accounts import Accounts
from store.application import Envelope
from store.database import UNAVAILABLE, DatabaseUnavailable, connect_pool
from store.personal.master import MasterKey, MasterKeyError, configured
from store.personal.rotation import rotate
from web.cli.accounts import the_command
from web.cli.jobs import orders_of
from web.cli.startup import database, exit_with
from web.settings import Settings

Work = Callable[[Settings, asyncpg.Pool], Awaitable[int]]


def run(work: Work) -> None:
    with database() as (settings, _):
        exit_with(asyncio.run(_on_database(settings, work)))


async def _on_database(settings: Settings, work: Work) -> int:
    try:
        pool = await connect_pool(settings.database_url, min_size=1, max_size=2)
        try:
            return await work(settings, pool)
        finally:
            await pool.close()
    except (DatabaseUnavailable, *UNAVAILABLE) as error:
        click.echo(f"orders: the database went away: {error}", err=True)
        return 2
    except MasterKeyError as error:
        click.echo(f"orders: {error}", err=True)
        return 1


@click.group()
def customers() -> None:
    """Customers and their personal data: list them, forget one."""


@customers.command()
@click.argument("customer_id")
@click.option("--reason", required=True, help="why they are forgotten (kept in the log; no personal data)")
@click.option("--as", "admin", metavar="ADMIN", help="the admin account acting (default: the orders command)")
def forget(customer_id: str, reason: str, admin: str | None) -> None:
    """Forget a customer: delete their key, so their name, email and address read as erased everywhere."""

    async def work(settings: Settings, pool: asyncpg.Pool) -> int:
        actor = await _actor(pool, admin)
        if actor is None:
            click.echo(f"orders: no admin account called {admin}", err=True)
            return 1
        orders = orders_of(settings, pool).acting_as(actor)
        before = await orders.customers.row(customer_id)
        try:
            after = await orders.forget_customer(ForgetCustomer(customer_id, reason), Envelope(uuid4()))
        except DomainError as refused:
            if before is None:
                click.echo(f"orders: no customer {customer_id}", err=True)
            else:
                click.echo(f"orders: {refused}", err=True)
            return 1
        if before is not None and before.status == "forgotten":
            click.echo(
                f"orders: customer {customer_id} was already forgotten "
                f"({before.updated_at:%Y-%m-%d %H:%M}, reason: {before.forgotten_reason!r}); nothing to do"
            )
            return 0
        click.echo(
            f"orders: forgot customer {customer_id} as {actor.name}: their key is deleted, so their name, "
            f"email address and shipping address read as erased everywhere (version {after.version}, "
            f"reason: {reason!r})"
        )
        return 0

    run(work)


async def _actor(pool: asyncpg.Pool, admin: str | None) -> Actor | None:
    """The orders command itself, or the named admin account (None: no such enabled admin)."""
    if admin is None:
        return the_command()
    account = await Accounts(pool).find(admin)
    if account is None or account.role != "admin" or account.disabled_at is not None:
        return None
    return account.actor


@customers.command(name="list")
@click.option("--show-details", is_flag=True, help="also their name, email and address (personal data)")
@click.option("--prefix", help="only customer ids starting with this")
def list_customers(show_details: bool, prefix: str | None) -> None:
    """The customers, newest first: ids and status (no personal data unless --show-details)."""

    async def work(settings: Settings, pool: asyncpg.Pool) -> int:
        orders = orders_of(settings, pool)
        table = Table("customer", "status", "registered", "version", box=None)
        if show_details:
            for column in ("name", "email", "address"):
                table.add_column(column)
        after, count = None, 0
        while True:
            page, after = await orders.list_customers(after, 500, prefix)
            for c in page:
                details = (c.name, c.email, c.address.replace("\n", ", ")) if show_details else ()
                cells = (
                    c.customer_id,
                    c.status,
                    f"{c.registered_at:%Y-%m-%d %H:%M}",
                    str(c.version),
                    *details,
                )
                table.add_row(*map(escape, cells))  # "[erased]" and names are text, not rich markup
                count += 1
            if after is None:
                break
        Console(width=200).print(table)
        click.echo(f"{count:,} customer{'s' * (count != 1)}")
        return 0

    run(work)


@click.group()
def keys() -> None:
    """The master key that wraps the customers' keys."""


@keys.command(name="rotate")
@click.option(
    "--new-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="where to write the new key when the current one is derived from ORDERS_SECRET",
)
def rotate_command(new_key_file: Path | None) -> None:
    """Rewrap every customer key under a new master key, in one transaction; events are untouched.

    With a key file, the new key replaces it and the old key is destroyed. Servers running on
    the same database read the new file when they meet a key wrapped by it.
    """
    if new_key_file is not None and new_key_file.exists():
        click.echo(f"orders: {new_key_file} exists; name a new file", err=True)
        raise SystemExit(1)

    async def work(settings: Settings, pool: asyncpg.Pool) -> int:
        old = configured(settings.master_key_file, settings.master_secret)
        if old is None:
            click.echo("orders: no master key is configured", err=True)
            return 1
        if old.source is not None and new_key_file is not None:
            click.echo(
                f"orders: --new-key-file is for a master key derived from ORDERS_SECRET; "
                f"the new key goes to {old.source}",
                err=True,
            )
            return 1
        if old.source is None and new_key_file is None:
            click.echo(
                "orders: the master key is derived from ORDERS_SECRET: name a --new-key-file for the new one",
                err=True,
            )
            return 1
        new = MasterKey.generate()
        count = await rotate(pool, old, new, new_key_file)
        click.echo(f"orders: rewrapped {count:,} customer key{'s' * (count != 1)} under master key {new.id}")
        if old.source is not None:
            click.echo(f"orders: {old.source} holds the new key; the old key ({old.id}) is destroyed")
        else:
            click.echo(
                f"orders: wrote the new key to {new_key_file}. Set ORDERS_MASTER_KEY_FILE={new_key_file} "
                "and restart every server now: one still deriving the old key from ORDERS_SECRET can "
                "no longer open the customers' keys."
            )
        return 0

    run(work)
