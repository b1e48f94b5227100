"""The steps of a domain scenario: given past events, when a command, then events or this error."""

from __future__ import annotations

import pytest

from domain.errors import DomainError
from domain.order import Command, Event, Order, OrderCreated, decide, fold

ORDER = "order-1"
CREATED = OrderCreated(ORDER, "customer-7", "EUR")


def given(*events: Event) -> Order:
    return fold(events)


def refused(command: Command, state: Order, error: type[DomainError], says: str) -> DomainError:
    """Decide `command` on `state`; it must be refused with `error`, whose message says `says`."""
    with pytest.raises(DomainError) as raised:
        decide(command, state)
    assert type(raised.value) is error
    assert says in raised.value.message
    return raised.value
