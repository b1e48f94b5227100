"""The log is tamper-evident: a row changed behind the app's back is found and its stream named.

Each test changes the database as an intruder with SQL access would, lifting
the immutability trigger where it has to, then runs the verification.
"""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import pytest

import store.migrations
from store.log.event_store import EventStore
from store.log.integrity import Report, event_hash, verify
from store.migrations import migrate
from tests.support.databases import fresh_database
from tests.support.figures import record
from tests.support.tampering import behind_the_apps_back, change, orders

RECOMPUTED_HASH = """hash = event_hash(
    (SELECT hash FROM events p WHERE p.stream_id = events.stream_id AND p.version = events.version - 1),
    stream_id, version, event_id, type, schema_version, data, metadata, recorded_at)"""


def named(report: Report, kind: str | None = None) -> set[str]:
    return {f.stream_id for f in report.findings if kind is None or f.kind == kind}


async def test_a_log_written_by_the_app_verifies_and_every_hash_is_the_one_the_database_computes(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    await orders(store, 6)
    report = await verify(pool)
    assert report.ok, report.findings
    assert (report.streams, report.events, report.read_model_rows) == (6, 22, 6)
    rows = await pool.fetch(
        "SELECT stream_id, version, event_id::text, type, schema_version, data::text, metadata::text, "
        "recorded_at, hash, event_hash(lag(hash) OVER w, stream_id, version, event_id, type, "
        "schema_version, data, metadata, recorded_at) AS in_sql "
        "FROM events WINDOW w AS (PARTITION BY stream_id ORDER BY version) ORDER BY stream_id, version"
    )
    previous: dict[str, bytes] = {}
    for row in rows:
        in_python = event_hash(previous.get(row["stream_id"]), *row[:8])
        assert row["hash"] == in_python == row["in_sql"]
        previous[row["stream_id"]] = row["hash"]


async def test_an_event_changed_behind_the_apps_back_is_found_and_its_stream_named(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    _draft, placed, _cancelled = await orders(store)
    async with behind_the_apps_back(pool) as conn:
        await change(conn, placed, 2, "data = jsonb_set(data, '{unit_price_cents}', '1')")
    report = await verify(pool)
    assert not report.ok
    assert named(report, "chain") == {placed}
    assert any("version 2: the stored hash does not match" in f.detail for f in report.findings)
    # Its read-model row no longer agrees with the (altered) events either; nothing else is named.
    assert named(report) == {placed}
    record("tamper: a changed event, its stream named", "yes (hash chain, version 2)")


async def test_metadata_and_time_are_covered_by_the_hash_too(pool: asyncpg.Pool, store: EventStore) -> None:
    draft, _placed, cancelled = await orders(store)
    async with behind_the_apps_back(pool) as conn:
        await change(conn, draft, 1, """metadata = jsonb_set(metadata, '{actor}', '"someone-else"')""")
        await change(conn, cancelled, 3, "recorded_at = recorded_at - interval '1 day'")
    report = await verify(pool)
    assert named(report, "chain") == {draft, cancelled}
    assert named(report, "read_model") == set()


async def test_a_stream_rewritten_whole_with_fresh_hashes_is_caught_against_the_last_run(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    _draft, _placed, cancelled = await orders(store)
    assert (await verify(pool)).ok  # remembers every stream's head
    async with behind_the_apps_back(pool) as conn:
        # A careful intruder: change an event, then recompute every hash after it, in order.
        await change(conn, cancelled, 2, "data = jsonb_set(data, '{quantity}', '20')")
        for version in (2, 3, 4):
            await change(conn, cancelled, version, RECOMPUTED_HASH)
    report = await verify(pool)
    assert named(report, "chain") == set(), "the chain itself is consistent again"
    assert named(report, "anchor") == {cancelled}
    assert "no longer has the hash the last run saw" in report.findings[0].detail
    record("tamper: a stream rewritten with recomputed hashes", "caught against the last run's heads")


async def test_events_removed_from_the_end_or_the_middle_are_found(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    draft, placed, _cancelled = await orders(store)
    assert (await verify(pool)).ok
    async with behind_the_apps_back(pool) as conn:
        await conn.execute("DELETE FROM events WHERE stream_id = $1 AND version = 4", placed)
        await conn.execute("DELETE FROM events WHERE stream_id = $1 AND version = 2", draft)
    report = await verify(pool)
    assert named(report, "versions") == {draft}
    assert named(report, "anchor") == {placed}  # its head is gone; the draft's head is still there
    assert {draft, placed} <= named(report, "read_model")
    assert {draft, placed} <= named(report, "command")


async def test_a_read_model_row_altered_by_hand_is_found(pool: asyncpg.Pool, store: EventStore) -> None:
    draft, placed, cancelled = await orders(store)
    await pool.execute(
        "UPDATE order_read_model SET total_cents = 1, status = 'placed' WHERE order_id = $1", draft
    )
    stray = str(uuid4())
    await pool.execute(
        "INSERT INTO order_read_model SELECT $1, customer_id, currency, status, line_count, item_count, "
        "total_cents, version, created_at, updated_at FROM order_read_model WHERE order_id = $2",
        stray,
        placed,
    )
    await pool.execute("DELETE FROM order_read_model WHERE order_id = $1", cancelled)
    report = await verify(pool)
    assert named(report) == named(report, "read_model") == {draft, stray, cancelled}
    details = {f.detail for f in report.findings if f.stream_id == draft}
    assert details == {
        "order_read_model has status = 'placed'; the events say 'draft'",
        "order_read_model has total_cents = 1; the events say 1900",
    }
    record("tamper: a read-model row altered, added or removed by hand", "each found, its order named")


async def test_events_written_before_the_hash_chain_are_chained_by_its_migration(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fresh_database(server_url, "orders_chain") as url:
        conn = await asyncpg.connect(url)
        try:
            every = store.migrations.migration_files()
            monkeypatch.setattr(store.migrations, "migration_files", lambda: [m for m in every if m[0] < 7])
            await migrate(conn)
            for version, data in enumerate(
                ['{"order_id": "old", "customer_id": "c", "currency": "EUR"}', "{}"], 1
            ):
                await conn.execute(
                    "INSERT INTO events (stream_id, version, event_id, type, schema_version, data) "
                    "VALUES ('old', $1, $2, 'OrderCreated', 1, $3::jsonb)",
                    version,
                    uuid4(),
                    data,
                )
            monkeypatch.undo()
            assert "007_event_hash_chain" in await migrate(conn)
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        assert pool is not None
        try:
            report = await verify(pool)
        finally:
            await pool.close()
        assert named(report, "chain") == set()
        assert named(report, "versions") == set()
