"""Numbered migrations: applied once, in order, even by two processes starting together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest

from store.migrations import migrate, migration_files
from tests.support.databases import fresh_database
from web.api.commands import StoredAnswer

ALL_MIGRATIONS = [f"{number:03d}_{name}" for number, name, _ in migration_files()]
APPLIED = "SELECT number, name, applied_at FROM schema_migrations ORDER BY number"


@pytest.fixture
async def empty_database_url(server_url: str) -> AsyncIterator[str]:
    """A database with nothing in it: not cloned from the migrated template."""
    async with fresh_database(server_url, "orders_empty") as url:
        yield url


async def test_migrating_a_migrated_database_applies_nothing(pool: asyncpg.Pool) -> None:
    before = await pool.fetch(APPLIED)

    async with pool.acquire() as conn:
        applied = await migrate(conn)

    assert applied == []
    assert await pool.fetch(APPLIED) == before
    assert [f"{r['number']:03d}_{r['name']}" for r in before] == ALL_MIGRATIONS


async def test_two_migrators_starting_together_apply_each_migration_once(empty_database_url: str) -> None:
    first = await asyncpg.connect(empty_database_url)
    second = await asyncpg.connect(empty_database_url)
    try:
        applied = await asyncio.gather(migrate(first), migrate(second))
        again = await migrate(first)
        numbers = await first.fetch(
            "SELECT number, count(*) FROM schema_migrations GROUP BY number ORDER BY 1"
        )
        tables = await first.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
    finally:
        await first.close()
        await second.close()

    assert sorted(applied, key=len) == [[], ALL_MIGRATIONS]
    assert again == []
    assert [(r["number"], r["count"]) for r in numbers] == [(number, 1) for number, _, _ in migration_files()]
    assert {r["tablename"] for r in tables} >= {"events", "commands", "order_read_model", "schema_migrations"}


async def test_an_idempotency_answer_kept_before_013_replays_the_same_after_it(
    empty_database_url: str,
) -> None:
    """013 makes the kept answer opaque bytes; an answer kept in the old columns is carried over."""
    body = b'{"order": {"order_id": "x"}, "version": 2}\n' * 40  # long enough for base64's line breaks
    conn = await asyncpg.connect(empty_database_url)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (number integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for number, name, path in migration_files():
            if number < 13:
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)", number, name)
        await conn.execute(
            "INSERT INTO idempotency_keys (key, fingerprint, status, body, etag, location) "
            "VALUES ('answered', 'f1', 201, $1, '\"2\"', '/api/orders/x'), "
            "('pending', 'f2', NULL, NULL, NULL, NULL)",
            body,
        )
        assert "013_idempotency_answer_opaque" in await migrate(conn)
        rows = dict(await conn.fetch("SELECT key, answer FROM idempotency_keys"))
    finally:
        await conn.close()
    assert rows["pending"] is None
    assert msgspec.json.decode(rows["answered"], type=StoredAnswer) == StoredAnswer(
        201, body, '"2"', "/api/orders/x"
    )
