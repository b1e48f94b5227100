"""OrderReadModel: one row per order, kept by the append, listed newest first with keyset paging."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import uuid4

from domain.order import AddItem, CancelOrder, Command, CreateOrder, PlaceOrder, RemoveItem
from store.log.commands import handle
from store.log.event_store import EventStore
from store.read.read_model import OrderQuery, OrderSummary, ReadModel

ReadModelCheck = Callable[[str], Awaitable[OrderSummary]]


async def create(store: EventStore, order_id: str, customer_id: str = "customer-1") -> None:
    await handle(store, CreateOrder(order_id, customer_id, "EUR"), command_id=uuid4())


async def place(store: EventStore, order_id: str) -> None:
    await handle(store, AddItem(order_id, "W-1", "Widget", 250, 1), command_id=uuid4())
    await handle(store, PlaceOrder(order_id), command_id=uuid4())


async def cancel(store: EventStore, order_id: str) -> None:
    await handle(store, CancelOrder(order_id, "No longer needed"), command_id=uuid4())


async def test_the_row_follows_every_command(
    store: EventStore, read_model: ReadModel, read_model_matches_log: ReadModelCheck, order_id: str
) -> None:
    assert await read_model.get_order(order_id) is None
    commands: list[Command] = [
        CreateOrder(order_id, "acme-42", "USD"),
        AddItem(order_id, "PEN-1", "Fountain pen", 12_50, 2),
        AddItem(order_id, "INK-3", "Ink, blue", 3_99, 5),
        RemoveItem(order_id, "INK-3", 2),
        AddItem(order_id, "PEN-1", "Fountain pen", 12_50, 1),
        RemoveItem(order_id, "PEN-1"),
        CancelOrder(order_id, "Ordered by mistake"),
    ]
    shown = []
    for command in commands:
        await handle(store, command, command_id=uuid4())
        shown.append(await read_model_matches_log(order_id))

    assert [(r.status, r.line_count, r.item_count, r.total_cents, r.version) for r in shown] == [
        ("draft", 0, 0, 0, 1),
        ("draft", 1, 2, 25_00, 2),
        ("draft", 2, 7, 25_00 + 5 * 3_99, 3),
        ("draft", 2, 5, 25_00 + 3 * 3_99, 4),
        ("draft", 2, 6, 37_50 + 3 * 3_99, 5),
        ("draft", 1, 3, 3 * 3_99, 6),
        ("cancelled", 1, 3, 3 * 3_99, 7),
    ]
    assert {(r.customer_id, r.currency) for r in shown} == {("acme-42", "USD")}
    assert len({r.created_at for r in shown}) == 1
    assert [r.updated_at for r in shown] == sorted(r.updated_at for r in shown)
    assert shown[-1].updated_at > shown[0].created_at


async def test_orders_are_listed_newest_first(store: EventStore, read_model: ReadModel) -> None:
    for n in range(5):
        await create(store, f"order-{n}")
    await place(store, "order-1")

    page = await read_model.list_orders(OrderQuery())

    assert [o.order_id for o in page.orders] == ["order-4", "order-3", "order-2", "order-1", "order-0"]
    assert page.next_after is None


async def test_customers_match_by_prefix(store: EventStore, read_model: ReadModel) -> None:
    customers = {"o-1": "acme-1", "o-2": "acme-2", "o-3": "bolt-1", "o-4": "ACME-3", "o-5": "xacme"}
    for order_id, customer_id in customers.items():
        await create(store, order_id, customer_id)

    listed = {
        prefix: [o.order_id for o in (await read_model.list_orders(OrderQuery(customer=prefix))).orders]
        for prefix in ("acme", "acme-2", "bolt", "nobody", "")
    }

    assert listed == {
        "acme": ["o-2", "o-1"],
        "acme-2": ["o-2"],
        "bolt": ["o-3"],
        "nobody": [],
        "": ["o-5", "o-4", "o-3", "o-2", "o-1"],
    }


async def test_a_customer_prefix_is_matched_literally(store: EventStore, read_model: ReadModel) -> None:
    for order_id, customer_id in {"o-1": "a_1", "o-2": "a%1", "o-3": "a\\1", "o-4": "ab1"}.items():
        await create(store, order_id, customer_id)

    listed = {
        prefix: [o.order_id for o in (await read_model.list_orders(OrderQuery(customer=prefix))).orders]
        for prefix in ("a_", "a%", "a\\", "a")
    }

    assert listed == {"a_": ["o-1"], "a%": ["o-2"], "a\\": ["o-3"], "a": ["o-4", "o-3", "o-2", "o-1"]}


async def test_orders_filter_by_status(store: EventStore, read_model: ReadModel) -> None:
    for order_id in ("d-1", "p-1", "c-1", "d-2", "p-2", "c-2"):
        await create(store, order_id, customer_id="shop-" + order_id)
    for order_id in ("p-1", "p-2"):
        await place(store, order_id)
    await cancel(store, "c-1")
    await place(store, "c-2")
    await cancel(store, "c-2")

    async def listed(status: str, customer: str | None = None) -> list[str]:
        page = await read_model.list_orders(OrderQuery(customer=customer, status=status))
        return [o.order_id for o in page.orders]

    assert await listed("draft") == ["d-2", "d-1"]
    assert await listed("placed") == ["p-2", "p-1"]
    assert await listed("cancelled") == ["c-2", "c-1"]
    assert await listed("placed", customer="shop-p-2") == ["p-2"]
    assert await listed("draft", customer="shop-p") == []
    assert await listed("shipped") == []


async def test_keyset_paging_lists_every_order_exactly_once(store: EventStore, read_model: ReadModel) -> None:
    created = [f"order-{n:02d}" for n in range(30)]
    for order_id in created:
        await create(store, order_id)

    async def walk(limit: int) -> list[list[str]]:
        pages = []
        after = None
        while True:
            page = await read_model.list_orders(OrderQuery(after=after, limit=limit))
            pages.append([o.order_id for o in page.orders])
            if page.next_after is None:
                return pages
            assert page.next_after == page.orders[-1].order_id
            after = page.next_after

    by_seven, by_ten = await walk(7), await walk(10)

    assert [len(p) for p in by_seven] == [7, 7, 7, 7, 2]
    assert [order_id for p in by_seven for order_id in p] == created[::-1]
    # When the last page is exactly full, there is no empty page after it.
    assert [len(p) for p in by_ten] == [10, 10, 10]
    assert [order_id for p in by_ten for order_id in p] == created[::-1]


async def test_keyset_paging_keeps_the_customer_and_status_filters(
    store: EventStore, read_model: ReadModel
) -> None:
    for n in range(12):
        await create(store, f"order-{n:02d}", customer_id="acme" if n % 2 else "bolt")
    for n in (1, 3, 5, 7, 9):
        await place(store, f"order-{n:02d}")

    first = await read_model.list_orders(OrderQuery(customer="acme", status="placed", limit=3))
    second = await read_model.list_orders(
        OrderQuery(customer="acme", status="placed", after=first.next_after, limit=3)
    )

    assert [o.order_id for o in first.orders] == ["order-09", "order-07", "order-05"]
    assert [o.order_id for o in second.orders] == ["order-03", "order-01"]
    assert second.next_after is None
