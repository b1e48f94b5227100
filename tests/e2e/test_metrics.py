"""/metrics as Prometheus scrapes it: counts that move by exactly the work done, and who may read them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import httpx
import pytest

from tests.support.accounts import PASSWORD, session_at, token_at
from tests.support.app import make_app
from tests.support.customers import app_master, register_at
from tests.support.metrics import key, moved, samples
from tests.support.serving import served
from tests.support.waiting import eventually
from web.access import SESSION_COOKIE


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app on real sockets (server-sent events stream), a clerk's browser with its CSRF token."""
    app = make_app(database_url, csrf_secret="test-secret", pool_size=4, subscriptions=False)
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        client.cookies.set(SESSION_COOKIE, await session_at(database_url, "till", "clerk"))
        await client.get("/login")
        client.headers["x-csrftoken"] = client.cookies["csrftoken"]
        yield client


@pytest.fixture
async def scraper(site: httpx.AsyncClient, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Prometheus: an admin's API token, on its own connection."""
    token = await token_at(database_url, "prometheus", "admin")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=str(site.base_url), headers=headers, timeout=30) as client:
        yield client


async def scrape(scraper: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await scraper.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


async def test_the_counts_move_by_exactly_the_work_done(
    site: httpx.AsyncClient, scraper: httpx.AsyncClient, database_url: str
) -> None:
    await register_at(database_url, "cust-m", master=app_master())  # before: not part of the work counted
    before = await scrape(scraper)

    created = await site.post("/orders", data={"customer_id": "cust-m", "currency": "EUR"})
    assert created.status_code == 303
    order = created.headers["location"]
    for sku in ("TEA-1", "CUP-1"):
        item = {"sku": sku, "name": "Thing", "unit_price": "2.50", "quantity": "2"}
        assert (await site.post(f"{order}/items", data=item)).status_code == 303
    refused = await site.post(f"{order}/items/NOPE-1/remove", data={})
    assert refused.status_code == 409
    async with httpx.AsyncClient(base_url=str(site.base_url)) as stranger:
        await stranger.get("/login")
        wrong = {"username": "till", "password": "not it", "_csrf_token": stranger.cookies["csrftoken"]}
        assert (await stranger.post("/login", data=wrong)).status_code == 401

    after = await scrape(scraper)
    assert moved(before, after, "orders_commands_total") == {
        key("orders_commands_total", command="CreateOrder", outcome="accepted"): 1,
        key("orders_commands_total", command="AddItem", outcome="accepted"): 2,
        key("orders_commands_total", command="RemoveItem", outcome="conflict"): 1,
    }
    assert moved(before, after, "orders_command_seconds_count") == {
        key("orders_command_seconds_count", command="CreateOrder", outcome="accepted"): 1,
        key("orders_command_seconds_count", command="AddItem", outcome="accepted"): 2,
        key("orders_command_seconds_count", command="RemoveItem", outcome="conflict"): 1,
    }
    assert moved(before, after, "orders_appends_total") == {key("orders_appends_total", outcome="written"): 3}
    assert moved(before, after, "orders_append_seconds_count") == {key("orders_append_seconds_count"): 3}
    assert moved(before, after, "orders_events_appended_total") == {key("orders_events_appended_total"): 3}
    assert moved(before, after, "orders_sign_ins_total") == {
        key("orders_sign_ins_total", outcome="failed"): 1
    }
    # A live page open: one more SSE client while it streams, one fewer once it is closed.
    async with site.stream("GET", f"{order}/live") as live:
        assert live.status_code == 200
        lines = live.aiter_lines()  # read on, not closed: closing it would end the stream
        assert await anext(lines) == ": connected"
        during = await scrape(scraper)
    clients = key("orders_sse_clients")
    assert during[clients] == before[clients] + 1

    async def closed() -> bool:
        return (await scrape(scraper))[clients] == before[clients]

    assert await eventually(closed)


async def test_sign_ins_are_counted_by_outcome(
    site: httpx.AsyncClient, scraper: httpx.AsyncClient, database_url: str
) -> None:
    await session_at(database_url, "bea", "clerk")  # an account with the tests' password
    before = await scrape(scraper)

    async def sign_in(username: str, password: str) -> int:
        async with httpx.AsyncClient(base_url=str(site.base_url)) as browser:
            await browser.get("/login")
            form = {"username": username, "password": password, "_csrf_token": browser.cookies["csrftoken"]}
            return (await browser.post("/login", data=form)).status_code

    outcomes = [await sign_in("bea", PASSWORD) for _ in range(2)]
    # Five failures for one name (the throttle's limit), then that name's tries wait.
    outcomes += [await sign_in("mallory", "guess") for _ in range(7)]

    after = await scrape(scraper)
    assert outcomes == [303, 303, 401, 401, 401, 401, 401, 429, 429]
    assert moved(before, after, "orders_sign_ins_total") == {
        key("orders_sign_ins_total", outcome="signed_in"): 2,
        key("orders_sign_ins_total", outcome="failed"): 5,
        key("orders_sign_ins_total", outcome="throttled"): 2,
    }


async def test_the_pool_is_shown_open_busy_and_its_most(scraper: httpx.AsyncClient) -> None:
    shown = await scrape(scraper)
    assert shown[key("orders_db_pool_connections", state="max")] == 4
    assert 1 <= shown[key("orders_db_pool_connections", state="open")] <= 4
    assert 0 <= shown[key("orders_db_pool_connections", state="busy")] <= 4


async def test_requests_in_flight_show_as_busy_connections(
    site: httpx.AsyncClient, scraper: httpx.AsyncClient, pool: asyncpg.Pool, database_url: str
) -> None:
    await register_at(database_url, "cust-p", master=app_master())
    busy = key("orders_db_pool_connections", state="busy")
    before = await scrape(scraper)

    # An operator's lock lets the log be read but not written: two orders' creations wait in
    # their appends, each holding one of the app's connections, until it ends.
    operator = await asyncpg.connect(database_url)
    try:
        transaction = operator.transaction()
        await transaction.start()
        await operator.execute("LOCK TABLE events IN SHARE MODE")
        creating = [
            asyncio.create_task(site.post("/orders", data={"customer_id": "cust-p", "currency": "EUR"}))
            for _ in range(2)
        ]

        async def waiting_on_the_lock() -> bool:
            waiting = await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'orders:web' AND wait_event_type = 'Lock'"
            )
            return bool(waiting == 2)

        assert await eventually(waiting_on_the_lock)
        during = await scrape(scraper)
        await transaction.rollback()
    finally:
        await operator.close()
    assert [(await c).status_code for c in creating] == [303, 303]
    after = await scrape(scraper)

    assert during[busy] == before[busy] + 2
    assert during[key("orders_db_pool_connections", state="open")] >= 2
    assert after[busy] == before[busy]


