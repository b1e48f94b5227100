"""A projection that cannot apply a batch neither stops for good nor skips: it says why, and retries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg

from store.log.event_store import EventStore, RecordedEvent
from store.read.subscriptions import Connection, SubscriptionRunner
from tests.support.subscriptions import Recorder, write_orders
from tests.support.waiting import eventually


class FailsTwice(Recorder):
    """Records like Recorder, after refusing its first two batches (a bug fixed by a restart, say)."""

    def __init__(self) -> None:
        self.refusals = 2

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent], suffix: str = "") -> None:
        if self.refusals:
            self.refusals -= 1
            raise RuntimeError("the projection cannot apply this batch")
        await super().apply(conn, events, suffix)


async def test_a_failing_projection_reports_its_error_then_applies_every_event_once(
    database_url: str, pool: asyncpg.Pool, store: EventStore, recorder: Recorder
) -> None:
    await write_orders(store, 20, items=3)
    stored = await pool.fetchval("SELECT count(*) FROM events")
    projection = FailsTwice()
    runner = SubscriptionRunner(database_url, pool, projection, lock_retry=0.2, poll_interval=0.05)
    running = asyncio.create_task(runner.run())
    try:

        async def failing() -> bool:
            return runner.state == "failing"

        await eventually(failing)
        assert runner.error == "RuntimeError: the projection cannot apply this batch"
        assert await pool.fetchval("SELECT count(*) FROM applied_events") == 0

        async def caught_up() -> bool:
            return await pool.fetchval("SELECT count(*) FROM applied_events") == stored

        await eventually(caught_up)
        assert projection.refusals == 0
        assert (runner.state, runner.error, running.done()) == ("running", None, False)
        # Every event once (the table's primary key refuses a second time), none skipped.
        stored_ids = {r[0] for r in await pool.fetch("SELECT event_id FROM events")}
        assert {r[0] for r in await pool.fetch("SELECT event_id FROM applied_events")} == stored_ids
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
