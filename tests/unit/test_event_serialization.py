"""Events as the store keeps them: a type name, a schema version and a JSON body."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from domain.order import (
    EVENT_TYPES,
    Event,
    ItemAdded,
    ItemRemoved,
    OrderCancelled,
    OrderCreated,
    OrderPlaced,
)
from domain.serialization import UPCASTERS, UnknownEventType, decode_event, encode_event, event_type

EXAMPLES: list[Event] = [
    OrderCreated("order-1", "customer-7", "EUR"),
    ItemAdded("TEA-1", 'Thé vert <b>"bio"</b> & 🍵', 350, 2),
    ItemRemoved("TEA-1", 1),
    OrderPlaced(350),
    OrderCancelled("Customer called.\nWill reorder."),
]


def test_there_is_an_example_of_every_event_type() -> None:
    assert {type(event) for event in EXAMPLES} == set(EVENT_TYPES.values())


@pytest.mark.parametrize("event", EXAMPLES, ids=event_type)
def test_every_event_reads_back_as_written(event: Event) -> None:
    body = encode_event(event)
    assert b"schema_version" not in body
    assert decode_event(event_type(event), type(event).schema_version, body) == event
    assert decode_event(event_type(event), type(event).schema_version, body.decode()) == event


def test_an_unknown_event_type_is_refused() -> None:
    with pytest.raises(UnknownEventType, match="OrderShipped"):
        decode_event("OrderShipped", 1, b'{"carrier": "post"}')


def test_an_old_schema_version_is_upcast_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretend ItemRemoved is at version 3: v1 called the quantity "qty"; v2 added a "note" that v3 dropped.
    def v1_to_v2(body: dict[str, Any]) -> dict[str, Any]:
        return {"sku": body["sku"], "quantity": body["qty"], "note": None}

    def v2_to_v3(body: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in body.items() if key != "note"}

    monkeypatch.setattr(ItemRemoved, "schema_version", 3)
    monkeypatch.setitem(UPCASTERS, ("ItemRemoved", 1), v1_to_v2)
    monkeypatch.setitem(UPCASTERS, ("ItemRemoved", 2), v2_to_v3)

    assert decode_event("ItemRemoved", 1, b'{"sku": "TEA-1", "qty": 2}') == ItemRemoved("TEA-1", 2)
    assert decode_event("ItemRemoved", 2, b'{"sku": "TEA-1", "quantity": 4, "note": "x"}') == ItemRemoved(
        "TEA-1", 4
    )
    assert decode_event("ItemRemoved", 3, b'{"sku": "TEA-1", "quantity": 6}') == ItemRemoved("TEA-1", 6)


def test_an_upcast_body_is_still_checked_against_the_current_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OrderPlaced, "schema_version", 2)
    monkeypatch.setitem(UPCASTERS, ("OrderPlaced", 1), lambda body: {"total_cents": str(body["total"])})
    with pytest.raises(msgspec.ValidationError):
        decode_event("OrderPlaced", 1, b'{"total": 350}')
