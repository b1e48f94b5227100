"""A subscription applies every committed event exactly once, however late it commits."""

from __future__ import annotations

import asyncio
import json
import random
from uuid import uuid4

import asyncpg

from store.read.subscriptions import SubscriptionRunner
from tests.support.subscriptions import Recorder
from tests.support.waiting import eventually

INSERT = """
INSERT INTO events (stream_id, version, event_id, type, schema_version, data)
VALUES ($1, $2, $3, 'OrderCreated', 1, $4::jsonb)
"""


async def test_writers_holding_transactions_open_never_make_the_subscription_skip(
    database_url: str, pool: asyncpg.Pool, recorder: Recorder
) -> None:
    runner = SubscriptionRunner(database_url, pool, recorder, batch_size=50, poll_interval=0.05)
    running = asyncio.create_task(runner.run())

    async def writer(n: int) -> None:
        conn = await asyncpg.connect(database_url)
        try:
            for version in range(1, 11):
                # Take a position now, commit later: later positions commit first.
                async with conn.transaction():
                    await conn.execute(
                        INSERT,
                        f"writer-{n}",
                        version,
                        uuid4(),
                        json.dumps({"order_id": f"writer-{n}", "customer_id": "c", "currency": "EUR"}),
                    )
                    await asyncio.sleep(random.uniform(0, 0.15))
        finally:
            await conn.close()

    try:
        await asyncio.gather(*(writer(n) for n in range(20)))

        async def caught_up() -> bool:
            return bool(await pool.fetchval("SELECT count(*) = 200 FROM applied_events"))

        await eventually(caught_up)
        stored = {r[0] for r in await pool.fetch("SELECT event_id FROM events")}
        applied = {r[0] for r in await pool.fetch("SELECT event_id FROM applied_events")}
        assert len(stored) == 200
        assert applied == stored
        assert (
            await pool.fetchval("SELECT events_applied FROM subscriptions WHERE name = $1", recorder.name)
            == 200
        )
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_one_leader_at_a_time_and_the_standby_takes_over(
    database_url: str, pool: asyncpg.Pool, recorder: Recorder
) -> None:
    first = SubscriptionRunner(database_url, pool, recorder, poll_interval=0.05, lock_retry=0.2)
    second = SubscriptionRunner(database_url, pool, recorder, poll_interval=0.05, lock_retry=0.2)
    tasks = [asyncio.create_task(first.run())]
    await asyncio.sleep(0.3)
    tasks.append(asyncio.create_task(second.run()))
    try:
        await asyncio.sleep(0.5)
        assert (first.state, second.state) == ("running", "standby")
        await pool.execute(
            INSERT, "s-1", 1, uuid4(), '{"order_id": "s-1", "customer_id": "c", "currency": "EUR"}'
        )
        tasks[0].cancel()
        await asyncio.gather(tasks[0], return_exceptions=True)
        started = asyncio.get_running_loop().time()

        async def second_leads() -> bool:
            return second.state == "running"

        await eventually(second_leads, timeout=5)
        assert asyncio.get_running_loop().time() - started < 5
        await pool.execute(
            INSERT, "s-2", 1, uuid4(), '{"order_id": "s-2", "customer_id": "c", "currency": "EUR"}'
        )

        async def both_applied() -> bool:
            return bool(await pool.fetchval("SELECT count(*) = 2 FROM applied_events"))

        await eventually(both_applied)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