async def test_the_database_figures_are_what_the_tables_hold(
    scraper: httpx.AsyncClient, site: httpx.AsyncClient, pool: asyncpg.Pool, database_url: str
) -> None:
    # A subscription that has not moved since the start, four events behind: the customer's
    # registration and the order's three.
    await pool.execute("INSERT INTO subscriptions (name) VALUES ('audit_feed')")
    await register_at(database_url, "cust-f", master=app_master())
    created = await site.post("/orders", data={"customer_id": "cust-f", "currency": "EUR"})
    order_id = created.headers["location"].rsplit("/", 1)[1]
    item = {"sku": "TEA-1", "name": "Tea", "unit_price": "1.00", "quantity": "1"}
    await site.post(f"/orders/{order_id}/items", data=item)
    await site.post(f"/orders/{order_id}/items", data={**item, "sku": "TEA-2"})
    event = await pool.fetchrow("SELECT position, tx_id, event_id FROM events WHERE stream_id = $1", order_id)
    for subscription in ("customer_summaries", "customer_summaries", "sales_by_day"):
        await pool.execute(
            "INSERT INTO parked_streams (subscription, stream_id, version, position, tx_id, event_id, "
            "event_type, error, attempts) VALUES ($1, $2, 1, $3, $4, $5, 'OrderCreated', 'a bug', 5) "
            "ON CONFLICT DO NOTHING",
            *(subscription, f"{order_id}-{subscription}-{uuid4()}", event[0], event[1], event[2]),
        )
    for state in ("parked", "parked", "sent"):
        await pool.execute(
            "INSERT INTO outbox (cause_event_id, cause_position, order_id, cause_version, customer_id, kind, "
            "subject, body, correlation_id, causation_id, state) "
            "VALUES ($1, 1, $2, 1, 'cust-f', 'order_placed', 's', 'b', 'c', 'c', $3)",
            *(uuid4(), order_id, state),
        )
    # An operator's transaction holds the horizon with an event written in it.
    operator = await asyncpg.connect(database_url)
    try:
        transaction = operator.transaction()
        await transaction.start()
        await operator.execute("SELECT pg_current_xact_id()")
        await site.post(f"/orders/{order_id}/items", data={**item, "sku": "TEA-3"})
        shown = await scrape(scraper)
        await transaction.rollback()
    finally:
        await operator.close()

    assert shown[key("orders_database_up")] == 1
    assert shown[key("orders_subscription_lag_events", subscription="audit_feed")] == 5
    assert shown[key("orders_subscription_lag_seconds", subscription="audit_feed")] > 0
    assert shown[key("orders_parked_streams", subscription="customer_summaries")] == 2
    assert shown[key("orders_parked_streams", subscription="sales_by_day")] == 1
    assert shown[key("orders_parked_messages")] == 2
    assert shown[key("orders_horizon_lag_events")] == 1
    assert shown[key("orders_horizon_lag_seconds")] > 0


async def test_only_admins_read_the_metrics(site: httpx.AsyncClient, database_url: str) -> None:
    base = str(site.base_url)
    clerk = await token_at(database_url, "ci", "clerk")
    admin = await session_at(database_url, "ada", "admin")
    async with httpx.AsyncClient(base_url=base) as anybody:
        nobody = await anybody.get("/metrics")
        wrong = await anybody.get("/metrics", headers={"Authorization": "Bearer orders_not-a-token"})
        staff = await anybody.get("/metrics", headers={"Authorization": f"Bearer {clerk}"})
    async with httpx.AsyncClient(base_url=base, cookies={SESSION_COOKIE: admin}) as ada:
        person = await ada.get("/metrics")
    assert (nobody.status_code, nobody.headers["location"]) == (303, "/login?next=%2Fmetrics")
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    assert staff.status_code == 403
    assert person.status_code == 200
    assert "# TYPE orders_commands_total counter" in person.text
