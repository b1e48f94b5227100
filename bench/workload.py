"""The order every benchmark writes: create, three items, place (five commands, five events)."""

from __future__ import annotations

from uuid import UUID, uuid4

from domain.order import (
    AddItem,
    Command,
    CreateOrder,
    Event,
    ItemAdded,
    OrderCreated,
    OrderPlaced,
    PlaceOrder,
)
from domain.serialization import encode_event, event_type
from store.log.event_store import Metadata

CUSTOMER = "customer-42"
CURRENCY = "EUR"
# sku, name, unit price in cents, quantity; the same three lines in every benchmark.
ITEMS = (
    ("TEA-1", "Green tea", 350, 2),
    ("CUP-7", "Tea cup", 1200, 1),
    ("POT-3", "Tea pot", 3900, 1),
)
TOTAL_CENTS = sum(price * quantity for _, _, price, quantity in ITEMS)


def order_commands(order_id: str) -> list[Command]:
    return [
        CreateOrder(order_id, CUSTOMER, CURRENCY),
        *(AddItem(order_id, sku, name, price, quantity) for sku, name, price, quantity in ITEMS),
        PlaceOrder(order_id),
    ]


def order_events(order_id: str) -> list[Event]:
    return [
        OrderCreated(order_id, CUSTOMER, CURRENCY),
        *(ItemAdded(sku, name, price, quantity) for sku, name, price, quantity in ITEMS),
        OrderPlaced(TOTAL_CENTS),
    ]


def metadata(command_id: UUID) -> Metadata:
    return Metadata(command_id=str(command_id), correlation_id=str(command_id))


def metadata_json(command_id: UUID) -> str:
    return f'{{"command_id":"{command_id}","correlation_id":"{command_id}"}}'


# The rows as a raw writer would hold them: everything but the order id is constant.
_SAMPLE = order_events("00000000-0000-0000-0000-000000000000")
EVENT_TYPES = [event_type(e) for e in _SAMPLE]
SCHEMA_VERSIONS = [e.schema_version for e in _SAMPLE]
_BODIES = [encode_event(e).decode() for e in _SAMPLE]


def event_bodies(order_id: str) -> list[str]:
    """The JSON bodies of the order's five events, as the store would write them."""
    return [_BODIES[0].replace("00000000-0000-0000-0000-000000000000", order_id), *_BODIES[1:]]


def new_order_id() -> str:
    return str(uuid4())
