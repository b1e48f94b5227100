"""An open transaction holds the horizon: subscriptions stall while writes go on, and the report names it.

When it ends, the subscription applies each held event exactly once. The
app's own connections are named and limited: the server ends one left idle
in a transaction, and cancels a statement past its time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from store.database import SessionLimits, connect_one, connect_pool
from store.horizon import horizon
from store.log.event_store import EventStore
from store.read.subscriptions import SubscriptionRunner
from tests.support.subscriptions import Recorder, write_orders
from tests.support.waiting import eventually


@pytest.fixture
async def operator(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Someone else's session on the app's database: an operator's psql, say."""
    conn = await asyncpg.connect(database_url, server_settings={"application_name": "psql"})
    await conn.execute("CREATE TABLE scratch (note text)")
    try:
        yield conn
    finally:
        await conn.close()


async def applied(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM applied_events"))


async def test_an_open_transaction_stalls_a_subscription_until_it_ends_then_each_event_applies_once(
    database_url: str, pool: asyncpg.Pool, store: EventStore, recorder: Recorder, operator: asyncpg.Connection
) -> None:
    runner = SubscriptionRunner(database_url, pool, recorder, batch_size=7)
    await write_orders(store, 5, items=2)
    before = await pool.fetchval("SELECT count(*) FROM events")
    assert await runner.catch_up() == before

    held = operator.transaction()
    await held.start()
    await operator.execute("INSERT INTO scratch VALUES ('looking into something')")
    await write_orders(store, 6, items=2)  # commands go on
    written = await pool.fetchval("SELECT count(*) FROM events") - before
    assert written >= 6 * 3

    assert await runner.catch_up() == 0, "the subscription saw past an open transaction"
    assert await applied(pool) == before
    report = await horizon(pool, warning_after=0.0)
    assert report.lag_events == written
    assert report.lag_seconds > 0
    assert report.held
    assert report.holder is not None
    assert report.holder.pid == operator.get_server_pid()
    assert report.holder.application_name == "psql"
    assert not report.holder.ours
    assert report.holder.state == "idle in transaction"
    assert report.holder.query == "INSERT INTO scratch VALUES ('looking into something')"
    assert report.holder.transaction_started is not None
    assert not (await horizon(pool, warning_after=3600.0)).held, "young lag is no warning"

    await held.commit()
    assert await runner.catch_up() == written
    assert await runner.catch_up() == 0
    assert await applied(pool) == before + written  # applied_events' primary key refuses a second time
    assert (
        await pool.fetchval("SELECT events_applied FROM subscriptions WHERE name = $1", recorder.name)
        == before + written
    )
    cleared = await horizon(pool, warning_after=0.0)
    assert (cleared.lag_events, cleared.held) == (0, False)


async def test_a_read_only_transaction_does_not_hold_the_horizon(
    pool: asyncpg.Pool, store: EventStore, operator: asyncpg.Connection
) -> None:
    async with operator.transaction(isolation="repeatable_read", readonly=True):
        await operator.fetchval("SELECT count(*) FROM events")
        await write_orders(store, 2, items=1)
        report = await horizon(pool, warning_after=0.0)
    assert report.lag_events == 0
    assert report.holder is None


async def test_the_server_ends_an_app_connection_left_idle_in_a_transaction(
    database_url: str, store: EventStore
) -> None:
    quick = SessionLimits(idle_in_transaction=0.3, statement=60.0)
    app_pool = await connect_pool(database_url, min_size=1, max_size=2, role="web", limits=quick)
    try:
        conn = await app_pool.acquire()
        pid = conn.get_server_pid()
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("CREATE TABLE forgotten (note text)")
        await conn.execute("INSERT INTO forgotten VALUES ('left open')")

        # Nothing is sent on it from here: the server ends the session by itself.
        async def ended() -> bool:
            return not await store.pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)

        await eventually(ended, timeout=10)
        with pytest.raises(asyncpg.InterfaceError):
            await transaction.rollback()
        await app_pool.release(conn)
        assert await store.pool.fetchval("SELECT to_regclass('forgotten') IS NULL"), "it was rolled back"
        assert await app_pool.fetchval("SELECT 1") == 1, "the pool opens a new connection in its place"
    finally:
        await app_pool.close()


async def test_a_holder_that_is_one_of_the_apps_connections_says_so(
    database_url: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    app_pool = await connect_pool(database_url, min_size=1, max_size=1, role="web")
    try:
        async with app_pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_current_xact_id()")
            (order_id,) = await write_orders(store, 1, items=1)
            report = await horizon(pool, warning_after=0.0)
    finally:
        await app_pool.close()
    written = await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", order_id)
    assert report.holder is not None
    assert (report.holder.application_name, report.holder.ours) == ("orders:web", True)
    assert report.lag_events == written  # created and one item, placed or not: 2 or 3


async def test_the_server_cancels_an_app_statement_past_its_time(database_url: str) -> None:
    app_pool = await connect_pool(
        database_url, min_size=1, max_size=1, limits=SessionLimits(idle_in_transaction=60.0, statement=0.2)
    )
    try:
        with pytest.raises(asyncpg.QueryCanceledError, match="statement timeout"):
            await app_pool.execute("SELECT pg_sleep(5)")
        assert await app_pool.fetchval("SELECT 1") == 1
    finally:
        await app_pool.close()


async def test_the_apps_connections_say_whose_they_are(database_url: str, pool: asyncpg.Pool) -> None:
    app_pool = await connect_pool(database_url, min_size=1, max_size=1, role="web")
    leader = await connect_one(database_url, "subscription customer_summaries")
    try:
        names = {
            row[0]
            for row in await pool.fetch(
                "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()"
            )
        }
        settings = await leader.fetchrow(
            "SELECT current_setting('idle_in_transaction_session_timeout'), "
            "current_setting('statement_timeout')"
        )
    finally:
        await leader.close()
        await app_pool.close()
    assert {"orders:web", "orders:subscription customer_summaries", "orders:cli"} <= names
    assert tuple(settings) == ("1min", "1min")


async def test_the_report_is_quiet_when_nothing_is_open(pool: asyncpg.Pool, store: EventStore) -> None:
    await write_orders(store, 2, items=1)
    report = await horizon(pool, warning_after=0.0)
    assert (report.lag_events, report.lag_seconds, report.held, report.holder) == (0, 0.0, False, None)
