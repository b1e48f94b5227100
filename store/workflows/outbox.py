"""Customer notifications: a workflow writes them to the outbox, a relay delivers them.

The workflow is a catch-up subscription, so each notification row is written
in the same transaction as the checkpoint that passes its cause: a crash
neither loses one nor writes one twice (and the unique cause event id would
refuse a second). Delivery is at least once: the relay sends, then records
it; a relay that dies in between sends again, and the notification id lets a
receiver drop the repeat. A message still undelivered after the relay's
retry policy is parked: an admin retries it or drops it with a reason
(store/workflows/parked_messages, recorded in the parking log).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from string import Template
from typing import Protocol, cast
from uuid import UUID

import asyncpg
import msgspec

from domain.money import format_amount
from domain.order import Event, Order, OrderCancelled, OrderPlaced, fold
from store.log.event_store import EVENT_COLUMNS, RecordedEvent, recorded_event
from store.read.parking import MAX_ERROR, OUTBOX_RETRY, RetryPolicy
from store.read.subscriptions import Connection
from store.tracing import correlation_id

log = logging.getLogger("orders.notifications")

OUTBOX_CHANNEL = "outbox"
STATES = ("pending", "sent", "parked", "dropped")
NOTIFIED_EVENTS = ("OrderPlaced", "OrderCancelled")

PLACED = Template(
    "Hello $customer,\n\nthank you: your order $order_id is placed.\n\n$summary\nTotal: $total $currency\n"
)
CANCELLED = Template(
    "Hello $customer,\n\n"
    "your order $order_id has been cancelled.\n"
    "Reason: $reason\n\n"
    "$summary\n"
    "Total: $total $currency\n"
)


class Notification(msgspec.Struct, frozen=True):
    id: int
    cause_event_id: UUID
    order_id: str
    cause_version: int
    customer_id: str
    kind: str
    subject: str
    body: str
    correlation_id: str
    causation_id: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    parked_at: datetime | None


NOTIFICATION_COLUMNS = (
    "id, cause_event_id, order_id, cause_version, customer_id, kind, subject, body, correlation_id, "
    "causation_id, state, attempts, next_attempt_at, last_error, created_at, sent_at, parked_at"
)


def notification_from(row: asyncpg.Record) -> Notification:
    return Notification(*row)


def _summary(order: Order) -> str:
    if not order.lines:
        return "No items."
    return "\n".join(
        f"  {line.quantity} × {line.name} ({line.sku}) at {format_amount(line.unit_price_cents)} "
        f"= {format_amount(line.total_cents)}"
        for line in order.lines
    )


def render(recorded: RecordedEvent, order: Order) -> tuple[str, str, str]:
    """The kind, subject and body of the message `recorded` causes; `order` is as it was after it."""
    fields = {
        "customer": order.customer_id,
        "order_id": order.order_id,
        "summary": _summary(order),
        "total": format_amount(order.total_cents),
        "currency": order.currency,
    }
    event = recorded.event
    if isinstance(event, OrderPlaced):
        fields["total"] = format_amount(event.total_cents)
        return "order_placed", f"Your order {order.order_id[:8]} is placed", PLACED.substitute(fields)
    assert isinstance(event, OrderCancelled)
    subject = f"Your order {order.order_id[:8]} is cancelled"
    return "order_cancelled", subject, CANCELLED.substitute(fields, reason=event.reason)


_STREAMS = f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ANY($1::text[]) AND version <= $2"

_INSERT = """
INSERT INTO outbox (cause_event_id, cause_position, order_id, cause_version, customer_id, kind,
                    subject, body, correlation_id, causation_id)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::int[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::text[], $10::text[])
