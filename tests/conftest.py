"""The fixtures of every test folder: one PostgreSQL per session, a database per test, the app in process.

The server is embedded (deleted afterwards) unless TEST_DATABASE_URL names one.
Migrations run once into a template database; each test clones it with
CREATE DATABASE … TEMPLATE, which takes a few milliseconds. Plain helper
classes live in tests/support; this module only builds them for a test.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient

from domain.order import fold
from store.database import embedded_postgres
from store.log.event_store import EventStore
from store.migrations import migrate
from store.read.read_model import OrderSummary, ReadModel
from tests.support.accounts import session_at, token_at
from tests.support.api import Api
from tests.support.app import make_app
from tests.support.databases import database_name, fresh_database, fresh_database_sync, open_pool
from tests.support.figures import print_figures
from tests.support.ledger import Ledger
from tests.support.page_client import PageClient
from tests.support.servers import uvicorn_process, uvicorn_server
from tests.support.subscriptions import Recorder
from web.access import SESSION_COOKIE

BROWSER_TESTS = Path(__file__).resolve().parent / "browser"
EventRows = Callable[[str], Awaitable[list[asyncpg.Record]]]
ReadModelCheck = Callable[[str], Awaitable[OrderSummary]]
READ_MODEL_FIELDS = "order_id customer_id currency status line_count item_count total_cents version".split()


def _in_browser_folder(item: pytest.Item) -> bool:
    return item.path.is_relative_to(BROWSER_TESTS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """PageClient tests last: they hold Playwright's event loop while they run."""
    for item in items:
        if _in_browser_folder(item):
            item.add_marker(pytest.mark.browser)
    items.sort(key=_in_browser_folder)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures the fault and security tests measured, if any ran."""
    print_figures(terminalreporter)


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
    async with open_pool(database_url, max_size=8) as pool:
        yield pool


@pytest.fixture
def store(pool: asyncpg.Pool) -> EventStore:
    return EventStore(pool)


@pytest.fixture
def read_model(pool: asyncpg.Pool) -> ReadModel:
    return ReadModel(pool)


@pytest.fixture
def database_url_sync(server_url: str) -> Iterator[str]:
    """An empty database (not cloned from the migrated template), for the migrate command."""
    with fresh_database_sync(server_url, "orders_cli") as url:
        yield url


# The store as an auditor sees it.


@pytest.fixture
def order_id() -> str:
    return f"order-{uuid4()}"


@pytest.fixture
def event_rows(pool: asyncpg.Pool) -> EventRows:
    """The stream's rows in `events` as plain SQL shows them, oldest first."""

    async def rows(stream_id: str) -> list[asyncpg.Record]:
        return await pool.fetch(
            """
            SELECT position, stream_id, version, event_id, type, schema_version, data::text AS data,
                   metadata::text AS metadata, recorded_at, tx_id::text AS tx_id
            FROM events WHERE stream_id = $1 ORDER BY version
            """,
            stream_id,
        )

    return rows


@pytest.fixture
def read_model_matches_log(store: EventStore, read_model: ReadModel) -> ReadModelCheck:
    """Assert that the order's read-model row shows the fold of its stream; return the row."""

    async def check(stream_id: str) -> OrderSummary:
        order = fold(e.event for e in await store.read_stream(stream_id))
        row = await read_model.get_order(stream_id)
        assert row is not None, f"no read-model row for {stream_id}"
        shown = {field: getattr(row, field) for field in READ_MODEL_FIELDS}
        assert shown == {
            "order_id": order.order_id,
            "customer_id": order.customer_id,
            "currency": order.currency,
            "status": order.status,
            "line_count": len(order.lines),
            "item_count": order.item_count,
            "total_cents": order.total_cents,
            "version": order.version,
        }
        return row

    return check


@pytest.fixture
def ledger(pool: asyncpg.Pool) -> Ledger:
    return Ledger(pool)


