"""Random sequences of commands, valid and invalid, for one order: what must always hold."""

from __future__ import annotations

from typing import TypeVar

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.order import (
    AddItem,
    CancelOrder,
    Command,
    CreateOrder,
    Event,
    ItemAdded,
    ItemRemoved,
    Line,
    Order,
    OrderCancelled,
    OrderCreated,
    OrderPlaced,
    PlaceOrder,
    RemoveItem,
    decide,
    evolve,
    fold,
    initial_state,
    state_at,
)
from domain.rules import MAX_LINES, MAX_QUANTITY, MAX_UNIT_PRICE_CENTS

ORDER = "order-1"
T = TypeVar("T")


def mostly(valid: list[T], wrong: list[T]) -> st.SearchStrategy[T]:
    """Usually a valid value; about one time in five, one that some rule refuses."""
    return st.sampled_from(valid * (4 * len(wrong)) + wrong)


SKU = mostly(["TEA-1", "CAKE-2", "JAM-3"], ["", "bad sku", "TEA/1", "S" * 65])
QUANTITY = st.one_of(st.integers(1, 5), mostly([1, 400, 998, 999], [-1, 0, 1000]))
PRICE = mostly([350, 1999], [0, -1, 351, MAX_UNIT_PRICE_CENTS + 1])

create = st.builds(
    CreateOrder,
    order_id=st.just(ORDER),
    customer_id=mostly(["customer-7"], ["", "c" * 65, "bad\x00id"]),
    currency=mostly(["EUR"], ["eur", "XYZ"]),
)
add = st.builds(
    AddItem,
    order_id=st.just(ORDER),
    sku=SKU,
    name=mostly(["Green tea"], ["", " ", "n" * 201, "bad\x1bname"]),
    unit_price_cents=PRICE,
    quantity=QUANTITY,
)
remove = st.builds(RemoveItem, order_id=st.just(ORDER), sku=SKU, quantity=st.none() | QUANTITY)
place = st.builds(PlaceOrder, order_id=st.just(ORDER))
cancel = st.builds(
    CancelOrder, order_id=st.just(ORDER), reason=mostly(["changed my mind"], ["", "  ", "r" * 501])
)
# Mostly item changes, so that orders grow before they are placed or cancelled.
KINDS: list[st.SearchStrategy[Command]] = [add] * 6 + [remove] * 3 + [place] * 2 + [cancel, create]
FIRST: list[Command] = [CreateOrder(ORDER, "customer-7", "EUR"), AddItem(ORDER, "TEA-1", "Green tea", 350, 1)]


@st.composite
def histories(draw: st.DrawFn) -> list[Command]:
    """Commands for one order, which usually starts with a valid CreateOrder."""
    first = draw(mostly(FIRST[:1], FIRST[1:]))
    return [first, *draw(st.lists(st.sampled_from(KINDS).flatmap(lambda kind: kind), max_size=50))]


ALLOWED_TRANSITIONS = {
    ("none", "draft"),
    ("draft", "draft"),
    ("draft", "placed"),
    ("draft", "cancelled"),
    ("placed", "cancelled"),
}


def run(commands: list[Command]) -> tuple[list[Event], list[tuple[Command, Order]]]:
    """Decide and evolve each command in turn; return the events and the refused commands with their state."""
    state, events, refused = initial_state, [], []
    for command in commands:
        try:
            new_events = decide(command, state)
        except DomainError:
            refused.append((command, state))
            continue
        for event in new_events:
            state = evolve(state, event)
            events.append(event)
    return events, refused


def check_invariants(before: Order, after: Order, event: Event) -> None:
    assert (before.status, after.status) in ALLOWED_TRANSITIONS, (before.status, after.status, event)
    assert after.version == before.version + 1
    assert len(after.lines) <= MAX_LINES
    assert len({line.sku for line in after.lines}) == len(after.lines)
    for line in after.lines:
        assert 1 <= line.quantity <= MAX_QUANTITY
        assert 0 < line.unit_price_cents <= MAX_UNIT_PRICE_CENTS
    assert after.total_cents == sum(line.unit_price_cents * line.quantity for line in after.lines)
    if isinstance(event, OrderPlaced):
        assert event.total_cents == before.total_cents > 0
    if after.status != "draft" and before.status != "none":
        assert after.lines == before.lines


