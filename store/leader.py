"""Leader election: one job run on at most one app instance at a time, woken by NOTIFY or a timer.

Subscription runners (store/subscriptions) and the workflow loops
(store/workflows) are both leaders: every instance runs a candidate, and the
one holding the advisory lock does the work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from store.database import UNAVAILABLE


class Leader:
    """Calls `work` while it holds the lock `key`, whenever woken and every `interval` s.

    A dedicated connection holds a session advisory lock (the leader) and
    LISTENs on `channel`; when it is lost, another instance's candidate,
    retrying every `lock_retry` seconds, takes over. A lost notification only
    delays: the leader also calls `work` every `interval` seconds.

    A database error, or one of `retry_on`, gives up the lead and starts
    again; so does any other error when `retry_any_error` (logged with its
    traceback), otherwise it ends `run`.
    """

    def __init__(
        self,
        url: str,
        key: str,
        work: Callable[[], Awaitable[object]],
        *,
        name: str,
        log: logging.Logger,
        channel: str | None = None,
        interval: float = 1.0,
        lock_retry: float = 1.0,
        retry_on: tuple[type[Exception], ...] = (),
        retry_any_error: bool = False,
    ) -> None:
        self.url = url
        self.key = key
        self.work = work
        self.name = name
        self.log = log
        self.channel = channel
        self.interval = interval
        self.lock_retry = lock_retry
        self.retry_on: tuple[type[Exception], ...] = (*UNAVAILABLE, asyncpg.PostgresError, *retry_on)
        self.retry_any_error = retry_any_error
        self.state = "starting"
        self._wake = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                self.state = "stopped"
                raise
            except self.retry_on as error:
                self.state = "reconnecting"
                self.log.warning("%s: %s; retrying", self.name, error)
            except Exception:
                if not self.retry_any_error:
                    raise
                # A job that must not die silently: log, give up the lead, and start again.
                self.state = "reconnecting"
                self.log.exception("%s failed; retrying", self.name)
            await asyncio.sleep(self.lock_retry)

    async def _lead(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self.url)
        try:
            self.state = "standby"
            # A session lock: it lasts as long as this connection, and dies with it.
            while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self.key):  # noqa: ASYNC110
                await asyncio.sleep(self.lock_retry)
            if self.channel is not None:
                await conn.add_listener(self.channel, self._notified)
            self.state = "running"
            while not conn.is_closed():
                self._wake.clear()
                await self.work()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancel that lands in the same turn as the wake-up, and stop never ends.
                try:
                    async with asyncio.timeout(self.interval):
                        await self._wake.wait()
                except TimeoutError:
                    await conn.execute("SELECT 1")  # notices a dead lock connection
        finally:
            if not conn.is_closed():
                await conn.close(timeout=2)

    def _notified(self, *_: Any) -> None:
        self._wake.set()
