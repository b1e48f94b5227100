"""Workflows: subscriptions whose effects are messages and commands, and the loops that act on them.

Each workflow reacts to events as a catch-up subscription (store/read/subscriptions),
so its effect is written in the same transaction as its checkpoint:

- customer_notifications (store/workflows/outbox): OrderPlaced and OrderCancelled each
  put one message in the outbox;
- draft_expiry_timers (store/workflows/expiry): each draft's latest event arms its
  expiry timer.

Two loops act on what they wrote, each on one app instance at a time: the
outbox relay delivers messages, and the draft expiry fires due timers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Protocol

from store.access.sessions import forget_expired
from store.application import Orders
from store.idempotency import IdempotencyKeys
from store.leader import Leader
from store.personal import Keyring
from store.read.parking import OUTBOX_RETRY, SUBSCRIPTION_RETRY, RetryPolicy
from store.read.subscriptions import Projection, SubscriptionRunner
from store.workflows.expiry import DEFAULT_DRAFT_EXPIRY, DraftExpiry, DraftExpiryTimers, check_interval
from store.workflows.outbox import OUTBOX_CHANNEL, CustomerNotifications, LogSender, Relay, Sender

log = logging.getLogger("orders.workflows")


def workflows(keyring: Keyring | None = None) -> dict[str, Projection]:
    """The workflows by name; `keyring` seals the customers' messages (store/workflows/outbox.py)."""
    return {w.name: w for w in (CustomerNotifications(keyring), DraftExpiryTimers())}


# Their names and tables; what runs them, or retries their parked events, uses `workflows(keyring)`.
WORKFLOWS: dict[str, Projection] = workflows()


# The leader loops workflow_runners starts, by name; each holds the lock `loop_lock_key(name)`.
LEADER_LOOPS = ("outbox_relay", "idempotency_keys", "access_housekeeping", "draft_expiry")


def loop_lock_key(name: str) -> str:
    return f"orders.workflow.{name}"


class Runnable(Protocol):
    state: str

    async def run(self) -> None: ...


class LeaderLoop(Leader):
    """Calls `work` on at most one app instance at a time, whenever woken and every `interval` s.

    A leader (store/leader) like a subscription runner, under a lock of its
    own name. `work` returns True while there is more to do at once. Any
    error gives up the lead and starts again: a workflow must not die silently.
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
        super().__init__(
            url,
            loop_lock_key(name),
            self._work_through,
            name=name,
            log=log,
            channel=channel,
            interval=interval,
            lock_retry=lock_retry,
            retry_any_error=True,
        )
        self._work = work

    async def _work_through(self) -> None:
        while await self._work():
            pass


def workflow_runners(
    url: str,
    orders: Orders,
    *,
    sender: Sender | None = None,
    draft_expiry: float = DEFAULT_DRAFT_EXPIRY,
    poll_interval: float = 1.0,
    lock_retry: float = 1.0,
    retry: RetryPolicy = SUBSCRIPTION_RETRY,
    outbox_retry: RetryPolicy = OUTBOX_RETRY,
) -> list[Runnable]:
    """Everything that runs the workflows on this instance (each a leader candidate).

    `draft_expiry` is the seconds a draft may stay untouched before the system cancels it;
    `retry` is how a workflow's failing event is tried before its order is parked, and
    `outbox_retry` how a message is tried before it is parked.
    """
    relay = Relay(orders.pool, sender or LogSender(), orders.keyring, retry=outbox_retry)
    expiry = DraftExpiry(orders, draft_expiry)
    runners: list[Runnable] = [
        SubscriptionRunner(
            url, orders.pool, w, poll_interval=poll_interval, lock_retry=lock_retry, retry=retry
        )
        for w in workflows(orders.keyring).values()
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
        # Housekeeping: the JSON API's Idempotency-Keys are kept a day.
        LeaderLoop(
            url, "idempotency_keys", IdempotencyKeys(orders.pool).purge, interval=600.0, lock_retry=lock_retry
        )
    )
    # Housekeeping: sessions past their expiry, failed sign-ins past the throttle's window.
    runners.append(
        LeaderLoop(url, "access_housekeeping", partial(forget_expired, orders.pool), interval=600.0)
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
