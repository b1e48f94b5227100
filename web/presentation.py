"""How events and money read to a person: timeline sentences and template filters."""

from __future__ import annotations

from datetime import datetime
from typing import Any, assert_never, cast
from uuid import uuid4

import msgspec

from domain.access import Action, may
from domain.diff import OrderDiff, diff
from domain.money import format_amount
from domain.order import (
    Event,
    ItemAdded,
    ItemRemoved,
    Order,
    OrderCancelled,
    OrderCreated,
    OrderPlaced,
    evolve,
    initial_state,
)
from store.log.event_store import RecordedEvent


class TimelineEntry(msgspec.Struct, frozen=True):
    recorded: RecordedEvent
    sentence: str
    state_before: Order
    state_after: Order

    @property
    def change(self) -> OrderDiff:
        """The change the event made; worked out only when a page shows it (one event's details)."""
        return diff(self.state_before, self.state_after)


def describe(event: Event, before: Order) -> str:
    """One sentence for the audit timeline; `before` is the order just before the event."""
    currency = before.currency
    match event:
        case OrderCreated():
            return f"Order created for customer {event.customer_id} in {event.currency}"
        case ItemAdded():
            price = format_amount(event.unit_price_cents)
            note = f" (note: {event.note})" if event.note else ""
            return f"Added {event.quantity} × {event.name} ({event.sku}) at {price} {currency}{note}"
        case ItemRemoved():
            line = before.line(event.sku)
            name = f"{line.name} ({event.sku})" if line else event.sku
            whole = line is not None and line.quantity == event.quantity
            return f"Removed {event.quantity} × {name}" + (", the whole line" if whole else "")
        case OrderPlaced():
            return f"Placed, total {format_amount(event.total_cents)} {currency}"
        case OrderCancelled():
            return f"Cancelled: {event.reason}"
        case _:
            assert_never(event)


def timeline(events: list[RecordedEvent], before: Order = initial_state) -> list[TimelineEntry]:
    """Each event with its sentence, the order after it and the change it made."""
    entries = []
    state = before
    for recorded in events:
        event = cast(Event, recorded.event)  # an order stream's
        sentence = describe(event, state)
        after = evolve(state, event)
        entries.append(TimelineEntry(recorded, sentence, state, after))
        state = after
    return entries


def money(cents: int) -> str:
    return format_amount(cents)


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def signed_money(cents: int) -> str:
    return ("+" if cents > 0 else "") + format_amount(cents)


def new_command_id() -> str:
    """A fresh command id for each rendered form, so a resubmission is recognised."""
    return str(uuid4())


def allowed(request: Any, action: Action) -> bool:
    """Whether whoever made `request` may do `action`: pages show only the forms that would work."""
    actor = request.scope.get("actor") if request is not None else None
    return actor is not None and may(actor, action)
