"""`orders users …` and `orders tokens …`: accounts of people and API tokens of programs.

Each change is written to the access log as the orders command, naming the
operating-system user who ran it. The first admin comes from here or from the
set-up link `orders serve` prints (`setup_token`).
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

import asyncpg
import click
from rich.console import Console
from rich.table import Table

from domain.access import ROLES, Actor, Role, check_account_name, check_binding, check_password
from domain.errors import CustomerForgottenError, InvalidInput
from store.access.access_log import AccessLog
from store.access.accounts import Accounts, LastAdmin
from store.access.accounts import NameTaken as AccountNameTaken
from store.access.sessions import Sessions
from store.access.setup import SetupLinks
from store.access.tokens import NameTaken as TokenNameTaken
from store.access.tokens import Tokens
from store.database import UNAVAILABLE, DatabaseUnavailable, connect_pool
from web.cli.startup import database, exit_with, fail
from web.settings import Settings


class Access:
    """The stores these commands change, on one pool."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.accounts = Accounts(pool)
        self.tokens = Tokens(pool)
        self.log = AccessLog(pool)
        idle = timedelta(minutes=settings.session_idle_minutes)
        self.sessions = Sessions(pool, idle=idle, absolute=timedelta(hours=settings.session_hours))


Work = Callable[[Access], Awaitable[int]]

role_option = click.option("--role", type=click.Choice(ROLES), required=True, help="what it may do")
customer_option = click.option(
    "--customer", "customer_id", metavar="CUSTOMER_ID", help="the customer id a customer role acts for"
)
password_stdin_option = click.option(
    "--password-stdin", is_flag=True, help="read the password from standard input instead of asking"
)


def the_command() -> Actor:
    """Who the access log names: the orders command, and the operating-system user running it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "an unknown user"
    return Actor("system:cli", f"the orders command, run by {user}", "system")


def run(work: Work) -> None:
    """`work` on the database the settings name; exits with its status (2: the database went away)."""
    with database() as (settings, _):
        exit_with(asyncio.run(_on_database(settings, work)))


async def _on_database(settings: Settings, work: Work) -> int:
    try:
        pool = await connect_pool(settings.database_url, min_size=1, max_size=2)
        try:
            return await work(Access(pool, settings))
        finally:
            await pool.close()
    except (DatabaseUnavailable, *UNAVAILABLE) as error:
        click.echo(f"orders: the database went away: {error}", err=True)
        return 2


def listed(columns: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> int:
    """A table of `rows` under `columns` on standard output."""
    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    show(table)
    return 0


def refuse(message: str) -> int:
    click.echo(f"orders: {message}", err=True)
    return 1


def obeying(*rules: Callable[[], None]) -> None:
    """Exit 1 with the rule's sentence when one is broken, before any database starts."""
    try:
        for rule in rules:
            rule()
    except InvalidInput as error:
        fail(error.message, code=1)


def read_password(from_stdin: bool) -> str:
    password: str
    if from_stdin:
        password = sys.stdin.read().removesuffix("\n").removesuffix("\r")
    else:
        password = str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    obeying(lambda: check_password(password))
    return password


def described(role: str, customer_id: str | None) -> str:
    return f"role {role}" + (f" for customer {customer_id}" if customer_id else "")


def when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def show(table: Table) -> None:
    console = Console()
    if not console.is_terminal:  # piped or redirected: whole rows, for grep and for the eye
        console = Console(width=500)
    console.print(table)


@click.group()
def users() -> None:
    """Accounts of people: add, list, disable, change a role or a password."""


@users.command("add")
@click.argument("name")
@role_option
@customer_option
@password_stdin_option
def add_user(name: str, role: Role, customer_id: str | None, password_stdin: bool) -> None:
    """Add an account; asks for its password twice (or reads it with --password-stdin)."""
    obeying(lambda: check_account_name(name), lambda: check_binding(role, customer_id))
    password = read_password(password_stdin)

    async def work(access: Access) -> int:
        try:
            account = await access.accounts.add(name, role, password, customer_id)
        except (AccountNameTaken, CustomerForgottenError) as error:
            return refuse(str(error))
        detail = described(role, customer_id)
        await access.log.record("account added", the_command(), account.name, detail)
        click.echo(f"orders: account {account.name} added, {detail}")
        return 0

    run(work)


@users.command("list")
def list_users() -> None:
    """The accounts: name, role, customer, created, disabled."""

    async def work(access: Access) -> int:
        return listed(
            ("name", "role", "customer", "created", "disabled"),
            (
                (a.name, a.role, a.customer_id or "", when(a.created_at), when(a.disabled_at))
                for a in await access.accounts.list()
            ),
        )

    run(work)


