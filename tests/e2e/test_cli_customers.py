"""`orders customers forget|list` and `orders keys rotate`, as an operator runs them and an auditor checks.

Each test runs the real `orders` command on a database of its own, with a
master key file of its own, and reads back what the database holds.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import os
import subprocess
import time
from pathlib import Path
from uuid import uuid4

import asyncpg
import httpx
import pytest

from domain.customer import RegisterCustomer
from domain.order import AddItem, CreateOrder, PlaceOrder
from store.access.accounts import Accounts
from store.application import Envelope, Orders
from store.personal import MasterKey
from store.personal.rotation import pending_file, rewrap
from tests.e2e.test_cli_orders_command import ORDERS, embedded_database_url, run_orders, stop
from tests.support.accounts import session_on
from tests.support.databases import open_pool
from tests.support.servers import ROOT, free_port, wait_until_up
from web.access import SESSION_COOKIE

NAME, EMAIL, ADDRESS = "Cordelia Bramblethorpe", "cordelia@bramble.example", "3 Quince Court\nAshwick"
THE_COMMAND = f"the orders command, run by {getpass.getuser()}"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "master.key"


def orders_cli(
    database_url: str, key_file: Path, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ORDERS_SECRET", "ORDERS_MASTER_KEY_FILE")}
    env |= {"DATABASE_URL": database_url, "ORDERS_MASTER_KEY_FILE": str(key_file), **extra}
    return run_orders(*args, env=env)


async def with_customer(pool: asyncpg.Pool, key_file: Path, customer_id: str = "cust-cb") -> Orders:
    """A registered customer with a placed order, under the master key in `key_file`."""
    orders = Orders(pool, master=MasterKey.from_file(key_file, create=True))
    await orders.register_customer(RegisterCustomer(customer_id, NAME, EMAIL, ADDRESS), Envelope(uuid4()))
    order_id = str(uuid4())
    await orders.execute(CreateOrder(order_id, customer_id, "EUR"), Envelope(uuid4()))
    await orders.execute(AddItem(order_id, "K-1", "Kettle", 2500, 1), Envelope(uuid4()))
    await orders.execute(PlaceOrder(order_id), Envelope(uuid4()))
    return orders


async def event_hashes(pool: asyncpg.Pool) -> list[tuple[str, int, bytes]]:
    return [
        tuple(r) for r in await pool.fetch("SELECT stream_id, version, hash FROM events ORDER BY position")
    ]


# ------------------------------------------------------------------ forget


async def test_forget_erases_the_customer_and_names_the_command_as_who_did_it(
    database_url: str, pool: asyncpg.Pool, key_file: Path
) -> None:
    await with_customer(pool, key_file)
    done = orders_cli(database_url, key_file, "customers", "forget", "cust-cb", "--reason", "GDPR request 41")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"orders: forgot customer cust-cb as {THE_COMMAND}: their key is deleted, so their name, email "
        "address and shipping address read as erased everywhere (version 2, reason: 'GDPR request 41')"
    ]
    assert await pool.fetchval("SELECT count(*) FROM customer_keys WHERE customer_id = 'cust-cb'") == 0
    event = await pool.fetchrow(
        "SELECT type, data->>'reason', metadata->>'actor', metadata->>'actor_id' "
        "FROM events WHERE stream_id = 'customer:cust-cb' AND version = 2"
    )
    assert tuple(event) == ("CustomerForgotten", "GDPR request 41", THE_COMMAND, "system:cli")
    verified = orders_cli(database_url, key_file, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "  ok    forgotten customers have no key" in verified.stdout.splitlines()


async def test_forget_as_an_admin_account_names_them(
    database_url: str, pool: asyncpg.Pool, key_file: Path
) -> None:
    await with_customer(pool, key_file)
    admin = await Accounts(pool).add("olga", "admin", "a long enough password")
    done = orders_cli(
        database_url, key_file, "customers", "forget", "cust-cb", "--reason", "asked", "--as", "olga"
    )
    assert done.returncode == 0, done.stderr
    metadata = await pool.fetchrow(
        "SELECT metadata->>'actor', metadata->>'actor_id' FROM events WHERE type = 'CustomerForgotten'"
    )
    assert tuple(metadata) == ("olga", str(admin.account_id))
    await Accounts(pool).add("carl", "clerk", "a long enough password")
    refused = orders_cli(
        database_url, key_file, "customers", "forget", "cust-cb", "--reason", "x", "--as", "carl"
    )
    assert (refused.returncode, refused.stderr.strip()) == (1, "orders: no admin account called carl")


async def test_forgetting_twice_is_harmless_and_an_unknown_customer_is_refused(
    database_url: str, pool: asyncpg.Pool, key_file: Path
) -> None:
    await with_customer(pool, key_file)
    assert (
        orders_cli(database_url, key_file, "customers", "forget", "cust-cb", "--reason", "asked").returncode
        == 0
    )
    events = await event_hashes(pool)
    again = orders_cli(database_url, key_file, "customers", "forget", "cust-cb", "--reason", "asked again")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("orders: customer cust-cb was already forgotten (")
    assert again.stdout.rstrip().endswith("reason: 'asked'); nothing to do")
    assert await event_hashes(pool) == events

    unknown = orders_cli(database_url, key_file, "customers", "forget", "nobody-9", "--reason", "asked")
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "orders: no customer nobody-9")
    assert await event_hashes(pool) == events


async def test_list_shows_ids_and_status_and_details_only_when_asked(
    database_url: str, pool: asyncpg.Pool, key_file: Path
) -> None:
    orders = await with_customer(pool, key_file)
    other = RegisterCustomer("cust-dd", "Dorian Dunmore", "dd@example.org", "9 Elm Street")
    await orders.register_customer(other, Envelope(uuid4()))
    orders_cli(database_url, key_file, "customers", "forget", "cust-cb", "--reason", "asked")

    listed = orders_cli(database_url, key_file, "customers", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split()[:2] for line in listed.stdout.splitlines()[1:-1]]
    assert rows == [["cust-dd", "registered"], ["cust-cb", "forgotten"]]
    assert listed.stdout.splitlines()[-1] == "2 customers"
    for detail in ("Dorian", "dd@example.org", "Elm", "Cordelia"):
        assert detail not in listed.stdout

    detailed = orders_cli(database_url, key_file, "customers", "list", "--show-details")
    lines = detailed.stdout.splitlines()
    assert "Dorian Dunmore" in lines[1]
    assert "dd@example.org" in lines[1]
    assert lines[2].count("[erased]") == 3
    assert "Cordelia" not in detailed.stdout


# ------------------------------------------------------------------ keys rotate


async def test_rotate_rewraps_every_key_under_a_new_file_and_touches_no_event(
    database_url: str, pool: asyncpg.Pool, key_file: Path
) -> None:
    await with_customer(pool, key_file)
    await with_customer(pool, key_file, "cust-two")
    old = MasterKey.from_file(key_file)
    old_text = key_file.read_text()  # noqa: ASYNC240
    events = await event_hashes(pool)

    rotated = orders_cli(database_url, key_file, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    new = MasterKey.from_file(key_file)
    assert rotated.stdout.splitlines() == [
        f"orders: rewrapped 2 customer keys under master key {new.id}",
        f"orders: {key_file} holds the new key; the old key ({old.id}) is destroyed",
    ]
    assert key_file.read_text() != old_text  # noqa: ASYNC240
    assert not pending_file(key_file).exists()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"  # noqa: ASYNC240
    assert {r[0] for r in await pool.fetch("SELECT master_key_id FROM customer_keys")} == {new.id}
    assert await event_hashes(pool) == events
    # A fresh process with the new file opens the details; one holding the old key cannot.
    shown = await Orders(pool, master=new).customer("cust-cb")
    assert (shown.name, shown.email) == (NAME, EMAIL)
    stale = await Orders(pool, master=MasterKey(base64.b64decode(old_text))).customer("cust-cb")
    assert stale.name == "[sealed: wrapped by another master key]"
    verified = orders_cli(database_url, key_file, "verify")
    assert verified.returncode == 0, verified.stdout


async def test_a_server_holding_the_old_key_reads_the_new_file_when_it_meets_a_rewrapped_key(
    database_url: str, pool: asyncpg.Pool, key_file: Path
) -> None:
    running = await with_customer(pool, key_file)
    assert (await running.customer("cust-cb")).name == NAME
    assert orders_cli(database_url, key_file, "keys", "rotate").returncode == 0
    running.keyring.clear()  # as after KEY_SECONDS: it asks the database again
    assert (await running.customer("cust-cb")).name == NAME
    # A customer it registers now is wrapped by the new key, which the file holds.
    new_customer = RegisterCustomer("cust-new", "Ned New", "ned@example.org", "1 New Road")
    await running.register_customer(new_customer, Envelope(uuid4()))
    assert (
        await pool.fetchval("SELECT master_key_id FROM customer_keys WHERE customer_id = 'cust-new'")
        == MasterKey.from_file(key_file).id
    )


async def test_rotate_from_a_secret_writes_the_new_key_where_told(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    secret = "a secret of this test only"
    orders = Orders(pool, master=MasterKey.from_secret(secret))
    await orders.register_customer(RegisterCustomer("cust-s", NAME, EMAIL, ADDRESS), Envelope(uuid4()))
    env = {k: v for k, v in os.environ.items() if k != "ORDERS_MASTER_KEY_FILE"}
    env |= {"DATABASE_URL": database_url, "ORDERS_SECRET": secret}

    refused = run_orders("keys", "rotate", env=env)
    assert (refused.returncode, refused.stderr.strip()) == (
        1,
        "orders: the master key is derived from ORDERS_SECRET: name a --new-key-file for the new one",
    )
    target = tmp_path / "new.key"
    done = run_orders("keys", "rotate", "--new-key-file", str(target), env=env)
    assert done.returncode == 0, done.stderr
    assert f"Set ORDERS_MASTER_KEY_FILE={target}" in done.stdout
    shown = await Orders(pool, master=MasterKey.from_file(target)).customer("cust-s")
    assert shown.name == NAME


async def test_a_rotation_cut_short_after_its_commit_is_finished_at_the_next_start(
    database_url: str, pool: asyncpg.Pool, key_file: Path
) -> None:
    await with_customer(pool, key_file)
    old, new = MasterKey.from_file(key_file), MasterKey.generate()
    new.write(pending_file(key_file))
    async with pool.acquire() as conn, conn.transaction():
        await rewrap(conn, old, new)  # committed; the crash came before the file was replaced

    listed = orders_cli(database_url, key_file, "customers", "list", "--show-details")
    assert listed.returncode == 0, listed.stderr
    assert f"finished an interrupted key rotation: {key_file} now holds master key {new.id}" in listed.stderr
    assert NAME in listed.stdout
    assert MasterKey.from_file(key_file).id == new.id
    assert not pending_file(key_file).exists()


async def test_a_rotation_cut_short_before_its_commit_is_undone_at_the_next_start(
    database_url: str, pool: asyncpg.Pool, key_file: Path
) -> None:
    await with_customer(pool, key_file)
    old = MasterKey.from_file(key_file)
    MasterKey.generate().write(pending_file(key_file))

    listed = orders_cli(database_url, key_file, "customers", "list", "--show-details")
    assert listed.returncode == 0, listed.stderr
    assert "undid an interrupted key rotation that had not committed" in listed.stderr
    assert NAME in listed.stdout
    assert MasterKey.from_file(key_file).id == old.id
    assert not pending_file(key_file).exists()


async def test_an_export_taken_before_a_forget_holds_no_clear_text_and_no_key(
    database_url: str, pool: asyncpg.Pool, key_file: Path, tmp_path: Path
) -> None:
    await with_customer(pool, key_file)
    for fmt in ("ndjson", "csv"):
        out = tmp_path / f"log.{fmt}"
        done = orders_cli(database_url, key_file, "export", "--format", fmt, "-o", str(out))
        assert done.returncode == 0, done.stderr
        text = out.read_text()
        for detail in ("Cordelia", "Bramblethorpe", "bramble.example", "Quince", "Ashwick"):
            assert detail not in text
        assert text.count("pii:1:cust-cb:") == 4  # name, email, address; the order's ship_to
        for wrapped in await pool.fetch("SELECT wrapped FROM customer_keys"):
            assert wrapped[0].hex()[:32] not in text
            assert base64.b64encode(wrapped[0]).decode()[:32] not in text
        assert key_file.read_text().strip() not in text  # noqa: ASYNC240
    assert (
        orders_cli(database_url, key_file, "customers", "forget", "cust-cb", "--reason", "asked").returncode
        == 0
    )
    assert await pool.fetchval("SELECT count(*) FROM customer_keys") == 0  # nothing left that could open it


def test_rotate_while_orders_serve_runs_on_the_same_data_folder(tmp_path: Path) -> None:
    """The running server learns the new key from its file when it meets a key wrapped by it: its
    workflow seals, its relay sends and its notifications page opens messages to customers whose
    keys were rewrapped, or made, after the rotation."""
    data_dir = tmp_path / "data"
    key_file = data_dir / "master.key"  # the default: no ORDERS_MASTER_KEY_FILE, no ORDERS_SECRET
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "ORDERS_SECRET", "ORDERS_MASTER_KEY_FILE")
    }
    env["ORDERS_DATA_DIR"] = str(data_dir)
    server = subprocess.Popen([str(ORDERS), "serve", "--port", str(port)], cwd=ROOT, env=env)
    try:
        wait_until_up(url, server, timeout=60)
        database_url = embedded_database_url(data_dir)
        staff = {SESSION_COOKIE: session_on(database_url, "vera", "viewer")}
        with httpx.Client(base_url=url, cookies=staff) as client:
            first = asyncio.run(order_on(database_url, key_file, "cust-before", "Bertram Before"))
            assert "Hello Bertram Before," in notification_shown(client, first)

            rotated = run_orders("keys", "rotate", env=env)
            assert rotated.returncode == 0, rotated.stderr
            assert rotated.stdout.startswith("orders: rewrapped 1 customer key under master key ")

            again = asyncio.run(order_on(database_url, key_file, "cust-before"))
            assert "Hello Bertram Before," in notification_shown(client, again)
            after = asyncio.run(order_on(database_url, key_file, "cust-after", "Alma After"))
            assert "Hello Alma After," in notification_shown(client, after)
    finally:
        stop(server)


def notification_shown(client: httpx.Client, order_id: str, timeout: float = 30.0) -> str:
    """The order's notifications as the page shows them, once its message is sent."""
    deadline = time.monotonic() + timeout
    while True:
        text = client.get(f"/notifications?order={order_id}").text
        if ">sent</span>" in text:
            return text
        assert time.monotonic() < deadline, f"the message of order {order_id} was not sent: {text[-2000:]}"
        time.sleep(0.1)


async def order_on(database_url: str, key_file: Path, customer_id: str, name: str | None = None) -> str:
    """A placed order for the customer (registered first when `name` is given), as another process."""
    async with open_pool(database_url, max_size=2) as pool:
        orders = Orders(pool, master=MasterKey.from_file(key_file))
        if name is not None:
            details = RegisterCustomer(customer_id, name, f"{customer_id}@example.org", "1 Any Road")
            await orders.register_customer(details, Envelope(uuid4()))
        order_id = str(uuid4())
        for command in (
            CreateOrder(order_id, customer_id, "EUR"),
            AddItem(order_id, "K-1", "Kettle", 2500, 1),
            PlaceOrder(order_id),
        ):
            await orders.execute(command, Envelope(uuid4()))
        return order_id