@pytest.fixture
async def recorder(pool: asyncpg.Pool) -> Recorder:
    await pool.execute("CREATE TABLE applied_events (event_id uuid PRIMARY KEY, position bigint NOT NULL)")
    return Recorder()


# The app in process, on the test's database.


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    # The pages read the inline read model only; the catch-up runners are left off, which also
    # keeps a runner that ignores its cancel (see test_app_lifecycle) from hanging the teardown.
    app = make_app(database_url, csrf_secret="test-secret", pool_size=4, subscriptions=False)
    async with AsyncTestClient(app=app) as client:
        # Signed in as an admin, who may use every page; tests of the other roles sign in as them.
        client.cookies.set(SESSION_COOKIE, await session_at(database_url, "ada", "admin"))
        yield client


@pytest.fixture
def browser(client: AsyncTestClient[Any]) -> PageClient:
    return PageClient(client)


@pytest.fixture
async def app_client(database_url: str) -> AsyncIterator[PageClient]:
    """The app with its workflows running, a quick relay, and a draft expiry of 1.5 seconds."""
    app = make_app(database_url, csrf_secret="test-secret", pool_size=6, draft_expiry=1.5)
    async with AsyncTestClient(app=app) as client:
        client.cookies.set(SESSION_COOKIE, await session_at(database_url, "ada", "admin"))
        yield PageClient(client)


@asynccontextmanager
async def running_api(database_url: str) -> AsyncIterator[Api]:
    """The app with its subscriptions, as a program using /api meets it."""
    app = make_app(database_url, csrf_secret="test-secret", pool_size=4)
    async with AsyncTestClient(app=app) as client:
        # A clerk's token: every order command and query (tests of the other roles use their own).
        client.headers["Authorization"] = "Bearer " + await token_at(database_url, "till", "clerk")
        yield Api(client)


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    async with running_api(database_url) as api:
        yield api


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_database_url(server_url: str, template_database: str) -> AsyncIterator[str]:
    """One database for a whole module, for tests that each make their own orders and only read deltas."""
    async with fresh_database(server_url, "orders_api", template_database) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_api(module_database_url: str) -> AsyncIterator[Api]:
    async with running_api(module_database_url) as api:
        yield api


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_ledger(module_database_url: str) -> AsyncIterator[Ledger]:
    async with open_pool(module_database_url, max_size=2) as pool:
        yield Ledger(pool)


# Real uvicorn servers, in processes of their own.


@pytest.fixture
def servers(database_url: str) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    """Two app instances on one database, as in a deployment behind a load balancer."""
    with ExitStack() as stack:
        yield [stack.enter_context(uvicorn_process(database_url)) for _ in range(2)]


@pytest.fixture(scope="module")
def shared_database(server_url: str, template_database: str) -> Iterator[str]:
    """One database for the HTTP tests of a module, so that they share one server start.

    Each test works on orders of its own and looks only at those.
    """
    with fresh_database_sync(server_url, "orders_concurrency", template_database) as url:
        yield url


@pytest.fixture(scope="module")
def server(shared_database: str) -> Iterator[str]:
    """uvicorn with two worker processes on the shared database."""
    with uvicorn_server(shared_database, workers=2) as url:
        yield url


@pytest.fixture
async def shared_pool(shared_database: str) -> AsyncIterator[asyncpg.Pool]:
    async with open_pool(shared_database, max_size=4) as pool:
        yield pool


@pytest.fixture
async def http(server: str, shared_database: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the shared server's forms, with the CSRF cookie and header."""
    # Idle connections are dropped after 2 s, before uvicorn closes them at 5 s: a POST sent on a
    # connection the server is closing at that moment fails with ReadError (seen on a busy CI run).
    limits = httpx.Limits(max_connections=120, max_keepalive_connections=120, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=server, timeout=60, limits=limits) as client:
        client.cookies.set(
            SESSION_COOKIE, await session_at(shared_database, f"clerk-{uuid4().hex[:8]}", "clerk")
        )
        await client.get("/orders")  # the CSRF cookie
        client.headers["x-csrftoken"] = client.cookies["csrftoken"]
        yield client
