"""The states a process last appended: a hint bounded in number and age, never a cancelled order's."""

from __future__ import annotations

from domain.order import Line, Order, Status
from store.log.recent import RecentStates


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def order(order_id: str, version: int, status: Status = "draft") -> Order:
    lines = (Line(sku="SKU-1", name="Tea", unit_price_cents=450, quantity=1),)
    return Order(order_id, "c-1", "EUR", status, lines, version)


def test_a_state_is_kept_until_it_is_older_than_the_bound() -> None:
    clock = Clock()
    recent = RecentStates(seconds=120.0, clock=clock)
    recent.put("a", order("a", 1))
    clock.now += 120.0
    assert recent.get("a") == order("a", 1)
    clock.now += 0.5
    assert recent.get("a") is None
    assert len(recent) == 0


def test_old_states_leave_when_another_is_put_even_if_nobody_asks_for_them() -> None:
    clock = Clock()
    recent = RecentStates(seconds=60.0, clock=clock)
    for n in range(100):
        recent.put(f"old-{n}", order(f"old-{n}", 1))
    clock.now += 61.0
    recent.put("new", order("new", 1))
    assert len(recent) == 1
    assert recent.get("new") == order("new", 1)


def test_past_the_size_the_earliest_put_leaves_first() -> None:
    clock = Clock()
    recent = RecentStates(size=2, clock=clock)
    recent.put("a", order("a", 1))
    recent.put("b", order("b", 1))
    recent.get("a")  # asking does not make a state younger: its age runs from its append
    recent.put("c", order("c", 1))
    assert recent.get("a") is None
    assert recent.get("b") == order("b", 1)
    assert recent.get("c") == order("c", 1)


def test_a_newer_append_renews_the_state_and_an_older_one_is_ignored() -> None:
    clock = Clock()
    recent = RecentStates(seconds=60.0, clock=clock)
    recent.put("a", order("a", 1))
    clock.now += 50.0
    recent.put("a", order("a", 2))
    recent.put("a", order("a", 1))  # a racing append of this process that finished later
    clock.now += 50.0
    assert recent.get("a") == order("a", 2)


def test_a_cancelled_order_is_not_kept_and_its_earlier_state_goes() -> None:
    recent = RecentStates()
    recent.put("a", order("a", 3, "placed"))
    recent.put("a", order("a", 4, "cancelled"))
    assert recent.get("a") is None
    assert len(recent) == 0
