"""Draft expiry: a draft untouched for a configured time is cancelled by the system.

A subscription keeps one timer per draft order, re-armed by each of its
events and dropped when it is placed or cancelled. A leader-elected loop
(store/workflows/runners) fires the timers that are due: it cancels the order with
the reason "expired", as the actor "system", with the timer as causation,
holding the cancel to the version the timer judged. An order changed after
that version keeps its change: the cancel meets StaleVersion and does nothing.

The timer id is derived from the order id and the judged version, and it is
the command id of the cancel: a timer fired twice (a crash between the
append and forgetting the timer) is recognised by the store and writes once.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID, uuid5

from domain.access import Actor
from domain.errors import DomainError
from domain.order import CancelOrder, ItemAdded, ItemRemoved, OrderCancelled, OrderCreated, OrderPlaced
from store.application import Envelope, Orders, StaleVersion
from store.log.event_store import RecordedEvent
from store.read.subscriptions import Connection

log = logging.getLogger("orders.expiry")

EXPIRED_REASON = "expired"
SYSTEM_ACTOR = "system"
DEFAULT_DRAFT_EXPIRY = 7 * 24 * 3600.0
# The draft expiry writes as this actor; its name, "system", is what is_expiry looks for.
EXPIRY_ACTOR = Actor("system:draft-expiry", SYSTEM_ACTOR, "system")
TIMER_NAMESPACE = UUID("0b9f6a8e-3c55-4f0e-9a4e-7d2c1e5b8f31")


def timer_id(order_id: str, version: int) -> UUID:
    """The id of the expiry timer that judges `order_id` at `version`."""
    return uuid5(TIMER_NAMESPACE, f"draft-expiry:{order_id}@{version}")


def is_expiry(recorded: RecordedEvent) -> bool:
    """Whether `recorded` is a cancel made by a draft-expiry timer (which judged the version before it)."""
    return recorded.metadata.actor == SYSTEM_ACTOR and recorded.metadata.causation_id == str(
        timer_id(recorded.stream_id, recorded.version - 1)
    )


_ARM = """
INSERT INTO draft_expiry_timers AS t (order_id, version, timer_id, touched_at, correlation_id)
SELECT * FROM unnest($1::text[], $2::int[], $3::uuid[], $4::timestamptz[], $5::text[])
ON CONFLICT (order_id) DO UPDATE SET
    version = EXCLUDED.version, timer_id = EXCLUDED.timer_id,
    touched_at = EXCLUDED.touched_at, correlation_id = EXCLUDED.correlation_id
WHERE t.version < EXCLUDED.version
"""

_DISARM = "DELETE FROM draft_expiry_timers WHERE order_id = ANY($1::text[])"


class DraftExpiryTimers:
    """The subscription: a draft's latest event arms its timer; placing or cancelling drops it."""

    name: str = "draft_expiry_timers"
    tables: tuple[str, ...] = ("draft_expiry_timers",)

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent], suffix: str = "") -> None:
        latest = {e.stream_id: e for e in events}  # in one stream, log order is version order
        armed = [e for e in latest.values() if isinstance(e.event, OrderCreated | ItemAdded | ItemRemoved)]
        dropped = [e.stream_id for e in latest.values() if isinstance(e.event, OrderPlaced | OrderCancelled)]
        if armed:
            await conn.execute(
                _ARM,
                [e.stream_id for e in armed],
                [e.version for e in armed],
                [timer_id(e.stream_id, e.version) for e in armed],
                [e.recorded_at for e in armed],
                [e.metadata.correlation_id for e in armed],
            )
        if dropped:
            await conn.execute(_DISARM, dropped)


# Due by the database's clock, which stamped `touched_at`: one clock for every instance.
_DUE = """
SELECT order_id, version, timer_id, correlation_id FROM draft_expiry_timers
WHERE touched_at <= now() - make_interval(secs => $1)
ORDER BY touched_at LIMIT $2
"""

_FORGET = "DELETE FROM draft_expiry_timers WHERE order_id = $1 AND version = $2"

_PENDING = "SELECT count(*) FROM draft_expiry_timers"


class DraftExpiry:
    """Fires due timers: cancels each order it judged, unless it changed since."""

    def __init__(self, orders: Orders, expiry: float, *, batch_size: int = 100) -> None:
        self.orders = orders
        self.expiry = expiry
        self.batch_size = batch_size
        self.outcomes: Counter[str] = Counter()

    async def fire_due(self) -> bool:
        """Fire one batch of due timers; True when there may be more due now."""
        due = await self.orders.pool.fetch(_DUE, self.expiry, self.batch_size)
        for order_id, version, timer, correlation in due:
            self.outcomes[await self.fire(order_id, version, timer, correlation)] += 1
        return len(due) == self.batch_size

    async def fire(self, order_id: str, version: int, timer: UUID, correlation: str) -> str:
        """Cancel `order_id` as it stood at `version`; return "expired", "changed" or "refused"."""
        outcome = "expired"
        try:
            envelope = Envelope(
                timer,
                expected_version=version,
                correlation_id=_uuid(correlation),
                causation_id=str(timer),
                requested_at=datetime.now(UTC),
            )
            cancel = CancelOrder(order_id, EXPIRED_REASON)
            await self.orders.acting_as(EXPIRY_ACTOR).execute(cancel, envelope)
        except StaleVersion:
            outcome = "changed"  # touched after the timer judged it: the change wins
        except DomainError as error:
            log.warning("draft expiry of %s at version %s refused: %s", order_id, version, error)
            outcome = "refused"
        await self.orders.pool.execute(_FORGET, order_id, version)
        return outcome

    async def armed(self) -> int:
        """How many drafts have a timer running."""
        count: int = await self.orders.pool.fetchval(_PENDING)
        return count


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


def check_interval(expiry: float) -> float:
    """How often to look for due timers: often enough for short test expiries, rarely for days."""
    return min(30.0, max(0.05, expiry / 10))
