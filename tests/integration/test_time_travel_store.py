"""Reading the past: a stream up to a version or as of a time, and the whole log by position."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from domain.order import (
    AddItem,
    CancelOrder,
    Command,
    CreateOrder,
    Order,
    OrderPlaced,
    PlaceOrder,
    RemoveItem,
    fold,
)
from store.log.commands import handle
from store.log.event_store import EventStore, LogQuery, RecordedEvent

# What the order should look like after each version, written out by hand:
# (status, [(sku, unit price, quantity), …] in the order the lines were first added).
Expected = tuple[str, list[tuple[str, int, int]]]


def twenty_commands(order_id: str) -> list[Command]:
    return [
        CreateOrder(order_id, "time-traveller", "EUR"),
        AddItem(order_id, "A", "Apple", 100, 3),
        AddItem(order_id, "B", "Banana", 250, 1),
        AddItem(order_id, "C", "Cherry", 75, 2),
        RemoveItem(order_id, "A", 1),
        AddItem(order_id, "A", "Apple", 100, 2),
        RemoveItem(order_id, "B"),
        AddItem(order_id, "D", "Date", 1000, 5),
        RemoveItem(order_id, "C", 2),
        AddItem(order_id, "B", "Banana", 300, 4),
        AddItem(order_id, "E", "Elderberry", 5, 1),
        RemoveItem(order_id, "D", 3),
        AddItem(order_id, "C", "Cherry", 80, 1),
        RemoveItem(order_id, "E"),
        AddItem(order_id, "F", "Fig", 1, 9),
        RemoveItem(order_id, "A", 4),
        AddItem(order_id, "G", "Grape", 999, 1),
        RemoveItem(order_id, "F", 8),
        AddItem(order_id, "A", "Apple", 120, 1),
        PlaceOrder(order_id),
    ]


def expected_after_each(commands: list[Command]) -> list[Expected]:
    """The test's own bookkeeping of each command's effect, independent of domain.evolve."""
    status = "none"
    lines: dict[str, tuple[int, int]] = {}
    states: list[Expected] = []
    for command in commands:
        if isinstance(command, CreateOrder):
            status = "draft"
        elif isinstance(command, AddItem):
            _, quantity = lines.get(command.sku, (command.unit_price_cents, 0))
            lines[command.sku] = (command.unit_price_cents, quantity + command.quantity)
        elif isinstance(command, RemoveItem):
            price, quantity = lines[command.sku]
            left = quantity - (command.quantity or quantity)
            if left:
                lines[command.sku] = (price, left)
            else:
                del lines[command.sku]
        elif isinstance(command, PlaceOrder):
            status = "placed"
        states.append((status, [(sku, price, quantity) for sku, (price, quantity) in lines.items()]))
    return states


def seen(order: Order) -> Expected:
    return order.status, [(line.sku, line.unit_price_cents, line.quantity) for line in order.lines]


async def given_a_twenty_event_order(store: EventStore, order_id: str) -> list[Expected]:
    commands = twenty_commands(order_id)
    for command in commands:
        await handle(store, command, command_id=uuid4())
    return expected_after_each(commands)


async def test_every_version_of_a_twenty_event_order_can_be_replayed(
    store: EventStore, order_id: str
) -> None:
    expected = await given_a_twenty_event_order(store, order_id)

    for version in range(1, 21):
        events = await store.read_stream(order_id, version)
        assert [e.version for e in events] == list(range(1, version + 1))
        order = fold(e.event for e in events)
        assert order.version == version
        assert seen(order) == expected[version - 1], f"version {version}"
        assert order.total_cents == sum(price * quantity for _, price, quantity in expected[version - 1][1])

    assert await store.read_stream(order_id, 0) == []
    assert await store.read_stream(order_id, 99) == await store.read_stream(order_id)
    placed = (await store.read_stream(order_id))[-1]
    assert (placed.type, placed.event) == ("OrderPlaced", OrderPlaced(total_cents=4400))


async def test_version_at_finds_the_version_as_of_any_moment(store: EventStore, order_id: str) -> None:
    expected = await given_a_twenty_event_order(store, order_id)
    recorded = [e.recorded_at for e in await store.read_stream(order_id)]
    assert recorded == sorted(recorded)
    tick = timedelta(microseconds=1)

    assert await store.version_at(order_id, recorded[0] - tick) == 0
    assert await store.version_at(order_id, recorded[0] - timedelta(days=365)) == 0
    for version, at in enumerate(recorded, start=1):
        assert await store.version_at(order_id, at) == version
        if version < 20 and recorded[version] > at:
            between = at + (recorded[version] - at) / 2
            assert await store.version_at(order_id, between) == version
    assert await store.version_at(order_id, recorded[-1] + tick) == 20
    assert await store.version_at(order_id, recorded[-1] + timedelta(days=365)) == 20
    assert await store.version_at("no-such-order", recorded[-1]) == 0

    # "As it was at 10:32": the version at that moment, then the fold up to it.
    moment = recorded[11] + (recorded[12] - recorded[11]) / 2
    version = await store.version_at(order_id, moment)
    assert seen(fold(e.event for e in await store.read_stream(order_id, version))) == expected[11]


async def test_read_all_pages_through_every_event_once_in_position_order(store: EventStore) -> None:
    orders = [f"order-{n}" for n in range(3)]
    for order_id in orders:
        await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=uuid4())
    for round_ in range(4):
        for order_id in orders:
            await handle(store, AddItem(order_id, f"S-{round_}", "Thing", 100, 1), command_id=uuid4())
    await handle(store, PlaceOrder(orders[1]), command_id=uuid4())
    await handle(store, CancelOrder(orders[2], "Out of stock"), command_id=uuid4())

    pages = []
    after = 0
    while page := await store.read_all(after=after, limit=4):
        pages.append(page)
        after = page[-1].position

    everything = [e for page in pages for e in page]
    assert [len(p) for p in pages] == [4, 4, 4, 4, 1]
    assert [e.position for e in everything] == sorted({e.position for e in everything})
    assert len(everything) == 3 + 12 + 2
    for order_id in orders:
        in_log = [e for e in everything if e.stream_id == order_id]
        assert in_log == await store.read_stream(order_id)
    assert await store.read_all(after=everything[-1].position) == []
    assert await store.read_all(after=everything[5].position, limit=2) == everything[6:8]


async def test_read_log_lists_newest_first_and_filters_by_type_and_stream(store: EventStore) -> None:
    for order_id in ("left", "right"):
        await handle(store, CreateOrder(order_id, "customer-1", "EUR"), command_id=uuid4())
    for sku in ("S-1", "S-2", "S-3"):
        for order_id in ("left", "right"):
            await handle(store, AddItem(order_id, sku, "Thing", 100, 1), command_id=uuid4())
    await handle(store, PlaceOrder("right"), command_id=uuid4())
    oldest_first = await store.read_all()

    def described(events: list[RecordedEvent]) -> list[tuple[str, int, str]]:
        return [(e.stream_id, e.version, e.type) for e in events]

    assert await store.read_log(LogQuery()) == oldest_first[::-1]
    assert described(await store.read_log(LogQuery(limit=3))) == [
        ("right", 5, "OrderPlaced"),
        ("right", 4, "ItemAdded"),
        ("left", 4, "ItemAdded"),
    ]
    assert described(await store.read_log(LogQuery(type_name="OrderCreated"))) == [
        ("right", 1, "OrderCreated"),
        ("left", 1, "OrderCreated"),
    ]
    assert described(await store.read_log(LogQuery(stream_id="left"))) == [
        ("left", v, t) for v, t in [(4, "ItemAdded"), (3, "ItemAdded"), (2, "ItemAdded"), (1, "OrderCreated")]
    ]
    assert described(await store.read_log(LogQuery(type_name="ItemAdded", stream_id="right", limit=2))) == [
        ("right", 4, "ItemAdded"),
        ("right", 3, "ItemAdded"),
    ]
    assert await store.read_log(LogQuery(type_name="OrderCancelled")) == []
    assert await store.read_log(LogQuery(stream_id="nobody")) == []

    # Paging backwards: each page starts before the oldest event of the one before.
    pages = [await store.read_log(LogQuery(limit=3))]
    while len(pages[-1]) == 3:
        pages.append(await store.read_log(LogQuery(before=pages[-1][-1].position, limit=3)))
    assert [e for page in pages for e in page] == oldest_first[::-1]
