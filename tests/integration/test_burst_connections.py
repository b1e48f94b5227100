"""BurstConnections: statements of a burst hand their connections on; idle, the pool has them all."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from store.database import BurstConnections

_SLEEPING = "SELECT count(*) FROM pg_stat_activity WHERE query = $1 AND state = 'active'"
_RUNNING = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1"


class CountedPool:
    """The pool, counting the connections taken from it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.taken = 0

    def acquire(self) -> Any:
        self.taken += 1
        return self.pool.acquire()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


async def all_back(pool: asyncpg.Pool) -> None:
    """Wait until every connection of the pool is idle in it again."""
    async with asyncio.timeout(5):
        while pool.get_idle_size() != pool.get_size():  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.01)


async def in_flight(
    watch: asyncpg.Pool | asyncpg.Connection, burst: BurstConnections, query: str
) -> asyncio.Future[Any]:
    """`query` through `burst`, once the server runs it (`watch` looks)."""
    running = asyncio.ensure_future(burst.fetchrow(query))
    async with asyncio.timeout(5):
        while not await watch.fetchval(_SLEEPING, query):  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.01)
    return running


async def test_after_a_burst_every_connection_is_back_in_the_pool(pool: asyncpg.Pool) -> None:
    burst = BurstConnections(pool)

    async def writer(n: int) -> list[int]:
        return [(await burst.fetchrow("SELECT $1::int * 2 AS twice", n + i))["twice"] for i in range(20)]

    answers = await asyncio.gather(*(writer(100 * n) for n in range(6)))

    assert answers == [[2 * (100 * n + i) for i in range(20)] for n in range(6)]
    await all_back(pool)


async def test_statements_that_end_while_another_runs_hand_their_connection_on(pool: asyncpg.Pool) -> None:
    counted = CountedPool(pool)
    burst = BurstConnections(counted)  # type: ignore[arg-type]
    slow = await in_flight(pool, burst, "SELECT pg_sleep(0.5)")

    pids = [(await burst.fetchrow("SELECT pg_backend_pid()"))[0] for _ in range(10)]  # type: ignore[index]
    await slow

    assert len(set(pids)) == 1
    assert counted.taken == 2  # the slow statement's, and the first of the ten
    await all_back(pool)


async def test_a_kept_connection_the_server_ended_is_replaced(pool: asyncpg.Pool) -> None:
    burst = BurstConnections(pool)
    slow = await in_flight(pool, burst, "SELECT pg_sleep(2)")
    kept = await burst.fetchrow("SELECT pg_backend_pid() AS pid")  # kept: the slow one runs
    assert kept is not None
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_terminate_backend($1)", kept["pid"])
        async with asyncio.timeout(5):
            while await conn.fetchval(_RUNNING, kept["pid"]):  # noqa: ASYNC110 (no event to wait on)
                await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # the client reads the end of the socket

    after = await burst.fetchrow("SELECT pg_backend_pid() AS pid")
    await slow

    assert after is not None
    assert after["pid"] != kept["pid"]
    await all_back(pool)


async def test_a_failed_or_cancelled_statement_gives_its_connection_back(pool: asyncpg.Pool) -> None:
    burst = BurstConnections(pool)

    with pytest.raises(asyncpg.DivisionByZeroError):
        await burst.fetchrow("SELECT 1 / 0")
    stuck = await in_flight(pool, burst, "SELECT pg_sleep(30)")
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck

    await all_back(pool)
    assert await burst.fetchrow("SELECT 1 AS one") == (1,)
    await all_back(pool)


async def test_a_connection_is_not_kept_while_someone_waits_for_one(database_url: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=2)
    assert pool is not None
    watch = await asyncpg.connect(database_url)
    try:
        burst = BurstConnections(pool)
        slow = await in_flight(watch, burst, "SELECT pg_sleep(3)")
        quick = await in_flight(watch, burst, "SELECT pg_sleep(0.2)")
        waiting = asyncio.ensure_future(pool.fetchval("SELECT 'served'"))  # both connections are busy

        # The quick statement ends while the slow one runs, but someone else waits: the pool
        # gets its connection back, rather than the burst keeping it.
        assert await asyncio.wait_for(waiting, 2) == "served"
        assert not slow.done()
        await asyncio.gather(slow, quick)
        await all_back(pool)
    finally:
        await watch.close()
        await pool.close()