@users.command("disable")
@click.argument("name")
def disable_user(name: str) -> None:
    """Disable an account: it can no longer sign in, and its sessions end at once."""

    async def work(access: Access) -> int:
        try:
            account = await access.accounts.disable_leaving_an_admin(name)
        except LastAdmin as error:
            return refuse(str(error))
        if account is None:
            return refuse(f"There is no account called {name}.")
        await access.log.record("account disabled", the_command(), name, "its sessions ended")
        click.echo(f"orders: account {name} disabled; its sessions are ended")
        return 0

    run(work)


@users.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@customer_option
def set_role(name: str, role: Role, customer_id: str | None) -> None:
    """Give an account another role (a customer role with --customer)."""
    obeying(lambda: check_binding(role, customer_id))

    async def work(access: Access) -> int:
        before = await access.accounts.find(name)
        try:
            after = await access.accounts.set_role_leaving_an_admin(name, role, customer_id)
        except (LastAdmin, CustomerForgottenError) as error:
            return refuse(str(error))
        if before is None or after is None:
            return refuse(f"There is no account called {name}.")
        was, now = described(before.role, before.customer_id), described(role, customer_id)
        await access.log.record("role changed", the_command(), name, f"{was} → {now}")
        click.echo(f"orders: account {name} now has {now} (it had {was})")
        return 0

    run(work)


@users.command("password")
@click.argument("name")
@password_stdin_option
def set_password(name: str, password_stdin: bool) -> None:
    """Set an account's password; its sessions end, so it signs in again with the new one."""
    password = read_password(password_stdin)

    async def work(access: Access) -> int:
        account = await access.accounts.set_password(name, password)
        if account is None:
            return refuse(f"There is no account called {name}.")
        # Whoever signed in with the old password is signed out everywhere.
        await access.sessions.end_all(str(account.account_id))
        await access.log.record("password changed", the_command(), name, "its sessions ended")
        click.echo(f"orders: password of {name} changed; its sessions are ended")
        return 0

    run(work)


@click.group()
def tokens() -> None:
    """API tokens of programs: add (shown once), list, revoke."""


@tokens.command("add")
@click.argument("name")
@role_option
@customer_option
def add_token(name: str, role: Role, customer_id: str | None) -> None:
    """Make a token; it is printed once, alone on the last line, and stored only as its SHA-256."""
    obeying(lambda: _check_token_name(name), lambda: check_binding(role, customer_id))

    async def work(access: Access) -> int:
        actor = the_command()
        try:
            token, secret = await access.tokens.add(name, role, actor.name, customer_id)
        except (TokenNameTaken, CustomerForgottenError) as error:
            return refuse(str(error))
        detail = described(role, customer_id)
        await access.log.record("token added", actor, token.name, detail)
        click.echo(f"orders: token {token.name} made, {detail}; it is shown this once:")
        click.echo(secret)
        return 0

    run(work)


@tokens.command("list")
def list_tokens() -> None:
    """The tokens: name, role, customer, made by, created, revoked (never the secrets)."""

    async def work(access: Access) -> int:
        return listed(
            ("name", "role", "customer", "made by", "created", "revoked"),
            (
                (t.name, t.role, t.customer_id or "", t.created_by, when(t.created_at), when(t.revoked_at))
                for t in await access.tokens.list()
            ),
        )

    run(work)


@tokens.command("revoke")
@click.argument("name")
def revoke_token(name: str) -> None:
    """Revoke a token: programs sending it get 401 from the next request on."""

    async def work(access: Access) -> int:
        token = await access.tokens.revoke(name)
        if token is None:
            return refuse(f"There is no token called {name}.")
        detail = described(token.role, token.customer_id)
        await access.log.record("token revoked", the_command(), name, detail)
        click.echo(f"orders: token {name} revoked")
        return 0

    run(work)


async def setup_token(settings: Settings) -> str | None:
    """A one-time set-up token when no admin account exists (for `orders serve`), else None."""
    pool = await connect_pool(settings.database_url, min_size=1, max_size=1)
    try:
        return await SetupLinks(pool).make_if_needed()
    finally:
        await pool.close()


def _check_token_name(name: str) -> None:
    try:
        check_account_name(name)
    except InvalidInput:
        raise InvalidInput("A token name is 1 to 64 letters, digits, '.', '_', '@' or '-'.") from None
