"""Accounts and tokens as an operator makes them with the `orders` command, and as an auditor finds them."""

from __future__ import annotations

import getpass
import hashlib
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import asyncpg
import httpx

from store.access.sessions import Sessions
from store.access.tokens import Tokens
from tests.e2e.test_cli_orders_command import ORDERS, ROOT, run_orders
from tests.support.accounts import session_for
from tests.support.servers import free_port, wait_until_up

PASSWORD = "a long enough password"
THE_COMMAND = f"the orders command, run by {getpass.getuser()}"


def orders(database_url: str, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    if password is None:
        return run_orders(*args, env=env)
    return subprocess.run(
        [str(ORDERS), *args, "--password-stdin"],
        cwd=ROOT,
        env=env,
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def table_rows(output: str) -> list[list[str]]:
    """The cells of each row of a rich table as printed, the headings first."""
    rows = [re.split("[│┃]", line)[1:-1] for line in output.splitlines() if re.match("[│┃]", line)]
    return [[cell.strip() for cell in row] for row in rows]


async def places_holding(pool: asyncpg.Pool, secret: str) -> list[str]:
    """Every column of every table that holds `secret`, as text or as bytes."""
    columns = await pool.fetch(
        """
        SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns
        WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
          AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea')
        """
    )
    found = []
    for schema, table, column, kind in columns:
        where = (
            f'position($1::bytea in "{column}") > 0'
            if kind == "bytea"
            else f'strpos("{column}"::text, $1) > 0'
        )
        value = secret.encode() if kind == "bytea" else secret
        if await pool.fetchval(f'SELECT count(*) FROM "{schema}"."{table}" WHERE {where}', value):
            found.append(f"{table}.{column}")
    return found


async def test_an_account_added_is_in_the_list_and_a_taken_name_is_refused(
    database_url: str, pool: asyncpg.Pool
) -> None:
    added = orders(database_url, "users", "add", "bea", "--role", "clerk", password=PASSWORD)
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines() == ["orders: account bea added, role clerk"]
    customer = orders(
        database_url, "users", "add", "cy", "--role", "customer", "--customer", "acme", password=PASSWORD
    )
    assert customer.returncode == 0, customer.stderr

    listed = orders(database_url, "users", "list")
    assert listed.returncode == 0, listed.stderr
    rows = table_rows(listed.stdout)
    assert rows[0] == ["name", "role", "customer", "created", "disabled"]
    assert [[*row[:3], row[4]] for row in rows[1:]] == [
        ["bea", "clerk", "", ""],
        ["cy", "customer", "acme", ""],
    ]
    assert all(row[3].endswith("UTC") for row in rows[1:])

    taken = orders(database_url, "users", "add", "bea", "--role", "viewer", password=PASSWORD)
    assert taken.returncode == 1
    assert taken.stderr.strip().splitlines()[-1] == "orders: There is already an account called bea."
    assert await pool.fetchval("SELECT role FROM accounts WHERE name = 'bea'") == "clerk"

    weak = orders(database_url, "users", "add", "dee", "--role", "viewer", password="short")
    unbound = orders(database_url, "users", "add", "dee", "--role", "customer", password=PASSWORD)
    bound = orders(
        database_url, "users", "add", "dee", "--role", "clerk", "--customer", "acme", password=PASSWORD
    )
    assert [r.returncode for r in (weak, unbound, bound)] == [1, 1, 1]
    assert weak.stderr.strip() == "orders: A password has 12 to 1024 characters."
    assert unbound.stderr.strip() == "orders: A customer account needs the customer id it acts for."
    assert bound.stderr.strip() == "orders: Only a customer account is bound to a customer id."

    hashes = await pool.fetch("SELECT password_hash FROM accounts ORDER BY name")
    assert len(hashes) == 2
    assert all(h[0].startswith("$argon2id$") for h in hashes)
    assert await places_holding(pool, PASSWORD) == []


async def test_a_token_is_printed_once_on_the_last_line_and_the_database_keeps_only_its_sha256(
    database_url: str, pool: asyncpg.Pool
) -> None:
    made = orders(database_url, "tokens", "add", "till", "--role", "customer", "--customer", "acme")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.splitlines()[-1]
    assert re.fullmatch(r"orders_[A-Za-z0-9_-]{43}", secret)
    assert made.stdout.count(secret) == 1
    assert secret not in made.stderr

    stored = await pool.fetchrow("SELECT token_hash, role, customer_id, created_by FROM api_tokens")
    assert bytes(stored["token_hash"]) == hashlib.sha256(secret.encode()).digest()
    assert (stored["role"], stored["customer_id"], stored["created_by"]) == ("customer", "acme", THE_COMMAND)
    assert await places_holding(pool, secret) == []
    actor = await Tokens(pool).actor(secret)
    assert actor is not None
    assert (actor.name, actor.customer_id) == ("till", "acme")

    listed = orders(database_url, "tokens", "list")
    assert secret not in listed.stdout
    assert [[*row[:3], row[5]] for row in table_rows(listed.stdout)[1:]] == [["till", "customer", "acme", ""]]
    again = orders(database_url, "tokens", "add", "till", "--role", "viewer")
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1] == "orders: There is already a token called till."

    revoked = orders(database_url, "tokens", "revoke", "till")
    assert revoked.returncode == 0, revoked.stderr
    assert await Tokens(pool).actor(secret) is None
    assert table_rows(orders(database_url, "tokens", "list").stdout)[1][5].endswith("UTC")
    unknown = orders(database_url, "tokens", "revoke", "nobody")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "orders: There is no token called nobody."


async def test_disabling_an_account_ends_its_sessions_at_once(database_url: str, pool: asyncpg.Pool) -> None:
    assert orders(database_url, "users", "add", "bea", "--role", "clerk", password=PASSWORD).returncode == 0
    cookie = await session_for(pool, "bea", "clerk")
    sessions = Sessions(pool, idle=timedelta(minutes=120), absolute=timedelta(hours=12))
    assert await sessions.resume(cookie) is not None

    disabled = orders(database_url, "users", "disable", "bea")
    assert disabled.returncode == 0, disabled.stderr
    assert disabled.stdout.strip() == "orders: account bea disabled; its sessions are ended"
    assert await pool.fetchval("SELECT count(*) FROM sessions") == 0
    assert await sessions.resume(cookie) is None
    assert table_rows(orders(database_url, "users", "list").stdout)[1][4].endswith("UTC")

    unknown = orders(database_url, "users", "disable", "nobody")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "orders: There is no account called nobody."


async def test_every_change_is_in_the_access_log_as_the_orders_command(
    database_url: str, pool: asyncpg.Pool
) -> None:
    steps = [
        orders(database_url, "users", "add", "bea", "--role", "viewer", password=PASSWORD),
        orders(database_url, "users", "role", "bea", "customer", "--customer", "acme"),
        orders(database_url, "users", "password", "bea", password=PASSWORD + "!"),
        orders(database_url, "users", "disable", "bea"),
        orders(database_url, "tokens", "add", "till", "--role", "clerk"),
        orders(database_url, "tokens", "revoke", "till"),
        orders(database_url, "users", "role", "nobody", "admin"),
        orders(database_url, "users", "password", "nobody", password=PASSWORD),
    ]
    assert [step.returncode for step in steps] == [0, 0, 0, 0, 0, 0, 1, 1], [s.stderr for s in steps]
    assert (
        steps[1].stdout.strip()
        == "orders: account bea now has role customer for customer acme (it had role viewer)"
    )
    assert steps[-1].stderr.strip() == "orders: There is no account called nobody."

    log = await pool.fetch(
        "SELECT kind, actor_id, actor_name, subject, detail FROM access_log ORDER BY entry_id"
    )
    assert [tuple(row) for row in log] == [
        ("account added", "system:cli", THE_COMMAND, "bea", "role viewer"),
        ("role changed", "system:cli", THE_COMMAND, "bea", "role viewer → role customer for customer acme"),
        ("password changed", "system:cli", THE_COMMAND, "bea", "its sessions ended"),
        ("account disabled", "system:cli", THE_COMMAND, "bea", "its sessions ended"),
        ("token added", "system:cli", THE_COMMAND, "till", "role clerk"),
        ("token revoked", "system:cli", THE_COMMAND, "till", "role clerk"),
    ]


def test_an_unreachable_database_gives_one_line_and_exit_2() -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    for command in (["users", "list"], ["tokens", "revoke", "till"]):
        result = orders(nowhere, *command)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("orders: cannot reach PostgreSQL at")


@contextmanager
def serving(database_url: str, port: int) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str | None]]]:
    """`orders serve` on `database_url`, its stderr lines arriving in a queue; stopped as a person would."""
    env = {**os.environ, "DATABASE_URL": database_url}
    command = [str(ORDERS), "serve", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield process, lines
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0


def line_matching(lines: queue.Queue[str | None], pattern: str, timeout: float = 60) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while (line := lines.get(timeout=max(0.0, deadline - time.monotonic()))) is not None:
        if found := re.search(pattern, line):
            return found
    raise AssertionError(f"orders serve exited without printing {pattern}")


def test_orders_serve_prints_a_one_time_setup_link_while_no_admin_exists(database_url: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(database_url, port) as (process, lines):
        found = line_matching(lines, rf"{re.escape(url)}/setup\?token=(\S+)")
        assert "first admin" in found.string
        assert "works once" in found.string
        link = found.group(0)
        wait_until_up(url, process, timeout=60)
        with httpx.Client(base_url=url) as client:
            form = client.get(link)
            assert form.status_code == 200
            assert "Create the first admin" in form.text
            made = client.post(
                "/setup",
                data={
                    "token": found.group(1),
                    "username": "ada",
                    "password": PASSWORD,
                    "password_again": PASSWORD,
                },
                headers={"x-csrftoken": client.cookies["csrftoken"]},
            )
            assert made.status_code == 303, made.text
            assert made.headers["location"] == "/orders"
            assert client.get("/orders").status_code == 200  # signed in as the new admin
        assert httpx.get(link).status_code == 404
    listed = orders(database_url, "users", "list")
    assert [row[:2] for row in table_rows(listed.stdout)[1:]] == [["ada", "admin"]]

    with serving(database_url, port) as (process, lines):
        wait_until_up(url, process, timeout=60)
    said = []
    while (line := lines.get(timeout=30)) is not None:
        said.append(line)
    assert any("serving on" in line for line in said)
    assert not any("setup?token=" in line for line in said)


async def test_the_last_admin_can_be_neither_disabled_nor_demoted(
    database_url: str, pool: asyncpg.Pool
) -> None:
    assert orders(database_url, "users", "add", "root", "--role", "admin", password=PASSWORD).returncode == 0
    for refused in (("users", "disable", "root"), ("users", "role", "root", "viewer")):
        answer = orders(database_url, *refused)
        assert answer.returncode == 1, refused
        assert "root is the last admin" in answer.stderr, refused
    assert await pool.fetchrow("SELECT role, disabled_at FROM accounts WHERE name = 'root'") == (
        "admin",
        None,
    )
    assert orders(database_url, "users", "add", "ops", "--role", "admin", password=PASSWORD).returncode == 0
    assert orders(database_url, "users", "role", "root", "viewer").returncode == 0
