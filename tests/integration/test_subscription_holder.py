"""Who holds a job now, read from pg_locks: the holder, then the candidate that took over.

A projection's holder shows in its read model's status; every job under a leader lock
(projections, workflows, leader loops) in `job_holders`.
"""

from __future__ import annotations

import asyncio

import asyncpg

from store.application import Orders
from store.leader import Leader
from store.read.projections import PROJECTIONS
from store.read.status import JOBS, JobHolder, job_holders, read_model_status
from store.read.subscriptions import SubscriptionRunner
from store.workflows.runners import workflow_runners
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


def job_of(runner: Leader) -> tuple[str, str]:
    """The job a runner runs, as JOBS names it, and its lock key."""
    projection = getattr(runner, "projection", None)
    return (projection.name if projection is not None else runner.name), runner.key


def instance(database_url: str, pool: asyncpg.Pool, name: str) -> list[Leader]:
    """Every leader candidate one app instance runs (web/app.py): the projections, then the workflows."""
    orders = Orders(pool)
    runners: list[Leader] = [
        SubscriptionRunner(database_url, pool, projection, lock_retry=0.1)
        for projection in PROJECTIONS.values()
    ]
    runners += [r for r in workflow_runners(database_url, orders, lock_retry=0.1) if isinstance(r, Leader)]
    for runner in runners:
        runner.instance = name
    return runners


async def test_every_job_under_a_leader_lock_names_its_holder_then_its_successor_once_its_backends_die(
    database_url: str, pool: asyncpg.Pool
) -> None:
    alpha, beta = instance(database_url, pool, "alpha:1"), instance(database_url, pool, "beta:2")
    assert {job_of(runner) for runner in alpha} == {(name, key) for name, _, key in JOBS}
    assert [job.holder for job in await job_holders(pool)] == [None] * len(JOBS)

    async def held_by(name: str) -> list[JobHolder] | None:
        jobs = await job_holders(pool)
        return jobs if all(job.holder == name for job in jobs) else None

    async def beta_waits() -> bool:
        return all(runner.state == "standby" for runner in beta)

    first = [asyncio.create_task(runner.run()) for runner in alpha]
    second: list[asyncio.Task[None]] = []
    try:
        jobs = await eventually(lambda: held_by("alpha:1"))
        assert {job.kind for job in jobs} == {"projection", "workflow", "loop"}
        second = [asyncio.create_task(runner.run()) for runner in beta]
        assert await eventually(beta_waits)
        assert await held_by("alpha:1")
        # alpha's process dies: its backends end, the locks with them, and alpha does not come back.
        ended = await pool.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE $1",
            "orders:%@alpha:1",
        )
        assert ended == len(JOBS)
        for task in first:
            task.cancel()
        assert await eventually(lambda: held_by("beta:2"))
    finally:
        tasks = [*first, *second]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert [job.holder for job in await job_holders(pool)] == [None] * len(JOBS)
