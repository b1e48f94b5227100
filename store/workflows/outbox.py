"""Customer notifications: a workflow writes them to the outbox, a relay delivers them.

The workflow is a catch-up subscription, so each notification row is written
in the same transaction as the checkpoint that passes its cause: a crash
neither loses one nor writes one twice (and the unique cause event id would
refuse a second). Delivery is at least once: the relay sends, then records
it; a relay that dies in between sends again, and the notification id lets a
receiver drop the repeat. A message still undelivered after the relay's
retry policy is parked: an admin retries it or drops it with a reason
(store/workflows/parked_messages, recorded in the parking log).

A message goes to the customer's email address and greets them by name, so its
recipient and body are personal data: the workflow seals both with the
customer's key (store/personal) and the relay opens them just before sending.
A customer forgotten by then is never sent to: their message is marked
`forgotten`, not retried, not parked. An order of a customer who never
registered (orders from before customers had streams) has no address: its
message holds no personal data (it greets the customer id), is stored in clear
with no recipient, and is handed to the sender as before.
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

from domain.customer import Customer, CustomerEvent, customer_stream, fold_customer
from domain.money import format_amount
from domain.order import Event, Order, OrderCancelled, OrderPlaced, fold
from domain.personal import ERASED, is_sealed
from store.log.event_store import EVENT_COLUMNS, RecordedEvent, recorded_event
from store.personal import Keyring
from store.personal.master import MasterKeyError
from store.read.parking import MAX_ERROR, OUTBOX_RETRY, RetryPolicy
from store.read.subscriptions import Connection
from store.tracing import correlation_id

log = logging.getLogger("orders.notifications")

OUTBOX_CHANNEL = "outbox"
STATES = ("pending", "sent", "parked", "dropped", "forgotten")
# What a message whose customer was forgotten before it went out says instead of an error.
NOT_SENT_FORGOTTEN = "not sent: the customer was forgotten"
NOTIFIED_EVENTS = ("OrderPlaced", "OrderCancelled")

PLACED = Template(
    "Hello $customer,\n\nthank you: your order $order_id is placed.\n\n$summary\nTotal: $total $currency\n"
    "$ship_to"
)
CANCELLED = Template(
    "Hello $customer,\n\n"
    "your order $order_id has been cancelled.\n"
    "Reason: $reason\n\n"
    "$summary\n"
    "Total: $total $currency\n"
)
SHIPS_TO = Template("\nIt ships to:\n$address\n")


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
    # The customer's email address; sealed in the outbox, as the body is ('' for no registered customer).
    recipient: str = ""

    @property
    def forgotten(self) -> bool:
        return self.state == "forgotten"


NOTIFICATION_COLUMNS = (
    "id, cause_event_id, order_id, cause_version, customer_id, kind, subject, body, correlation_id, "
    "causation_id, state, attempts, next_attempt_at, last_error, created_at, sent_at, parked_at, recipient"
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


def render(
    recorded: RecordedEvent, order: Order, greeting: str | None = None, ship_to: str = ""
) -> tuple[str, str, str]:
    """The kind, subject and body of the message `recorded` causes; `order` is as it was after it.

    `greeting` is the customer's name (default: their id); `ship_to` the address, opened. The
    subject never holds personal data: it stays in clear in the outbox.
    """
    fields = {
        "customer": greeting or order.customer_id,
        "order_id": order.order_id,
        "summary": _summary(order),
        "total": format_amount(order.total_cents),
        "currency": order.currency,
    }
    event = recorded.event
    if isinstance(event, OrderPlaced):
        fields["total"] = format_amount(event.total_cents)
        shipping = SHIPS_TO.substitute(address=ship_to) if ship_to else ""
        body = PLACED.substitute(fields, ship_to=shipping)
        return "order_placed", f"Your order {order.order_id[:8]} is placed", body
    assert isinstance(event, OrderCancelled)
    subject = f"Your order {order.order_id[:8]} is cancelled"
    return "order_cancelled", subject, CANCELLED.substitute(fields, reason=event.reason)


_STREAMS = f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ANY($1::text[]) AND version <= $2"

_CUSTOMERS = f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ANY($1::text[]) ORDER BY version"

# A message for a customer already forgotten is written as never to be sent (state 'forgotten').
_INSERT = """
INSERT INTO outbox (cause_event_id, cause_position, order_id, cause_version, customer_id, kind,
                    subject, body, correlation_id, causation_id, recipient, state, last_error)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::int[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
ON CONFLICT (cause_event_id) DO NOTHING
"""


class CustomerNotifications:
    """The workflow: OrderPlaced and OrderCancelled each put one message to the customer in the outbox.

    `keyring` seals what is personal in it (the recipient, the body); without one, only orders of
    customers who never registered can be notified (tests of the workflow alone).
    """

    name: str = "customer_notifications"
    tables: tuple[str, ...] = ("outbox",)

    def __init__(self, keyring: Keyring | None = None) -> None:
        self.keyring = keyring

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent], suffix: str = "") -> None:
        causes = [e for e in events if isinstance(e.event, OrderPlaced | OrderCancelled)]
        if not causes:
            return
        streams: dict[str, list[RecordedEvent]] = {}
        rows = await conn.fetch(_STREAMS, list({e.stream_id for e in causes}), max(e.version for e in causes))
        for recorded in sorted(map(recorded_event, rows), key=lambda r: r.version):
            streams.setdefault(recorded.stream_id, []).append(recorded)
        orders = {
            cause.event_id: fold(cast(Event, e.event) for e in streams[cause.stream_id][: cause.version])
            for cause in causes
        }
        customers = await self._customers(conn, {order.customer_id for order in orders.values()})
        messages = []
        for cause in causes:
            order = orders[cause.event_id]
            customer = customers.get(order.customer_id, Customer())
            recipient, state, error, kind, subject, body = self._message(cause, order, customer)
            messages.append(
                (
                    *(cause.event_id, cause.position, cause.stream_id, cause.version, order.customer_id),
                    *(kind, subject, body, cause.metadata.correlation_id, str(cause.event_id)),
                    *(recipient, state, error),
                )
            )
        await conn.execute(_INSERT, *(list(column) for column in zip(*messages, strict=True)))
        # Delivered at commit, so the relay wakes when the rows are there to read.
        await conn.execute("SELECT pg_notify($1, '')", OUTBOX_CHANNEL)

    async def _customers(self, conn: Connection, customer_ids: set[str]) -> dict[str, Customer]:
        """The customers of these orders as their streams stand (personal fields sealed), and their keys
        loaded; a customer who never registered is absent."""
        rows = await conn.fetch(_CUSTOMERS, [customer_stream(c) for c in customer_ids])
        events: dict[str, list[CustomerEvent]] = {}
        for row in rows:
            recorded = recorded_event(row)
            events.setdefault(recorded.stream_id, []).append(cast(CustomerEvent, recorded.event))
        found = {c.customer_id: c for c in map(fold_customer, events.values())}
        if found:
            if self.keyring is None:
                raise LookupError("customer notifications need a keyring to seal messages to customers")
            await self.keyring.load(c for c, customer in found.items() if customer.status == "registered")
        return found

    def _message(
        self, cause: RecordedEvent, order: Order, customer: Customer
    ) -> tuple[str, str, str | None, str, str, str]:
        """(recipient, state, last error, kind, subject, body) of the outbox row `cause` makes."""
        if customer.status == "none":  # never registered: nothing personal to seal, nowhere to send
            return ("", "pending", None, *render(cause, order))
        keyring = self.keyring
        assert keyring is not None  # _customers refuses registered customers without one
        if customer.status == "forgotten" or keyring.erased(customer.customer_id):
            kind, subject, _ = render(cause, order)
            return ("", "forgotten", NOT_SENT_FORGOTTEN, kind, subject, "")
        opened = keyring.opened(customer)
        ship_to = keyring.open(order.ship_to) if order.ship_to else ""
        kind, subject, body = render(cause, order, opened.name, "" if ship_to == ERASED else ship_to)
        seal = keyring.seal
        return (
            seal(customer.customer_id, opened.email),
            "pending",
            None,
            kind,
            subject,
            seal(customer.customer_id, body),
        )


# ------------------------------------------------------------------ delivery


class Sender(Protocol):
    """Delivers one notification or raises; the relay retries what raised."""

    async def send(self, notification: Notification) -> None: ...


class LogSender:
    """The default: log that the message went out. No mail server needed.

    The line names ids only: the recipient and the body are personal data, and logs are
    copies outside the database that forgetting a customer cannot reach.
    """

    async def send(self, notification: Notification) -> None:
        log.info(
            "notification %s (%s of order %s) to customer %s",
            notification.id,
            notification.kind,
            notification.order_id,
            notification.customer_id,
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

# Its customer was forgotten: never sent, never retried; the sealed recipient and body are emptied.
_FORGOTTEN = """
UPDATE outbox SET state = 'forgotten', last_error = $2, recipient = '', body = ''
WHERE id = $1 AND state = 'pending'
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
    admin page for a person to retry or drop. `keyring` opens the sealed
    recipient and body just before sending; a message whose customer's key is
    gone by then is marked forgotten and never sent.
    """

    pool: asyncpg.Pool
    sender: Sender
    keyring: Keyring | None = None
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
            if self.keyring is not None:  # ask the database, not the cache: was the key deleted just now?
                self.keyring.drop(notification.customer_id)
            opened = await opened_notification(self.keyring, notification, erased=None)
            if opened is None:
                # Its customer was forgotten after it was written: it must never go out.
                log.info(
                    "notification %s to customer %s not sent: the customer was forgotten",
                    notification.id,
                    notification.customer_id,
                )
                await self.pool.execute(_FORGOTTEN, notification.id, NOT_SENT_FORGOTTEN)
                return
            await asyncio.wait_for(self.sender.send(opened), self.send_timeout)
        except Exception as error:  # any failure of the sender (or to open the message) is retried later
            attempts = notification.attempts + 1
            message = f"{type(error).__name__}: {error}"[:MAX_ERROR]
            log.warning("notification %s failed (attempt %s): %s", notification.id, attempts, message)
            await self.pool.execute(
                _FAILED, notification.id, message, self.retry.attempts, self.delay(attempts)
            )
            return
        await self.pool.execute(_SENT, notification.id)


async def opened_notification(
    keyring: Keyring | None, notification: Notification, *, erased: str | None = ERASED
) -> Notification | None:
    """`notification` with its sealed fields opened; where the key is gone, they read `erased`
    (None: the whole message is None)."""
    sealed = [v for v in (notification.recipient, notification.body) if is_sealed(v)]
    if not sealed:
        return notification
    if keyring is None:
        raise LookupError(f"notification {notification.id} is sealed and there is no keyring to open it")
    await keyring.load([notification.customer_id])
    if keyring.erased(notification.customer_id):
        if erased is None:
            return None
        changes = {f: erased for f in ("recipient", "body") if is_sealed(getattr(notification, f))}
        return msgspec.structs.replace(notification, **changes)
    if erased is None and not keyring.has_key(notification.customer_id):
        # Not forgotten, but this process's master key does not open theirs: a failure to retry.
        raise MasterKeyError(f"customer {notification.customer_id}'s key is wrapped by another master key")
    return msgspec.structs.replace(
        notification, recipient=keyring.open(notification.recipient), body=keyring.open(notification.body)
    )


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
