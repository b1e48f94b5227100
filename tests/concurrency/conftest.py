"""A real app server (uvicorn, two worker processes) on a test database, and a client for its forms."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from store.database import connect_pool
from tests.databases import fresh_database_sync
from tests.servers import uvicorn_server

ADD_FORM_VERSION = re.compile(
    r'<form class="add-item"[^>]*>.*?name="expected_version" value="(\d+)"', re.DOTALL
)
PROBLEM = re.compile(r'<p class="problem" role="alert" id="[^"]+">([^<]+)</p>')
FRESH_IDS = re.compile(r'name="command_id" value="[0-9a-f-]+"')


@pytest.fixture(scope="package")
def shared_database(server_url: str, template_database: str) -> Iterator[str]:
    """One database for the HTTP tests of this folder, so that they share one server start.

    Each test works on orders of its own and looks only at those.
    """
    with fresh_database_sync(server_url, "orders_concurrency", template_database) as url:
        yield url


@pytest.fixture(scope="package")
def server(shared_database: str) -> Iterator[str]:
    with uvicorn_server(shared_database, workers=2) as url:
        yield url


@pytest.fixture
async def shared_pool(shared_database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect_pool(shared_database, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def http(server: str) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=120, max_keepalive_connections=120)
    async with httpx.AsyncClient(base_url=server, timeout=60, limits=limits) as client:
        await client.get("/orders")  # the CSRF cookie
        client.headers["x-csrftoken"] = client.cookies["csrftoken"]
        yield client


def seen_version(html: str) -> int:
    """The version the add-item form of an order page holds (what its next post expects)."""
    found = ADD_FORM_VERSION.search(html)
    assert found, "the answer has no add-item form"
    return int(found.group(1))


def problem(html: str) -> str | None:
    found = PROBLEM.search(html)
    return found.group(1) if found else None


def without_fresh_ids(html: str) -> str:
    """The page as a person reads it: each rendered form carries a new command id, nothing else differs."""
    return FRESH_IDS.sub('name="command_id" value=""', html)
