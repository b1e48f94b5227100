"""`orders backup` while writers run, then `orders restore` into an empty database: proven, or refused."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from domain.customer import RegisterCustomer
from domain.order import AddItem, CreateOrder, PlaceOrder
from store.application import Envelope, Orders
from store.backup import tools_major
from store.database import embedded_postgres
from store.log.event_store import EventStore
from store.log.integrity import verify
from store.personal import MasterKey
from store.read.projections import PROJECTIONS
from store.read.replay import rebuild
from store.read.subscriptions import SubscriptionRunner
from store.workflows.outbox import CustomerNotifications
from tests.support.databases import fresh_database, open_pool
from tests.support.servers import ROOT
from tests.support.tampering import orders

ORDERS = Path(sys.executable).parent / "orders"
HEADS = """
SELECT DISTINCT ON (stream_id) stream_id, version, encode(hash, 'hex') FROM events
ORDER BY stream_id, version DESC
"""

# Each block is a subtransaction that writes, so each takes a transaction id.
BURN_TRANSACTION_IDS = """
DO $$ BEGIN
    CREATE TEMP TABLE burn (n int);
    FOR i IN 1..20000 LOOP
        BEGIN INSERT INTO burn VALUES (i); EXCEPTION WHEN others THEN NULL; END;
    END LOOP;
END $$
"""


async def server_major(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()


@pytest.fixture
async def same_major(server_url: str) -> None:
    """Skip unless the test server runs the major version of the wheel's pg_dump and pg_restore."""
    major = await server_major(server_url)
    if major != tools_major():
        pytest.skip(f"the test server runs PostgreSQL {major}; the tools are {tools_major()}")


async def run_orders(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """The `orders` command, without blocking the writers running in this loop; exit code and output."""
    process = await asyncio.create_subprocess_exec(
        str(ORDERS),
        *args,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def catch_up(url: str, pool: asyncpg.Pool) -> None:
    for projection in (*PROJECTIONS.values(), CustomerNotifications()):
        runner = SubscriptionRunner(url, pool, projection)
        while await runner.catch_up():
            pass


async def contents(pool: asyncpg.Pool, table: str) -> list[str]:
    return [r[0] for r in await pool.fetch(f"SELECT t::text FROM {table} t ORDER BY 1")]


async def test_a_backup_taken_while_writers_run_restores_into_an_empty_database_and_proves_itself(
    same_major: None,
    database_url: str,
    pool: asyncpg.Pool,
    store: EventStore,
    server_url: str,
    tmp_path: Path,
) -> None:
    await orders(store, 6)
    await catch_up(database_url, pool)  # the subscriptions have checkpoints; writers then run ahead of them
    stop = asyncio.Event()
    written = 0

    async def writer() -> None:
        nonlocal written
        while not stop.is_set():
            written += len(await orders(store, 1))

    writers = [asyncio.create_task(writer()) for _ in range(3)]
    try:
        code, out = await run_orders("backup", str(tmp_path / "backup"), env={"DATABASE_URL": database_url})
        during = written
    finally:
        stop.set()
        await asyncio.gather(*writers)
    assert code == 0, out
    assert during > 0, "the writers wrote nothing while the backup ran"
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert await pool.fetchval("SELECT count(*) FROM events") > manifest["events"]  # writes went on after

    async with fresh_database(server_url, "orders_restored") as restored_url:
        code, out = await run_orders("restore", str(tmp_path / "backup"), env={"DATABASE_URL": restored_url})
        assert code == 0, out
        assert out.splitlines()[-1] == "orders restore: no differences"
        async with open_pool(restored_url, max_size=4) as restored:
            assert (await verify(restored, record=False)).ok
            heads = {r[0]: {"version": r[1], "hash": r[2]} for r in await restored.fetch(HEADS)}
            assert heads == manifest["streams"]
            assert await restored.fetchval("SELECT count(*) FROM events") == manifest["events"]
            for name, projection in PROJECTIONS.items():
                kept = {t: await contents(restored, t) for t in projection.tables}
                await rebuild(restored, name)
                assert kept == {t: await contents(restored, t) for t in projection.tables}
            # The restored service goes on: a new order reaches the subscriptions, and every
            # placement or cancellation of the log has exactly one notification.
            await orders(EventStore(restored), 3)
            await catch_up(restored_url, restored)
            assert await restored.fetchval("SELECT count(*) FROM customer_orders") == len(heads) + 3
            causes = await restored.fetchval(
                "SELECT count(*) FROM events WHERE type IN ('OrderPlaced', 'OrderCancelled')"
            )
            assert await restored.fetchval("SELECT count(*) FROM outbox") == causes


async def test_a_restore_into_a_new_embedded_data_folder_goes_on_where_the_backup_stood(
    same_major: None, database_url: str, pool: asyncpg.Pool, store: EventStore, tmp_path: Path
) -> None:
    """A new server counts its transactions from the start: the restored log must still be read in order."""
    await pool.execute(BURN_TRANSACTION_IDS)  # the old server is further on than the new one will be
    await orders(store, 4)
    await catch_up(database_url, pool)
    await orders(store, 3)  # written, not yet seen by the subscriptions
    code, out = await run_orders("backup", str(tmp_path / "backup"), env={"DATABASE_URL": database_url})
    assert code == 0, out

    with ExitStack() as stack:
        # Not under tmp_path: each pytest session takes the others' rights away from
        # /tmp/pytest-of-<user>, and the server runs as a user of its own.
        data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="orders-restore-")))
        env = {"ORDERS_DATA_DIR": str(data), "DATABASE_URL": ""}
        code, out = await run_orders("restore", str(tmp_path / "backup"), env=env)
        assert code == 0, out
        assert out.splitlines()[-1] == "orders restore: no differences"

        server = embedded_postgres(data / "postgres", delete=True)
        url = await asyncio.to_thread(stack.enter_context, server)
        async with open_pool(url, max_size=4) as restored:
            await orders(EventStore(restored), 2)
            await catch_up(url, restored)
            assert await restored.fetchval("SELECT count(*) FROM customer_orders") == 4 + 3 + 2
            causes = await restored.fetchval(
                "SELECT count(*) FROM events WHERE type IN ('OrderPlaced', 'OrderCancelled')"
            )
            assert await restored.fetchval("SELECT count(*) FROM outbox") == causes


