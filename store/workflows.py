"""Workflows: subscriptions whose effects are messages and commands, and the loops that act on them.

Each workflow reacts to events as a catch-up subscription (store/subscriptions),
so its effect is written in the same transaction as its checkpoint:

- customer_notifications (store/outbox): OrderPlaced and OrderCancelled each
  put one message in the outbox;
- draft_expiry_timers (store/expiry): each draft's latest event arms its
  expiry timer.

Two loops act on what they wrote, each on one app instance at a time: the
outbox relay delivers messages, and the draft expiry fires due timers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import asyncpg

from store.database import UNAVAILABLE
from store.event_store import EventStore
from store.expiry import DraftExpiry, DraftExpiryTimers, check_interval, draft_expiry_seconds
from store.outbox import OUTBOX_CHANNEL, CustomerNotifications, LogSender, Relay, Sender
from store.subscriptions import Projection, SubscriptionRunner

log = logging.getLogger("orders.workflows")

WORKFLOWS: dict[str, Projection] = {w.name: w for w in (CustomerNotifications(), DraftExpiryTimers())}


class Runnable(Protocol):
    state: str

    async def run(self) -> None: ...


class LeaderLoop:
    """Calls `work` on at most one app instance at a time, whenever woken and every `interval` s.

    The leader holds a session advisory lock on a dedicated connection, like a
    subscription runner; another instance, retrying every `lock_retry` seconds,
    takes over when that connection dies. `work` returns True while there is
    more to do at once.
    """

    def __init__(
        self,
        url: str,
        name: str,
        work: Callable[[], Awaitable[bool]],
        *,
        channel: str | None = None,
        interval: float = 1.0,
        lock_retry: float = 1.0,
    ) -> None:
        self.url = url
        self.name = name
        self.work = work
        self.channel = channel
        self.interval = interval
        self.lock_retry = lock_retry
        self.state = "starting"
        self._wake = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                self.state = "stopped"
                raise
            except (*UNAVAILABLE, asyncpg.PostgresError) as error:
                self.state = "reconnecting"
                log.warning("%s: %s; retrying", self.name, error)
            except Exception:
                # A workflow must not die silently: log, give up the lead, and start again.
                self.state = "reconnecting"
                log.exception("%s failed; retrying", self.name)
            await asyncio.sleep(self.lock_retry)

    async def _lead(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self.url)
        try:
            self.state = "standby"
            # A session lock: it lasts as long as this connection, and dies with it.
            key = f"orders.workflow.{self.name}"
            while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):  # noqa: ASYNC110
                await asyncio.sleep(self.lock_retry)
            if self.channel is not None:
                await conn.add_listener(self.channel, self._notified)
            self.state = "running"
            while not conn.is_closed():
                self._wake.clear()
                while await self.work():
                    pass
                try:  # asyncio.timeout: wait_for can swallow a cancel on Python 3.11
                    async with asyncio.timeout(self.interval):
                        await self._wake.wait()
                except TimeoutError:
                    await conn.execute("SELECT 1")  # notices a dead lock connection
        finally:
            if not conn.is_closed():
                await conn.close(timeout=2)

    def _notified(self, *_: Any) -> None:
        self._wake.set()


def workflow_runners(
    url: str,
    store: EventStore,
    *,
    sender: Sender | None = None,
    draft_expiry: float | None = None,
    poll_interval: float = 1.0,
    lock_retry: float = 1.0,
) -> list[Runnable]:
    """Everything that runs the workflows on this instance (each a leader candidate)."""
    relay = Relay(store.pool, sender or LogSender())
    expiry = DraftExpiry(store, draft_expiry or draft_expiry_seconds())
    runners: list[Runnable] = [
        SubscriptionRunner(url, store.pool, w, poll_interval=poll_interval, lock_retry=lock_retry)
        for w in WORKFLOWS.values()
    ]
    runners.append(
        LeaderLoop(
            url,
            "outbox_relay",
            relay.deliver_due,
            channel=OUTBOX_CHANNEL,
            interval=poll_interval,
            lock_retry=lock_retry,
        )
    )
    runners.append(
        LeaderLoop(
            url,
            "draft_expiry",
            expiry.fire_due,
            interval=check_interval(expiry.expiry),
            lock_retry=lock_retry,
        )
    )
    return runners
