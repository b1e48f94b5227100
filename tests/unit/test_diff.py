"""A diff sets out what an event, or a span of events, changed."""

from __future__ import annotations

from domain.diff import diff
from domain.order import (
    Event,
    ItemAdded,
    ItemRemoved,
    OrderCancelled,
    OrderCreated,
    OrderPlaced,
    fold,
    state_at,
)

CREATED = OrderCreated("o-1", "c-1", "EUR")
HISTORY: list[Event] = [
    CREATED,
    ItemAdded("TEA", "Tea", 350, 2),
    ItemAdded("CUP", "Cup", 1200, 1),
    ItemAdded("TEA", "Tea", 350, 1),
    ItemRemoved("CUP", 1),
    ItemRemoved("TEA", 2),
    OrderPlaced(350),
    OrderCancelled("changed my mind"),
]


def change_of(version: int):  # type: ignore[no-untyped-def]
    return diff(state_at(HISTORY, version - 1), state_at(HISTORY, version))


def test_order_created_changes_the_status_and_no_line() -> None:
    change = change_of(1)
    assert (change.status_before, change.status_after, change.lines) == ("none", "draft", [])


def test_item_added_shows_a_new_line() -> None:
    (line,) = change_of(2).lines
    assert (line.kind, line.sku, line.quantity_before, line.quantity_after, line.price_after) == (
        "added",
        "TEA",
        0,
        2,
        350,
    )
    assert change_of(2).total_change == 700


def test_item_added_again_shows_a_quantity_change() -> None:
    (line,) = change_of(4).lines
    assert (line.kind, line.quantity_before, line.quantity_after) == ("changed", 2, 3)


def test_item_removed_shows_a_removed_line_or_less_quantity() -> None:
    (whole,) = change_of(5).lines
    assert (whole.kind, whole.sku, whole.quantity_after, whole.total_after - whole.total_before) == (
        "removed",
        "CUP",
        0,
        -1200,
    )
    (part,) = change_of(6).lines
    assert (part.kind, part.quantity_before, part.quantity_after) == ("changed", 3, 1)


def test_placed_and_cancelled_change_only_the_status() -> None:
    for version, (before, after) in ((7, ("draft", "placed")), (8, ("placed", "cancelled"))):
        change = change_of(version)
        assert (change.status_before, change.status_after, change.lines, change.total_change) == (
            before,
            after,
            [],
            0,
        )


def test_a_span_of_versions_nets_out_and_the_same_version_is_empty() -> None:
    span = diff(state_at(HISTORY, 1), fold(HISTORY))
    assert [(line.kind, line.sku, line.quantity_after) for line in span.lines] == [("added", "TEA", 1)]
    assert diff(state_at(HISTORY, 3), state_at(HISTORY, 3)).empty
