"""Leader election: one job run on at most one app instance at a time, woken by NOTIFY or a timer.

Subscription runners (store/read/subscriptions) and the workflow loops
(store/workflows/runners) are both leaders: every instance runs a candidate, and the
one holding the advisory lock does the work.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from store.database import APPLICATION, UNAVAILABLE, connect_one


def this_instance() -> str:
    """This process, as the admin page names a leader: `<host>:<pid>`."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


def holder_role(name: str, instance: str) -> str:
    """The lock connection's role, `<name>@<instance>`: its application_name is `orders:` and this,
    which PostgreSQL cuts at 63 bytes, so the name is shortened rather than the instance."""
    room = 63 - len(APPLICATION) - 2 - len(instance.encode())
    return f"{name.encode()[: max(room, 0)].decode(errors='ignore')}@{instance}"


def holder_of(application_name: str) -> str:
    """The instance a leader's application_name names (`orders:<name>@<instance>`), else the name."""
    before, at, instance = application_name.rpartition("@")
    return instance if at and before.startswith(f"{APPLICATION}:") else application_name


class JobFailed(Exception):
    """Raised by `work` for an error of the job itself, even a database one: a failure, with its pause."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Leader:
    """Calls `work` while it holds the lock `key`, whenever woken and every `interval` s.

    A dedicated connection holds a session advisory lock (the leader) and
    LISTENs on `channel`; when it is lost, another instance's candidate,
    retrying every `lock_retry` seconds, takes over. A lost notification only
    delays: the leader also calls `work` every `interval` seconds.

    A database error, or one of `retry_on`, gives up the lead and starts
    again; so does any other error when `retry_any_error`: logged with its
    traceback, kept in `error` (and `state` "failing") until `work` succeeds
    again, and retried after a pause that starts at `backoff` (default
    `lock_retry`) and doubles up to `max_backoff`, so a job stuck on one bad
    input neither dies silently nor floods the log. Otherwise it ends `run`.
    `work` raises JobFailed to be counted so even for a database error.
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
        max_backoff: float = 30.0,
        backoff: float | None = None,
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
        self.max_backoff = max_backoff
        self.backoff = lock_retry if backoff is None else backoff
        self.state = "starting"
        self.error: str | None = None
        self.failures = 0  # in a row, of `work` itself
        # Who holds the lock, for the admin page: in the lock connection's application_name.
        self.instance = this_instance()
        # The lock connection while this candidate leads (None otherwise): `work` may use it.
        self.connection: asyncpg.Connection | None = None
        self._wake = asyncio.Event()

    async def run(self) -> None:
        while True:
            pause = self.lock_retry
            try:
                await self._lead()
            except asyncio.CancelledError:
                self.state = "stopped"
                raise
            except JobFailed as failed:
                pause = self._failed(failed.cause)
            except self.retry_on as error:
                self.state = "reconnecting"
                self.log.warning("%s: %s; retrying", self.name, error)
            except Exception as error:
                if not self.retry_any_error:
                    raise
                pause = self._failed(error)
            await asyncio.sleep(pause)

    def _failed(self, error: Exception) -> float:
        """A job that must not die silently: log, give up the lead, and start again after a pause."""
        self.failures += 1
        self.state = "failing"
        self.error = f"{type(error).__name__}: {error}"
        pause = float(min(self.backoff * 2 ** (self.failures - 1), self.max_backoff))
        self.log.error(
            "%s failed (%d in a row); retrying in %.1f s",
            self.name,
            self.failures,
            pause,
            exc_info=(type(error), error, error.__traceback__),
        )
        return pause

    async def _lead(self) -> None:
        conn: asyncpg.Connection = await connect_one(self.url, holder_role(self.name, self.instance))
        try:
            if not self.failures:
                self.state = "standby"
            # A session lock: it lasts as long as this connection, and dies with it.
            while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self.key):  # noqa: ASYNC110
                await asyncio.sleep(self.lock_retry)
            if self.channel is not None:
                await conn.add_listener(self.channel, self._notified)
            if not self.failures:
                self.state = "running"
            self.connection = conn
            while not conn.is_closed():
                self._wake.clear()
                await self.work()
                self.state, self.error, self.failures = "running", None, 0
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancel that lands in the same turn as the wake-up, and stop never ends.
                try:
                    async with asyncio.timeout(self.interval):
                        await self._wake.wait()
                except TimeoutError:
                    await conn.execute("SELECT 1")  # notices a dead lock connection
        finally:
            self.connection = None
            if not conn.is_closed():
                await conn.close(timeout=2)

    def _notified(self, *_: Any) -> None:
        self._wake.set()