ON CONFLICT (cause_event_id) DO NOTHING
"""


class CustomerNotifications:
    """The workflow: OrderPlaced and OrderCancelled each put one message to the customer in the outbox."""

    name: str = "customer_notifications"
    tables: tuple[str, ...] = ("outbox",)

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent], suffix: str = "") -> None:
        causes = [e for e in events if isinstance(e.event, OrderPlaced | OrderCancelled)]
        if not causes:
            return
        streams: dict[str, list[RecordedEvent]] = {}
        rows = await conn.fetch(_STREAMS, list({e.stream_id for e in causes}), max(e.version for e in causes))
        for recorded in sorted(map(recorded_event, rows), key=lambda r: r.version):
            streams.setdefault(recorded.stream_id, []).append(recorded)
        messages = []
        for cause in causes:
            order = fold(cast(Event, e.event) for e in streams[cause.stream_id][: cause.version])
            kind, subject, body = render(cause, order)
            messages.append(
                (
                    *(cause.event_id, cause.position, cause.stream_id, cause.version, order.customer_id),
                    *(kind, subject, body, cause.metadata.correlation_id, str(cause.event_id)),
                )
            )
        await conn.execute(_INSERT, *(list(column) for column in zip(*messages, strict=True)))
        # Delivered at commit, so the relay wakes when the rows are there to read.
        await conn.execute("SELECT pg_notify($1, '')", OUTBOX_CHANNEL)


# ------------------------------------------------------------------ delivery


class Sender(Protocol):
    """Delivers one notification or raises; the relay retries what raised."""

    async def send(self, notification: Notification) -> None: ...


class LogSender:
    """The default: write the message to the log. No mail server needed."""

    async def send(self, notification: Notification) -> None:
        log.info(
            "notification %s to customer %s: %s\n%s",
            notification.id,
            notification.customer_id,
            notification.subject,
            notification.body,
        )


# Claimed rows are leased: a relay that dies while sending leaves them due
# again once the lease ends, so another relay retries them.
_CLAIM = f"""
UPDATE outbox SET next_attempt_at = now() + make_interval(secs => $2)
WHERE id IN (
    SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at, id LIMIT $1
    FOR UPDATE SKIP LOCKED
)
RETURNING {NOTIFICATION_COLUMNS}
"""

_SENT = """
UPDATE outbox SET state = 'sent', sent_at = now(), attempts = attempts + 1, last_error = NULL
WHERE id = $1 AND state = 'pending'
"""

# A message out of tries is parked, and the parking log says so, in one statement.
_FAILED = """
WITH tried AS (
    UPDATE outbox SET attempts = attempts + 1, last_error = $2,
        state = CASE WHEN attempts + 1 >= $3 THEN 'parked' ELSE 'pending' END,
        parked_at = CASE WHEN attempts + 1 >= $3 THEN now() END,
        next_attempt_at = now() + make_interval(secs => $4)
    WHERE id = $1 AND state = 'pending'
    RETURNING id, state, order_id, cause_event_id, cause_version, kind, last_error
)
INSERT INTO parking_log (kind, subscription, stream_id, event_id, version, event_type, notification_id, error)
SELECT 'parked', 'outbox', order_id, cause_event_id, cause_version, kind, id, last_error
FROM tried WHERE state = 'parked'
"""


@dataclass
class Relay:
    """Delivers due notifications through `sender`; a failure is retried with exponential backoff.

    After `retry.attempts` failures a notification is parked, shown on the
    admin page for a person to retry or drop.
    """

    pool: asyncpg.Pool
    sender: Sender
    batch_size: int = 50
    retry: RetryPolicy = OUTBOX_RETRY
    send_timeout: float = 30.0

    def delay(self, attempts: int) -> float:
        """Seconds before the next try, after `attempts` failed ones."""
        return self.retry.delay(attempts)

    async def deliver_due(self) -> bool:
        """Send one batch of due notifications; True when there may be more due now."""
        lease = self.send_timeout * 2
        claimed = [notification_from(r) for r in await self.pool.fetch(_CLAIM, self.batch_size, lease)]
        await asyncio.gather(*(self._deliver(n) for n in claimed))
        return len(claimed) == self.batch_size

    async def _deliver(self, notification: Notification) -> None:
        correlation_id.set(notification.correlation_id)  # its own task: its log lines carry the cause's
        try:
            await asyncio.wait_for(self.sender.send(notification), self.send_timeout)
        except Exception as error:  # any failure of the sender is retried later
            attempts = notification.attempts + 1
            message = f"{type(error).__name__}: {error}"[:MAX_ERROR]
            log.warning("notification %s failed (attempt %s): %s", notification.id, attempts, message)
            await self.pool.execute(
                _FAILED, notification.id, message, self.retry.attempts, self.delay(attempts)
            )
            return
        await self.pool.execute(_SENT, notification.id)


# ------------------------------------------------------------------ reading


class NotificationPage(msgspec.Struct, frozen=True):
    notifications: list[Notification]
    next_before: int | None
    counts: dict[str, int]


_LIST = f"""
SELECT {NOTIFICATION_COLUMNS} FROM outbox
WHERE id < $1 AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR order_id = $3)
  AND ($4::uuid IS NULL OR cause_event_id = $4) AND ($5::text IS NULL OR customer_id = $5)
ORDER BY id DESC LIMIT $6
"""

_COUNTS = "SELECT state, count(*) FROM outbox WHERE ($1::text IS NULL OR order_id = $1) GROUP BY state"

# Events of an order that cause a notification but have none yet (the workflow is behind).
_AWAITED = """
SELECT count(*) FROM events e
WHERE e.stream_id = $1 AND e.type = ANY($2::text[])
  AND NOT EXISTS (SELECT FROM outbox o WHERE o.cause_event_id = e.event_id)
"""


class NotificationQuery(msgspec.Struct, frozen=True):
    """Which notifications a list shows, newest first: `limit` before the id `before`."""

    state: str | None = None
    order_id: str | None = None
    cause: UUID | None = None
    customer_id: str | None = None
    before: int | None = None
    limit: int = 50


class Outbox:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def page(self, query: NotificationQuery) -> NotificationPage:
        """Notifications newest first, keyset paged by id, with the count in each state."""
        q, limit = query, query.limit
        rows = await self.pool.fetch(
            _LIST, q.before or 2**63 - 1, q.state, q.order_id, q.cause, q.customer_id, limit + 1
        )
        found = [notification_from(r) for r in rows]
        counts = {s: 0 for s in STATES} | {r[0]: r[1] for r in await self.pool.fetch(_COUNTS, q.order_id)}
        next_before = found[limit - 1].id if len(found) > limit else None
        return NotificationPage(found[:limit], next_before, counts)

    async def awaited(self, order_id: str) -> int:
        """How many of the order's events still wait for their notification to be written."""
        count: int = await self.pool.fetchval(_AWAITED, order_id, list(NOTIFIED_EVENTS))
        return count