async def test_a_log_whose_subscriptions_never_ran_restores_too(
    same_major: None, database_url: str, store: EventStore, server_url: str, tmp_path: Path
) -> None:
    await orders(store, 2)
    code, out = await run_orders("backup", str(tmp_path / "backup"), env={"DATABASE_URL": database_url})
    assert code == 0, out
    async with fresh_database(server_url, "orders_restored") as restored_url:
        code, out = await run_orders("restore", str(tmp_path / "backup"), env={"DATABASE_URL": restored_url})
        assert code == 0, out
        async with open_pool(restored_url, max_size=2) as restored:
            await catch_up(restored_url, restored)
            assert await restored.fetchval("SELECT count(*) FROM outbox") == 1  # the one placed order


async def test_a_restore_into_a_database_that_is_not_empty_is_refused_and_changes_nothing(
    same_major: None, database_url: str, pool: asyncpg.Pool, store: EventStore, tmp_path: Path
) -> None:
    await orders(store, 2)
    code, out = await run_orders("backup", str(tmp_path / "backup"), env={"DATABASE_URL": database_url})
    assert code == 0, out
    await orders(store, 1)
    before = await pool.fetch("SELECT event_id, tx_id::text FROM events ORDER BY position")

    code, out = await run_orders("restore", str(tmp_path / "backup"), env={"DATABASE_URL": database_url})

    assert code == 1
    assert "the target database is not empty" in out
    assert "restore only into a new, empty database" in out
    assert await pool.fetch("SELECT event_id, tx_id::text FROM events ORDER BY position") == before


async def test_a_restore_into_an_embedded_data_folder_that_is_not_empty_is_refused(tmp_path: Path) -> None:
    (tmp_path / "backup" / "dump").mkdir(parents=True)
    (tmp_path / "backup" / "manifest.json").write_text("{}")
    folder = tmp_path / "data" / "postgres"
    folder.mkdir(parents=True)
    (folder / "PG_VERSION").write_text("18\n")
    env = {"ORDERS_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": ""}

    code, out = await run_orders("restore", str(tmp_path / "backup"), env=env)

    assert code == 1
    assert f"{folder} is not empty: restore into a new data folder" in out
    assert sorted(p.name for p in folder.iterdir()) == ["PG_VERSION"]


async def test_a_backup_into_a_folder_that_is_not_empty_is_refused(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")

    code, out = await run_orders("backup", str(tmp_path), env={"DATABASE_URL": database_url})

    assert code == 1
    assert "is not empty: a backup goes into a new or empty folder" in out
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "dump").exists()


