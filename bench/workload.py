"""The order every benchmark writes: create, three items, place (five commands, five events).

Its customer is registered in each benchmark's set-up, before anything is timed: a new order
is for a registered customer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from uuid import UUID, uuid4

from domain.customer import RegisterCustomer
from domain.errors import CustomerAlreadyRegistered
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
from store.application import Envelope, Orders
from store.database import connect_pool
from store.log.event_store import Metadata
from store.personal import MasterKey

CUSTOMER = "customer-42"
CURRENCY = "EUR"
# sku, name, unit price in cents, quantity; the same three lines in every benchmark.
ITEMS = (
    ("TEA-1", "Green tea", 350, 2),
    ("CUP-7", "Tea cup", 1200, 1),
    ("POT-3", "Tea pot", 3900, 1),
)
TOTAL_CENTS = sum(price * quantity for _, _, price, quantity in ITEMS)


def registration(customer_id: str) -> RegisterCustomer:
    address = "7 Kiln Street\nLeeds"
    return RegisterCustomer(customer_id, "Bea Benchmark", f"{customer_id}@example.com", address)


async def register_customers(orders: Orders, customer_ids: Iterable[str] = (CUSTOMER,)) -> None:
    """Register these customers, unless they are already."""
    for customer_id in customer_ids:
        with contextlib.suppress(CustomerAlreadyRegistered):
            await orders.register_customer(registration(customer_id), Envelope(uuid4()))


async def register_at(url: str, master: MasterKey, customer_ids: Iterable[str] = (CUSTOMER,)) -> None:
    """Register them in the database at `url` for a server whose master key is `master`."""
    pool = await connect_pool(url, min_size=1, max_size=1)
    try:
        await register_customers(Orders(pool, master=master), customer_ids)
    finally:
        await pool.close()


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
