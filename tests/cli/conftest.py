from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from tests.servers import with_database


@pytest.fixture
def database_url_sync(server_url: str) -> Iterator[str]:
    """An empty database (not cloned from the migrated template), for the migrate command."""
    name = f"orders_cli_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(sql)
        finally:
            await admin.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    yield with_database(server_url, name)
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
