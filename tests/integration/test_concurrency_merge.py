"""The command handler merges a clash by itself when the command still means what its sender meant.

handle(..., merge=True): a sender who decided on version N while others moved
the order on gets their command decided afresh if none of the events they did
not see conflicts with it (another line's change), and StaleVersion otherwise.
"""

from __future__ import annotations

import asyncio
import random
from uuid import uuid4

import asyncpg
import pytest

from domain.order import AddItem, CancelOrder, Command, ItemAdded, PlaceOrder, RemoveItem
from store.log.commands import RACE_RETRIES, StaleVersion, conflicts, handle
from store.log.event_store import EventStore
from tests.support.workflows import draft, place


async def kinds(store: EventStore, order_id: str) -> list[tuple[int, str]]:
    return [(e.version, e.type) for e in await store.read_stream(order_id)]


async def test_two_adds_of_different_skus_decided_on_one_version_both_land(store: EventStore) -> None:
    order_id = await draft(store)  # version 2: TEA-1
    await handle(store, AddItem(order_id, "CUP-1", "Cup", 1200, 1), command_id=uuid4(), expected_version=2)
    pot = AddItem(order_id, "POT-1", "Teapot", 3025, 1)
    with pytest.raises(StaleVersion):  # without merge: the strict check
        await handle(store, pot, command_id=uuid4(), expected_version=2)

    result = await handle(store, pot, command_id=uuid4(), expected_version=2, merge=True)

    assert (result.first_version, result.last_version, result.duplicate) == (4, 4, False)
    assert [line.sku for line in result.order.lines] == ["TEA-1", "CUP-1", "POT-1"]
    assert await kinds(store, order_id) == [
        (1, "OrderCreated"),
        (2, "ItemAdded"),
        (3, "ItemAdded"),
        (4, "ItemAdded"),
    ]


@pytest.mark.parametrize(
    ("unseen", "command"),
    [
        (AddItem("", "TEA-1", "Item TEA-1", 350, 1), AddItem("", "TEA-1", "Item TEA-1", 350, 5)),
        (AddItem("", "TEA-1", "Item TEA-1", 350, 1), RemoveItem("", "TEA-1", 1)),
        (RemoveItem("", "TEA-1"), AddItem("", "TEA-1", "Item TEA-1", 350, 1)),
        (AddItem("", "CUP-1", "Cup", 1200, 1), PlaceOrder("")),
        (AddItem("", "CUP-1", "Cup", 1200, 1), CancelOrder("", "Not needed")),
        (PlaceOrder(""), AddItem("", "CUP-1", "Cup", 1200, 1)),
        (CancelOrder("", "Gone"), RemoveItem("", "TEA-1")),
    ],
    ids=[
        "add-after-same-sku-added",
        "remove-after-same-sku-added",
        "add-after-same-line-removed",
        "place-after-unseen-add",
        "cancel-after-unseen-add",
        "add-after-unseen-place",
        "remove-after-unseen-cancel",
    ],
)
async def test_a_real_conflict_is_reported_and_nothing_is_written(
    store: EventStore, unseen: Command, command: Command
) -> None:
    order_id = await draft(store)
    await handle(store, _for(unseen, order_id), command_id=uuid4())
    before = await kinds(store, order_id)
    with pytest.raises(StaleVersion) as refused:
        await handle(store, _for(command, order_id), command_id=uuid4(), expected_version=2, merge=True)
    assert (refused.value.expected_version, refused.value.actual_version) == (2, 3)
    assert refused.value.order.version == 3
    assert await kinds(store, order_id) == before


def _for(command: Command, order_id: str) -> Command:
    return type(command)(order_id, *[getattr(command, f) for f in command.__struct_fields__[1:]])


async def test_removing_another_line_merges(store: EventStore) -> None:
    order_id = await draft(store, "alice", ("TEA-1", 350, 2), ("CUP-1", 1200, 1))  # version 3
    await handle(store, AddItem(order_id, "TEA-1", "Item TEA-1", 350, 1), command_id=uuid4())
    result = await handle(
        store, RemoveItem(order_id, "CUP-1"), command_id=uuid4(), expected_version=3, merge=True
    )
    assert [(line.sku, line.quantity) for line in result.order.lines] == [("TEA-1", 3)]


async def test_a_repeat_of_a_merged_command_writes_nothing(store: EventStore) -> None:
    order_id = await draft(store)
    await handle(store, AddItem(order_id, "CUP-1", "Cup", 1200, 1), command_id=uuid4())
    command_id = uuid4()
    pot = AddItem(order_id, "POT-1", "Teapot", 3025, 1)
    first = await handle(store, pot, command_id=command_id, expected_version=2, merge=True)
    again = await handle(store, pot, command_id=command_id, expected_version=2, merge=True)
    assert (again.first_version, again.last_version, again.duplicate) == (first.first_version, 4, True)
    assert len(await kinds(store, order_id)) == 4


async def test_racing_writers_of_different_lines_all_land_within_the_retry_bound(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    """Each lost race is another writer's success, so at most RACE_RETRIES + 1 writers always all land."""
    order_id = await draft(store)
    writers = RACE_RETRIES + 1
    results = await asyncio.gather(
        *(
            handle(
                store,
                AddItem(order_id, f"L-{n}", "Line", 100, 1),
                command_id=uuid4(),
                expected_version=2,
                merge=True,
            )
            for n in range(writers)
        )
    )
    assert sorted(r.last_version for r in results) == list(range(3, 3 + writers))
    events = await store.read_stream(order_id)
    assert {e.event.sku for e in events[2:] if isinstance(e.event, ItemAdded)} == {
        f"L-{n}" for n in range(writers)
    }


async def test_many_more_racing_writers_land_or_are_told_so(store: EventStore) -> None:
    """Past the bound a writer gets StaleVersion: never lost silently, never written twice."""
    order_id = await draft(store)

    async def add(n: int) -> str | None:
        await asyncio.sleep(random.uniform(0, 0.01))
        try:
            await handle(
                store,
                AddItem(order_id, f"M-{n}", "Line", 100, 1),
                command_id=uuid4(),
                expected_version=2,
                merge=True,
            )
        except StaleVersion:
            return None
        return f"M-{n}"

    landed = {sku for sku in await asyncio.gather(*(add(n) for n in range(40))) if sku}
    events = await store.read_stream(order_id)
    assert [e.version for e in events] == list(range(1, len(events) + 1))
    assert {e.event.sku for e in events[2:] if isinstance(e.event, ItemAdded)} == landed
    assert landed


def test_what_conflicts() -> None:
    tea, cup = ItemAdded("TEA-1", "Tea", 350, 1), ItemAdded("CUP-1", "Cup", 1200, 1)
    assert not conflicts(AddItem("o", "POT-1", "Pot", 100, 1), [tea, cup])
    assert conflicts(AddItem("o", "TEA-1", "Tea", 350, 1), [cup, tea])
    assert not conflicts(PlaceOrder("o"), [])
    assert conflicts(PlaceOrder("o"), [cup])
    assert conflicts(CancelOrder("o", "why"), [cup])


async def test_placing_after_the_order_was_placed_elsewhere_is_a_conflict_not_a_rule_error(
    store: EventStore,
) -> None:
    order_id = await draft(store)
    await place(store, order_id)
    with pytest.raises(StaleVersion):
        await handle(
            store,
            AddItem(order_id, "CUP-1", "Cup", 1200, 1),
            command_id=uuid4(),
            expected_version=2,
            merge=True,
        )
