"""Who holds a subscription now, read from pg_locks: the holder, then the candidate that took over."""

from __future__ import annotations

import asyncio

import asyncpg

from store.read.projections import PROJECTIONS
from store.read.status import read_model_status
from store.read.subscriptions import SubscriptionRunner
from tests.support.waiting import eventually


async def held(pool: asyncpg.Pool) -> str | None:
    statuses = {status.name: status for status in await read_model_status(pool)}
    return statuses["customer_summaries"].holder


async def test_the_holder_is_the_runner_holding_the_lock_then_its_successor_once_its_backend_dies(
    database_url: str, pool: asyncpg.Pool
) -> None:
    projection = PROJECTIONS["customer_summaries"]
    alpha = SubscriptionRunner(database_url, pool, projection, lock_retry=0.1)
    beta = SubscriptionRunner(database_url, pool, projection, lock_retry=0.1)
    alpha.instance, beta.instance = "alpha:1", "beta:2"
    assert await held(pool) is None

    async def holder_is(name: str) -> bool:
        return await held(pool) == name

    async def beta_waits() -> bool:
        return beta.state == "standby"

    first = asyncio.create_task(alpha.run())
    second: asyncio.Task[None] | None = None
    try:
        assert await eventually(lambda: holder_is("alpha:1"))
        second = asyncio.create_task(beta.run())
        assert await eventually(beta_waits)
        assert await held(pool) == "alpha:1"
        # alpha's process dies: its backend ends, the lock with it, and alpha does not come back.
        pid = await pool.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            "orders:subscription customer_summaries@alpha:1",
        )
        alpha.lock_retry = 600.0
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", pid)
        assert await eventually(lambda: holder_is("beta:2"))
    finally:
        tasks = [task for task in (first, second) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert await held(pool) is None
