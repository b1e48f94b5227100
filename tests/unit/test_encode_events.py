"""The append's one JSON parameter: each event as [type name, schema version, body]."""

from __future__ import annotations

import msgspec

from domain.order import ItemAdded, OrderCreated, OrderPlaced
from domain.serialization import decode_event, encode_event, encode_events


def test_each_event_is_its_type_its_schema_version_and_the_body_encode_event_gives() -> None:
    events = [OrderCreated("o-1", "c-1", "EUR"), ItemAdded("T-1", 'Tea "green" ☕', 350, 2), OrderPlaced(700)]

    encoded = msgspec.json.decode(encode_events(events))

    assert [(name, version) for name, version, _ in encoded] == [
        ("OrderCreated", 1),
        ("ItemAdded", ItemAdded.schema_version),
        ("OrderPlaced", 2),  # version 2 added ship_to
    ]
    assert [body for *_, body in encoded] == [msgspec.json.decode(encode_event(e)) for e in events]
    assert [decode_event(n, v, msgspec.json.encode(b)) for n, v, b in encoded] == events
