"""`orders seed --days N`: a history spread over past days, hash-chained as appends are, that verifies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from tests.e2e.test_cli_backup import run_orders


async def test_seed_days_spreads_orders_over_many_past_days_and_the_log_verifies(
    database_url: str, pool: asyncpg.Pool
) -> None:
    started = datetime.now(UTC)
    code, out = await run_orders("seed", "--days", "90", "--orders", "60", env={"DATABASE_URL": database_url})
    assert code == 0, out

    days, first, last = await pool.fetchrow(
        "SELECT count(DISTINCT (recorded_at AT TIME ZONE 'UTC')::date), min(recorded_at), max(recorded_at) "
        "FROM events"
    ) or (0, None, None)
    assert days >= 25
    assert first >= started - timedelta(days=91)
    assert first <= started - timedelta(days=30)
    assert last <= datetime.now(UTC)
    assert (
        await pool.fetchval(
            "SELECT count(DISTINCT stream_id) FROM events WHERE stream_id NOT LIKE 'customer:%'"
        )
        == 60
    )
    assert await pool.fetchval("SELECT array_agg(DISTINCT metadata->>'actor') FROM events") == ["seed"]
    # Every order is for a registered customer, registered before it, and a placed one ships sealed.
    assert (
        await pool.fetchval(
            """
        SELECT count(*) FROM order_read_model r WHERE NOT EXISTS (
            SELECT FROM events c
            WHERE c.stream_id = 'customer:' || r.customer_id AND c.type = 'CustomerRegistered'
              AND c.position < (SELECT min(position) FROM events o WHERE o.stream_id = r.order_id))
        """
        )
        == 0
    )
    assert await pool.fetchval("SELECT count(*) FROM customers WHERE status = 'registered'") >= 3
    assert await pool.fetchval(
        "SELECT bool_and(data->>'ship_to' LIKE 'pii:1:%') FROM events WHERE type = 'OrderPlaced'"
    )
    # Positions follow time, as if the orders had been written as they happened.
    assert await pool.fetchval(
        "SELECT bool_and(ordered) FROM (SELECT recorded_at >= lag(recorded_at, 1, recorded_at) "
        "OVER (ORDER BY position) AS ordered FROM events) t"
    )
    assert await pool.fetchval("SELECT count(*) FROM sales_by_day") >= 10  # the chart has many bars
    assert await pool.fetchval("SELECT count(*) FROM order_read_model") == 60

    code, out = await run_orders("verify", env={"DATABASE_URL": database_url})
    assert code == 0, out
    assert out.splitlines()[-1] == "orders verify: no differences"


async def test_plain_seed_still_writes_orders_now(database_url: str, pool: asyncpg.Pool) -> None:
    started = datetime.now(UTC)
    code, out = await run_orders("seed", "--orders", "4", env={"DATABASE_URL": database_url})
    assert code == 0, out
    assert await pool.fetchval("SELECT count(*) FROM order_read_model") == 4
    assert await pool.fetchval("SELECT min(recorded_at) FROM events") >= started
    # Its customers are registered through the application layer, details sealed.
    assert await pool.fetchval("SELECT count(*) FROM customers WHERE name LIKE 'pii:1:%'") == 3
    code, out = await run_orders("verify", env={"DATABASE_URL": database_url})
    assert (code, out.splitlines()[-1]) == (0, "orders verify: no differences")
