"""RemoveItem, PlaceOrder and CancelOrder: given past events, when a command, then events or an error."""

from __future__ import annotations

import pytest

from domain.errors import (
    EmptyOrder,
    InvalidCancelReason,
    InvalidQuantity,
    ItemNotOnOrder,
    OrderAlreadyCancelled,
    OrderAlreadyExists,
    OrderNotDraft,
    RemoveQuantityTooLarge,
)
from domain.order import (
    AddItem,
    CancelOrder,
    Command,
    CreateOrder,
    Event,
    ItemAdded,
    ItemRemoved,
    Line,
    OrderCancelled,
    OrderPlaced,
    PlaceOrder,
    RemoveItem,
    decide,
    fold,
)
from tests.support.decider import CREATED, ORDER, given, refused

TEA = ItemAdded("TEA-1", "Green tea", 350, 5)
CAKE = ItemAdded("CAKE-2", "Lemon cake", 1999, 3)
PLACED = OrderPlaced(350 * 5)
CANCELLED = OrderCancelled("changed my mind")


# ----------------------------------------------------------------- RemoveItem


def test_removing_a_sku_that_is_not_on_the_order_is_refused() -> None:
    error = refused(
        RemoveItem(ORDER, "CAKE-2"), given(CREATED, TEA), ItemNotOnOrder, "CAKE-2 is not on this order"
    )
    assert error.field == "sku"


def test_removing_without_a_quantity_removes_the_whole_line() -> None:
    state = given(CREATED, TEA, CAKE)
    events = decide(RemoveItem(ORDER, "TEA-1"), state)
    assert events == [ItemRemoved("TEA-1", 5)]
    assert fold(events, state).lines == (Line("CAKE-2", "Lemon cake", 1999, 3),)


def test_removing_part_of_a_line_keeps_the_rest() -> None:
    state = given(CREATED, TEA)
    events = decide(RemoveItem(ORDER, "TEA-1", 2), state)
    assert events == [ItemRemoved("TEA-1", 2)]
    assert fold(events, state).lines == (Line("TEA-1", "Green tea", 350, 3),)


def test_removing_exactly_the_line_quantity_removes_the_line() -> None:
    state = given(CREATED, TEA)
    assert fold(decide(RemoveItem(ORDER, "TEA-1", 5), state), state).lines == ()


def test_removing_more_than_the_line_has_is_refused() -> None:
    error = refused(RemoveItem(ORDER, "TEA-1", 6), given(CREATED, TEA), RemoveQuantityTooLarge, "has 5")
    assert "cannot remove 6" in error.message
    assert error.field == "quantity"


@pytest.mark.parametrize("quantity", [0, -1])
def test_removing_a_quantity_below_1_is_refused(quantity: int) -> None:
    refused(RemoveItem(ORDER, "TEA-1", quantity), given(CREATED, TEA), InvalidQuantity, "from 1 to 999")


# ----------------------------------------------------------------- PlaceOrder


def test_an_empty_order_cannot_be_placed() -> None:
    refused(PlaceOrder(ORDER), given(CREATED), EmptyOrder, "at least one item")


def test_an_order_whose_lines_were_all_removed_cannot_be_placed() -> None:
    refused(PlaceOrder(ORDER), given(CREATED, TEA, ItemRemoved("TEA-1", 5)), EmptyOrder, "at least one item")


def test_placing_records_the_total() -> None:
    state = given(CREATED, TEA, CAKE, ItemRemoved("TEA-1", 1))
    assert decide(PlaceOrder(ORDER), state) == [OrderPlaced(350 * 4 + 1999 * 3)]
    assert fold([OrderPlaced(7397)], state).status == "placed"


def test_an_order_cannot_be_placed_twice() -> None:
    refused(PlaceOrder(ORDER), given(CREATED, TEA, PLACED), OrderNotDraft, "only a draft order")


# ---------------------------------------------------------------- CancelOrder


@pytest.mark.parametrize(
    "history", [[CREATED], [CREATED, TEA], [CREATED, TEA, PLACED]], ids=["empty-draft", "draft", "placed"]
)
def test_a_draft_or_placed_order_can_be_cancelled(history: list[Event]) -> None:
    state = given(*history)
    events = decide(CancelOrder(ORDER, "changed my mind"), state)
    assert events == [CANCELLED]
    after = fold(events, state)
    assert (after.status, after.cancel_reason) == ("cancelled", "changed my mind")
    assert after.lines == state.lines


def test_an_order_cannot_be_cancelled_twice() -> None:
    refused(
        CancelOrder(ORDER, "again"), given(CREATED, CANCELLED), OrderAlreadyCancelled, "already cancelled"
    )


@pytest.mark.parametrize(
    ("reason", "says"),
    [
        ("", "1 to 500 characters"),
        ("   \n\t", "1 to 500 characters"),
        ("r" * 501, "this one has 501"),
        ("changed\x00my mind", "control characters"),
    ],
    ids=["empty", "whitespace", "501", "nul"],
)
def test_a_cancel_reason_is_required_and_at_most_500_characters(reason: str, says: str) -> None:
    error = refused(CancelOrder(ORDER, reason), given(CREATED, TEA), InvalidCancelReason, says)
    assert error.field == "reason"


@pytest.mark.parametrize("reason", ["r" * 500, "Customer called.\nWill reorder next week.", "x"])
def test_a_cancel_reason_up_to_500_characters_is_accepted_as_typed(reason: str) -> None:
    assert decide(CancelOrder(ORDER, reason), given(CREATED, TEA)) == [OrderCancelled(reason)]


# ------------------------------------------- placed and cancelled are settled

SETTLED: dict[str, list[Event]] = {"placed": [CREATED, TEA, PLACED], "cancelled": [CREATED, TEA, CANCELLED]}


@pytest.mark.parametrize("status", SETTLED)
@pytest.mark.parametrize(
    "command",
    [
        AddItem(ORDER, "CAKE-2", "Lemon cake", 1999, 1),
        AddItem(ORDER, "TEA-1", "Green tea", 350, 1),
        RemoveItem(ORDER, "TEA-1"),
        RemoveItem(ORDER, "TEA-1", 1),
        PlaceOrder(ORDER),
    ],
    ids=["add-new", "add-more", "remove-line", "remove-one", "place"],
)
def test_the_items_of_a_placed_or_cancelled_order_cannot_change(status: str, command: Command) -> None:
    refused(
        command, given(*SETTLED[status]), OrderNotDraft, f"This order is {status}; only a draft order can"
    )


@pytest.mark.parametrize("status", SETTLED)
def test_a_placed_or_cancelled_order_cannot_be_created_again(status: str) -> None:
    refused(
        CreateOrder(ORDER, "customer-7", "EUR"), given(*SETTLED[status]), OrderAlreadyExists, "already exists"
    )


def test_a_cancelled_order_cannot_be_cancelled_again_even_after_placing() -> None:
    refused(
        CancelOrder(ORDER, "again"), given(CREATED, TEA, PLACED, CANCELLED), OrderAlreadyCancelled, "already"
    )
