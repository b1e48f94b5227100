from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.databases import fresh_database_sync


@pytest.fixture
def database_url_sync(server_url: str) -> Iterator[str]:
    """An empty database (not cloned from the migrated template), for the migrate command."""
    with fresh_database_sync(server_url, "orders_cli") as url:
        yield url
