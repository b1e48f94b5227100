"""An operator's open transaction stalls the subscriptions while clerks go on; the admin page and
/healthz?detail say so and name it; when it ends, every held event is applied exactly once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape

import anyio
import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from store.leader import this_instance
from tests.support.accounts import session_at
from tests.support.app import make_app
from tests.support.figures import record
from tests.support.page_client import PageClient
from tests.support.waiting import eventually
from web.access import SESSION_COOKIE

CUSTOMER = "hz-customer"
SUBSCRIPTIONS = "SELECT name, events_applied FROM subscriptions ORDER BY name"


@pytest.fixture
async def operations_client(database_url: str) -> AsyncIterator[PageClient]:
    """The app with its subscriptions, signed in as an admin; events unseen for 0.5 s are a warning."""
    app = make_app(database_url, csrf_secret="test-secret", pool_size=6, horizon_warning_seconds=0.5)
    async with AsyncTestClient(app=app) as client:
        client.cookies.set(SESSION_COOKIE, await session_at(database_url, "ada", "admin"))
        yield PageClient(client)


def text(html: str) -> str:
    """The page as a person reads it: no tags, one space between words."""
    words = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    return words.replace(" ,", ",").replace(" :", ":")


async def applied(pool: asyncpg.Pool) -> dict[str, int]:
    return {name: count for name, count in await pool.fetch(SUBSCRIPTIONS)}


async def drafts_of(pool: asyncpg.Pool) -> int | None:
    drafts: int | None = await pool.fetchval(
        "SELECT draft FROM customer_summaries WHERE customer_id = $1", CUSTOMER
    )
    return drafts


async def test_an_open_transaction_is_shown_holding_the_horizon_and_the_subscriptions_catch_up_once_it_ends(
    operations_client: PageClient, pool: asyncpg.Pool, database_url: str
) -> None:
    browser = operations_client
    await browser.draft_with_items(("TEA-1", "Green tea", "3.50", "1"), customer_id=CUSTOMER)
    before = await pool.fetchval("SELECT count(*) FROM events")

    async def caught_up_with(total: int) -> dict[str, int] | None:
        counts = await applied(pool)
        return counts if len(counts) >= 2 and set(counts.values()) == {total} else None

    subscriptions = await eventually(lambda: caught_up_with(before))
    assert await drafts_of(pool) == 1
    page = text((await browser.get("/admin/projections")).text)
    assert "Clear: catch-up readers can see every committed event." in page

    operator = await asyncpg.connect(database_url, server_settings={"application_name": "psql"})
    try:
        await operator.execute("CREATE TABLE scratch (note text)")
        held = operator.transaction()
        await held.start()
        await operator.execute("INSERT INTO scratch VALUES ('checking a refund')")
        for _ in range(2):  # clerks go on working
            await browser.draft_with_items(("CUP-1", "Cup", "1.00", "2"), customer_id=CUSTOMER)
        written = await pool.fetchval("SELECT count(*) FROM events") - before
        assert written == 4

        async def held_page() -> str | None:
            response = await browser.get("/admin/projections")
            assert response.status_code == 200
            shown = text(response.text)
            return shown if "The horizon is held" in shown else None

        page = await eventually(held_page)
        pid = operator.get_server_pid()
        assert f"The horizon is held: {written} committed events no subscription or live page can see" in page
        assert f"Held by pid {pid}, psql as " in page
        assert "not this app" in page
        assert "idle in transaction" in page
        assert "INSERT INTO scratch VALUES ('checking a refund')" in page

        part = await browser.client.get(
            "/admin/projections", headers={"HX-Request": "true", "HX-Target": "horizon"}
        )
        assert part.text.lstrip().startswith('<section id="horizon"'), "the partial alone refreshes"
        assert "The horizon is held" in part.text

        detail = await browser.client.get("/healthz?detail")
        assert detail.status_code == 200
        report = detail.json()
        horizon = report["horizon"]
        assert (report["status"], report["database"]) == ("warning", "ok")
        assert (horizon["lag_events"], horizon["held"]) == (written, True)
        assert horizon["lag_seconds"] >= 0.5
        assert horizon["holder"]["pid"] == pid
        assert horizon["holder"]["application_name"] == "psql"
        assert horizon["holder"]["ours"] is False
        lags = {model["name"]: model["lag_events"] for model in report["read_models"]}
        assert lags["customer_summaries"] == written
        assert lags["order_read_model"] == 0, "the inline read model is kept by the append itself"
        record("horizon lag shown (events)", horizon["lag_events"])
        record("horizon lag shown (seconds)", f"{horizon['lag_seconds']:.2f}")

        assert await applied(pool) == subscriptions, "a subscription read past the open transaction"
        assert await drafts_of(pool) == 1
        await held.commit()
    finally:
        await operator.close()

    assert set((await eventually(lambda: caught_up_with(before + written))).keys()) == set(subscriptions)
    assert await drafts_of(pool) == 3
    assert await pool.fetchval("SELECT count(*) FROM customer_orders WHERE customer_id = $1", CUSTOMER) == 3

    async def clear_page() -> str | None:
        shown = text((await browser.get("/admin/projections")).text)
        return shown if "Clear: catch-up readers can see every committed event." in shown else None

    assert "The horizon is held" not in await eventually(clear_page)
    assert (await browser.client.get("/healthz?detail")).json()["status"] == "ok"


async def test_the_apps_own_connections_are_named_in_pg_stat_activity(
    operations_client: PageClient, pool: asyncpg.Pool
) -> None:
    # A leader's lock connection also names its instance (store/leader.py).
    instance = this_instance()
    expected = {
        "orders:web",
        "orders:live feed",
        f"orders:subscription customer_summaries@{instance}",
        f"orders:subscription sales_by_day@{instance}",
    }

    async def names() -> set[str] | None:
        found = {
            row[0]
            for row in await pool.fetch(
                "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()"
            )
        }
        return found if expected <= found else None

    assert await eventually(names)


async def test_the_server_ends_an_app_connection_left_idle_in_a_transaction_after_the_settings_timeout(
    database_url: str, pool: asyncpg.Pool
) -> None:
    app = make_app(database_url, csrf_secret="test-secret", pool_size=3, idle_in_transaction_seconds=0.5)
    await pool.execute("CREATE TABLE scratch (note text)")

    async def leave_a_transaction_open() -> int:
        """A bug's worth: a connection taken from the app's pool, written on, and forgotten."""
        conn = await app.state.pool.acquire()
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO scratch VALUES ('never committed')")
        pid: int = conn.get_server_pid()
        return pid

    async with AsyncTestClient(app=app) as client:
        client.cookies.set(SESSION_COOKIE, await session_at(database_url, "ada", "admin"))
        # On the app's own event loop, where its pool lives.
        pid = await anyio.to_thread.run_sync(client.blocking_portal.call, leave_a_transaction_open)

        async def ended() -> bool:
            return not await pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)

        await eventually(ended, timeout=10)
        assert await pool.fetchval("SELECT count(*) FROM scratch") == 0, "its write was rolled back"
        assert (await client.get("/healthz?detail")).json()["horizon"]["holder"] is None
        assert (await client.get("/orders")).status_code == 200, "the app goes on with a new connection"