@settings(max_examples=200, deadline=None)
@given(histories())
def test_evolve_accepts_everything_decide_emits_and_the_invariants_hold(commands: list[Command]) -> None:
    events, _ = run(commands)
    state = initial_state
    for event in events:
        after = evolve(state, event)
        check_invariants(state, after, event)
        state = after


@settings(max_examples=200, deadline=None)
@given(histories())
def test_the_state_at_version_n_is_the_fold_of_the_first_n_events(commands: list[Command]) -> None:
    events, _ = run(commands)
    for n in range(len(events) + 1):
        state = state_at(events, n)
        assert state == fold(events[:n])
        assert state.version == n
    assert state_at(events, len(events) + 5) == fold(events)


@settings(max_examples=200, deadline=None)
@given(histories())
def test_a_refused_command_leaves_the_state_as_it_was(commands: list[Command]) -> None:
    _, refused = run(commands)
    for command, state in refused:
        snapshot = msgspec.json.encode(state)
        with pytest.raises(DomainError) as first:
            decide(command, state)
        with pytest.raises(type(first.value)) as again:
            decide(command, state)
        assert again.value.message == first.value.message
        assert msgspec.json.encode(state) == snapshot


# Any events at all, in any order, with quantities no decide would emit: fold must still
# give what evolve gives, one event at a time (it keeps the lines in a dict on the way).
any_event: st.SearchStrategy[Event] = st.one_of(
    st.builds(
        OrderCreated, order_id=st.just(ORDER), customer_id=st.just("customer-7"), currency=st.just("EUR")
    ),
    st.builds(
        ItemAdded,
        sku=st.sampled_from(["TEA-1", "CAKE-2", "JAM-3"]),
        name=st.sampled_from(["Green tea", "Cake"]),
        unit_price_cents=st.integers(-5, 5000),
        quantity=st.integers(-3, 5),
        note=st.sampled_from(["", "engraved"]),
    ),
    st.builds(ItemRemoved, sku=st.sampled_from(["TEA-1", "CAKE-2", "JAM-3"]), quantity=st.integers(-3, 5)),
    st.builds(OrderPlaced, total_cents=st.integers(0, 9999), ship_to=st.sampled_from(["", "1 Main St"])),
    st.builds(OrderCancelled, reason=st.just("changed my mind")),
)


def evolve_each(events: list[Event], state: Order = initial_state) -> Order:
    for event in events:
        state = evolve(state, event)
    return state


@settings(max_examples=300, deadline=None)
@given(st.lists(any_event, max_size=40), st.integers(0, 40))
def test_fold_gives_what_evolve_gives_one_event_at_a_time(events: list[Event], split: int) -> None:
    middle = evolve_each(events[:split])
    for start, rest in ((initial_state, events), (middle, events[split:])):
        folded = fold(rest, start)
        assert folded == evolve_each(rest, start)
        assert msgspec.json.encode(folded) == msgspec.json.encode(evolve_each(rest, start))
        assert (folded.total_cents, folded.item_count) == (
            sum(line.unit_price_cents * line.quantity for line in folded.lines),
            sum(line.quantity for line in folded.lines),
        )


@settings(max_examples=200, deadline=None)
@given(histories())
def test_fold_of_what_decide_emits_is_evolve_one_event_at_a_time(commands: list[Command]) -> None:
    events, _ = run(commands)
    assert fold(events) == evolve_each(events)
    state = fold(events)
    assert fold([], state) is state


def test_fold_of_a_state_holding_two_lines_of_one_sku_is_evolve_one_event_at_a_time() -> None:
    line = Line("TEA-1", "Green tea", 350, 1)
    state = Order(ORDER, "customer-7", "EUR", "draft", (line, line), 2)
    events: list[Event] = [ItemAdded("TEA-1", "Green tea", 350, 2), ItemRemoved("TEA-1", 1)]
    assert fold(events, state) == evolve_each(events, state)
