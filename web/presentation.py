"""How events and money read to a person: timeline sentences and template filters."""

from __future__ import annotations

from datetime import datetime
from typing import Any, assert_never, cast
from uuid import uuid4

import msgspec

from domain.access import Action, may
from domain.customer import CustomerDetailsChanged, CustomerForgotten, CustomerRegistered, is_customer_stream
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
from domain.personal import ERASED, PERSONAL_FIELDS
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


def describe_customer(event: object) -> str:
    """One sentence for a customer's event, its personal fields as opened (ERASED once forgotten)."""
    match event:
        case CustomerRegistered() if event.name == ERASED:
            return "Registered (details erased)"
        case CustomerRegistered():
            return f"Registered {event.name} <{event.email}>"
        case CustomerDetailsChanged():
            return "Details changed"
        case CustomerForgotten():
            return f"Forgotten: {event.reason}"
        case _:
            return type(event).__name__


def log_sentence(recorded: RecordedEvent) -> str:
    """What the event log says of an event beside its type: a customer's events in words."""
    return describe_customer(recorded.event) if is_customer_stream(recorded.stream_id) else ""


def customer_of_stream(stream_id: str) -> str | None:
    """The customer id of a customer stream; None for an order's."""
    return stream_id.partition(":")[2] if is_customer_stream(stream_id) else None


def shown_data(recorded: RecordedEvent) -> str:
    """The event's body as a reader sees it: personal fields opened (or ERASED), never sealed."""
    if recorded.type not in PERSONAL_FIELDS:
        return recorded.data
    return msgspec.json.encode(recorded.event).decode()


def erased_fields(recorded: RecordedEvent) -> bool:
    """Whether some personal field of the event reads ERASED (so a cached rendering of it differs)."""
    return any(getattr(recorded.event, f, None) == ERASED for f in PERSONAL_FIELDS.get(recorded.type, ()))


def is_erased(value: object) -> bool:
    return value == ERASED


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