async def test_a_server_of_another_major_version_is_refused_before_anything_is_written(
    server_url: str, database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """Runs where the test server is not the tools' version (CI's external PostgreSQL 15 run)."""
    major = await server_major(server_url)
    if major == tools_major():
        pytest.skip(f"the test server runs PostgreSQL {major}, the tools' own version")
    before = await pool.fetchval("SELECT count(*) FROM events")

    code, out = await run_orders("backup", str(tmp_path / "backup"), env={"DATABASE_URL": database_url})

    assert code == 1
    assert f"this server runs PostgreSQL {major}" in out
    assert f"use PostgreSQL {major}'s own pg_dump and pg_restore" in out
    assert not (tmp_path / "backup").exists()
    assert await pool.fetchval("SELECT count(*) FROM events") == before


# ------------------------------------------------------------------ personal data and older backups

WRONG_MASTER_TEXT = "[sealed: wrapped by another master key]"


async def test_a_backup_restored_after_a_forget_and_a_rotation_cannot_show_any_customers_details(
    same_major: None, database_url: str, pool: asyncpg.Pool, server_url: str, tmp_path: Path
) -> None:
    """Backup A; forget one customer; rotate (the old master key destroyed); restore A.

    Backup A holds the forgotten customer's key, wrapped by the old master key: destroying that
    key is what erases them from A. The customer who was not forgotten is wrapped by it too, so A
    shows no customer's details any more, only orders, totals and history.
    """
    key_file = tmp_path / "keys" / "master.key"
    env = {"DATABASE_URL": database_url, "ORDERS_MASTER_KEY_FILE": str(key_file)}
    orders_of_a = Orders(pool, master=MasterKey.from_file(key_file, create=True))
    old_key = MasterKey.from_file(key_file)
    placed = {}
    for customer_id, name in (("cust-gone", "Gwendolyn Gone"), ("cust-kept", "Kasimir Kept")):
        details = RegisterCustomer(customer_id, name, f"{customer_id}@example.org", f"1 {name} Street")
        await orders_of_a.register_customer(details, Envelope(uuid4()))
        order_id = str(uuid4())
        for command in (
            CreateOrder(order_id, customer_id, "EUR"),
            AddItem(order_id, "K-1", "Kettle", 2500, 2),
            PlaceOrder(order_id),
        ):
            await orders_of_a.execute(command, Envelope(uuid4()))
        placed[customer_id] = order_id
    code, out = await run_orders("backup", str(tmp_path / "backup-a"), env=env)
    assert code == 0, out

    code, out = await run_orders("customers", "forget", "cust-gone", "--reason", "asked", env=env)
    assert code == 0, out
    code, out = await run_orders("keys", "rotate", env=env)
    assert code == 0, out
    current = MasterKey.from_file(key_file)
    assert current.id != old_key.id

    async with fresh_database(server_url, "orders_restored") as restored_url:
        code, out = await run_orders(
            "restore", str(tmp_path / "backup-a"), env={**env, "DATABASE_URL": restored_url}
        )
        assert code == 0, out
        assert (
            f"orders restore: 2 of 2 customer keys are wrapped by master key {old_key.id}, "
            f"not the configured {current.id}: those customers' personal data cannot be opened"
        ) in out.replace("\n", " ")
        assert out.splitlines()[-1] == "orders restore: no differences"
        async with open_pool(restored_url, max_size=4) as restored:
            reader = Orders(restored, master=current)
            for customer_id in ("cust-gone", "cust-kept"):
                shown = await reader.customer(customer_id)
                assert (shown.status, shown.name, shown.email, shown.address) == (
                    "registered",  # in A, they were not forgotten yet
                    *[WRONG_MASTER_TEXT] * 3,
                )
                at = await reader.order_at(placed[customer_id])
                assert (at.order.ship_to, at.order.total_cents, at.order.status) == (
                    WRONG_MASTER_TEXT,
                    5000,
                    "placed",
                )
            listed, _ = await reader.list_customers()
            assert sorted(c.customer_id for c in listed) == ["cust-gone", "cust-kept"]
            # What the destroyed key would have opened: the forgotten customer, from backup A.
            assert (await Orders(restored, master=old_key).customer("cust-gone")).name == "Gwendolyn Gone"
            code, out = await run_orders("verify", env={**env, "DATABASE_URL": restored_url})
            assert code == 0, out
            assert out.splitlines()[-1] == "orders verify: no differences"
            assert f"wrapped by master key {old_key.id}, not the configured {current.id}" in out.replace(
                "\n", " "
            )
