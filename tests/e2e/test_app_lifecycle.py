"""The app starts on a database and stops cleanly, whatever its background jobs are doing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from store.database import DatabaseUnavailable
from tests.support.app import make_app
from tests.support.servers import with_database


async def test_the_app_does_not_start_on_a_database_that_does_not_exist(server_url: str) -> None:
    """So /healthz cannot be asked on such an app: start-up fails with one clear error instead."""
    app = make_app(with_database(server_url, "orders_no_such_database"), csrf_secret="s", pool_size=2)
    client: AsyncTestClient[Any] = AsyncTestClient(app=app)
    # The test client reports start-up errors in a group; this one must be alone in it.
    unavailable = pytest.RaisesExc(DatabaseUnavailable, match="cannot reach PostgreSQL at")
    with pytest.RaisesGroup(unavailable, allow_unwrapped=True, flatten_subgroups=True):
        async with client:
            pass


async def test_the_app_stops_when_an_event_arrives_as_it_stops(database_url: str) -> None:
    app = make_app(database_url, csrf_secret="s", pool_size=4)
    async with asyncio.timeout(20), app.lifespan():
        runners = app.state.runners
        jobs = app.state.background[1 : 1 + len(runners)]  # after the live feed, in this order
        assert runners
        while any(runner.state != "running" for runner in runners):  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)  # every runner is now waiting for a wake-up
        for runner, job in zip(runners, jobs, strict=True):
            runner._notified()  # what an event's NOTIFY calls: lands in the turn of the cancel
            job.cancel()
        _, still_running = await asyncio.wait(jobs, timeout=3)
        for job in still_running:
            job.cancel()  # a second cancel gets through, so this test itself cannot hang
        assert not still_running, f"{len(still_running)} of {len(jobs)} runners ignored the cancel"
