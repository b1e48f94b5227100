"""Numbered migrations: applied once, in order, even by two processes starting together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from store.migrations import migrate, migration_files
from tests.support.databases import fresh_database

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
