"""One PostgreSQL per test session; every test that touches storage gets its own database.

The server is embedded (deleted afterwards) unless TEST_DATABASE_URL names one.
Migrations run once into a template database; each test clones it with
CREATE DATABASE … TEMPLATE, which takes a few milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from store.database import connect_pool, embedded_postgres
from store.log.event_store import EventStore
from store.migrations import migrate
from store.read.read_model import ReadModel
from tests.databases import database_name, fresh_database, fresh_database_sync


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: they hold Playwright's event loop while they run."""
    for item in items:
        if "browser" in item.path.parts:
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: "browser" in item.path.parts)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    with (
        tempfile.TemporaryDirectory(prefix="orders-test-pg-") as folder,
        embedded_postgres(Path(folder) / "pg", delete=True) as url,
    ):
        # A throw-away server: durability buys nothing here, and every test clones a database.
        asyncio.run(_tune_for_tests(url))
        yield url


async def _tune_for_tests(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for setting in ("fsync = off", "synchronous_commit = off", "full_page_writes = off"):
            await conn.execute(f"ALTER SYSTEM SET {setting}")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def template_database(server_url: str) -> Iterator[str]:
    with fresh_database_sync(server_url, "orders_template") as url:
        asyncio.run(_migrate(url))
        yield database_name(url)


async def _migrate(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()


@pytest.fixture
async def database_url(server_url: str, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test alone."""
    async with fresh_database(server_url, "orders_test", template_database) as url:
        yield url


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect_pool(database_url, min_size=1, max_size=8)
    yield pool
    await pool.close()


@pytest.fixture
def store(pool: asyncpg.Pool) -> EventStore:
    return EventStore(pool)


@pytest.fixture
def read_model(pool: asyncpg.Pool) -> ReadModel:
    return ReadModel(pool)
