"""Databases on the test server: made for a test (or a module, or the session) and dropped after.

Each is empty, for what migrates a database itself, or a clone of the migrated
template (CREATE DATABASE … TEMPLATE, which takes a few milliseconds).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import urlsplit
from uuid import uuid4

import asyncpg

from store.database import connect_pool
from tests.support.servers import with_database


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


async def create_database(server_url: str, name: str, template: str | None = None) -> str:
    """Create `name`, empty or cloned from `template`; return its URL."""
    clone = "" if template is None else f' TEMPLATE "{template}"'
    await _as_admin(server_url, f'CREATE DATABASE "{name}"{clone}')
    return with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    """Drop `name` if it exists, closing the connections still open to it."""
    await _as_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def fresh_database(server_url: str, prefix: str, template: str | None = None) -> AsyncIterator[str]:
    """A new database `prefix`_<random>, empty or cloned from `template`, while inside; its URL."""
    name = f"{prefix}_{uuid4().hex[:16]}"
    url = await create_database(server_url, name, template)
    try:
        yield url
    finally:
        await drop_database(server_url, name)


@asynccontextmanager
async def open_pool(url: str, max_size: int) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on `url`, closed on the way out."""
    pool = await connect_pool(url, min_size=1, max_size=max_size)
    try:
        yield pool
    finally:
        await pool.close()


@contextmanager
def fresh_database_sync(server_url: str, prefix: str, template: str | None = None) -> Iterator[str]:
    """`fresh_database` for synchronous fixtures, such as those that start a server process."""
    name = f"{prefix}_{uuid4().hex[:16]}"
    url = asyncio.run(create_database(server_url, name, template))
    try:
        yield url
    finally:
        asyncio.run(drop_database(server_url, name))


async def _as_admin(server_url: str, statement: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()
