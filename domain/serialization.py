"""Events as stored: a type name, a schema version and a JSON body.

Old shapes are upcast as they are read; rows in the table are never rewritten.
An upcaster takes the body of version n and returns the body of version n + 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from domain.customer import CUSTOMER_EVENT_TYPES, CustomerEvent
from domain.order import EVENT_TYPES, Event

# Every event the log holds: an order's, or a customer's (domain/customer.py).
StoredEvent = Event | CustomerEvent
STORED_TYPES: dict[str, type[StoredEvent]] = {**EVENT_TYPES, **CUSTOMER_EVENT_TYPES}

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _item_added_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """ItemAdded v2 gained a line note; items added before it had none."""
    return {**data, "note": ""}


def _order_placed_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """OrderPlaced v2 records the address it ships to; orders placed before it recorded none."""
    return {**data, "ship_to": ""}


# (event type, schema version it reads) -> upcaster to the next version
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("ItemAdded", 1): _item_added_v1_to_v2,
    ("OrderPlaced", 1): _order_placed_v1_to_v2,
}

_encoder = msgspec.json.Encoder()
_decoders = {name: msgspec.json.Decoder(cls) for name, cls in STORED_TYPES.items()}

# Each type's schema version and the decoder of bodies stored at it, which need no upcasting:
# for loops over many rows, which skip decode_event's look-ups for the common case.
CURRENT_DECODERS: dict[str, tuple[int, msgspec.json.Decoder[Any]]] = {
    name: (cls.schema_version, _decoders[name]) for name, cls in STORED_TYPES.items()
}


class UnknownEventType(Exception):
    pass


def event_type(event: StoredEvent) -> str:
    return type(event).__name__


def encode_event(event: StoredEvent) -> bytes:
    return _encoder.encode(event)


def encode_events(events: Sequence[StoredEvent]) -> bytes:
    """The events as one JSON array of [type name, schema version, body], each body as
    encode_event gives it: what the store's append takes, in one msgspec call."""
    return _encoder.encode([(type(e).__name__, e.schema_version, e) for e in events])


def decode_event(type_name: str, schema_version: int, body: str | bytes) -> StoredEvent:
    cls = STORED_TYPES.get(type_name)
    if cls is None:
        raise UnknownEventType(f"unknown event type {type_name!r}")
    if schema_version == cls.schema_version:
        return _decoders[type_name].decode(body)
    data: dict[str, Any] = msgspec.json.decode(body)
    for version in range(schema_version, cls.schema_version):
        data = UPCASTERS[(type_name, version)](data)
    return msgspec.convert(data, cls)
