"""EventStore.append: versions without holes, optimistic concurrency, idempotent command ids."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from uuid import UUID, uuid4

import asyncpg
import pytest

from domain.order import Event, ItemAdded, ItemRemoved, OrderCreated, fold
from store.log.event_store import AppendResult, ConcurrencyError, EventStore, Metadata

EventRows = Callable[[str], Awaitable[list[asyncpg.Record]]]


def meta(command_id: UUID, correlation_id: UUID | None = None) -> Metadata:
    return Metadata(command_id=str(command_id), correlation_id=str(correlation_id or command_id))


async def append(
    store: EventStore, stream_id: str, expected: int, events: list[Event], command_id: UUID | None = None
) -> AppendResult:
    command_id = command_id or uuid4()
    order = fold(e.event for e in await store.read_stream(stream_id))
    return await store.append(stream_id, expected, events, command_id, meta(command_id), fold(events, order))


def created(order_id: str) -> OrderCreated:
    return OrderCreated(order_id, "customer-1", "EUR")


def widget(quantity: int = 1, sku: str = "W-1") -> ItemAdded:
    return ItemAdded(sku, "Widget", 250, quantity)


async def test_versions_run_from_one_without_holes(
    store: EventStore, event_rows: EventRows, order_id: str
) -> None:
    first = await append(store, order_id, 0, [created(order_id)])
    second = await append(store, order_id, 1, [widget(2), widget(3, "W-2")])
    third = await append(store, order_id, 3, [ItemRemoved("W-1", 1)])

    assert (first.first_version, first.last_version) == (1, 1)
    assert (second.first_version, second.last_version) == (2, 3)
    assert (third.first_version, third.last_version) == (4, 4)
    assert not any(r.duplicate for r in (first, second, third))
    rows = await event_rows(order_id)
    assert [r["version"] for r in rows] == [1, 2, 3, 4]
    assert [r["type"] for r in rows] == ["OrderCreated", "ItemAdded", "ItemAdded", "ItemRemoved"]


async def test_event_rows_carry_what_an_auditor_needs(
    store: EventStore, event_rows: EventRows, order_id: str
) -> None:
    create_id, add_id, correlation = uuid4(), uuid4(), uuid4()
    await store.append(order_id, 0, [created(order_id)], create_id, meta(create_id))
    await store.append(order_id, 1, [widget(2), widget(1, "W-2")], add_id, meta(add_id, correlation))

    rows = await event_rows(order_id)
    assert [(r["type"], r["schema_version"]) for r in rows] == [
        ("OrderCreated", 1),
        ("ItemAdded", 2),
        ("ItemAdded", 2),
    ]
    assert json.loads(rows[0]["data"]) == {
        "order_id": order_id,
        "customer_id": "customer-1",
        "currency": "EUR",
    }
    assert json.loads(rows[1]["data"]) == {
        "sku": "W-1",
        "name": "Widget",
        "unit_price_cents": 250,
        "quantity": 2,
        "note": "",
    }
    metadata = [json.loads(r["metadata"]) for r in rows]
    assert metadata[0]["command_id"] == metadata[0]["correlation_id"] == str(create_id)
    assert metadata[1] == metadata[2]
    assert (metadata[1]["command_id"], metadata[1]["correlation_id"]) == (str(add_id), str(correlation))
    assert len({r["event_id"] for r in rows}) == 3
    assert all(r["recorded_at"] is not None and r["tx_id"] for r in rows)
    # One append is one transaction: its events share a tx_id and a timestamp.
    assert rows[1]["tx_id"] == rows[2]["tx_id"]
    assert int(rows[0]["tx_id"]) < int(rows[1]["tx_id"])
    assert rows[1]["recorded_at"] == rows[2]["recorded_at"] >= rows[0]["recorded_at"]
    assert [r.metadata.actor for r in await store.read_stream(order_id)] == ["anonymous"] * 3


async def test_the_stored_metadata_names_the_actor(
    store: EventStore, event_rows: EventRows, order_id: str
) -> None:
    await append(store, order_id, 0, [created(order_id)])

    (row,) = await event_rows(order_id)
    assert json.loads(row["metadata"])["actor"] == "anonymous"


async def test_a_version_clash_raises_and_writes_nothing(
    store: EventStore, event_rows: EventRows, order_id: str
) -> None:
    await append(store, order_id, 0, [created(order_id)])
    await append(store, order_id, 1, [widget()])
    before = await event_rows(order_id)

    with pytest.raises(ConcurrencyError) as raised:
        await append(store, order_id, 1, [widget(5, "W-9")])

    error = raised.value
    assert (error.stream_id, error.expected_version, error.actual_version) == (order_id, 1, 2)
    assert await event_rows(order_id) == before


async def test_an_expected_version_beyond_the_head_raises_and_leaves_no_hole(
    store: EventStore, event_rows: EventRows, order_id: str
) -> None:
    with pytest.raises(ConcurrencyError) as on_a_new_stream:
        await append(store, order_id, 1, [created(order_id)])
    await append(store, order_id, 0, [created(order_id)])
    command_id = uuid4()

    with pytest.raises(ConcurrencyError) as on_an_existing_stream:
        await append(store, order_id, 5, [widget()], command_id)

    assert (on_a_new_stream.value.actual_version, on_an_existing_stream.value.actual_version) == (0, 1)
    assert [r["version"] for r in await event_rows(order_id)] == [1]
    assert await store.find_command(command_id) is None


async def test_a_repeated_command_id_returns_the_first_result_and_writes_nothing(
    store: EventStore, event_rows: EventRows, order_id: str
) -> None:
    await append(store, order_id, 0, [created(order_id)])
    command_id = uuid4()
    first = await append(store, order_id, 1, [widget(), widget(1, "W-2")], command_id)
    rows = await event_rows(order_id)

    again = await append(store, order_id, 1, [widget(), widget(1, "W-2")], command_id)
    # Retried later, at the new head and with other events: still the first answer.
    later = await append(store, order_id, 3, [widget(7, "W-3")], command_id)

    assert first == AppendResult(order_id, 2, 3, duplicate=False)
    assert again == later == AppendResult(order_id, 2, 3, duplicate=True)
    assert await event_rows(order_id) == rows


async def test_twenty_concurrent_appends_at_one_version_one_wins(
    store: EventStore, event_rows: EventRows, pool: asyncpg.Pool, order_id: str
) -> None:
    await append(store, order_id, 0, [created(order_id)])
    skus = [f"SKU-{n}" for n in range(20)]

    outcomes = await asyncio.gather(
        *(store.append(order_id, 1, [widget(1, sku)], uuid4(), meta(uuid4())) for sku in skus),
        return_exceptions=True,
    )

    won = [o for o in outcomes if isinstance(o, AppendResult)]
    lost = [o for o in outcomes if not isinstance(o, AppendResult)]
    assert won == [AppendResult(order_id, 2, 2)]
    assert len(lost) == 19
    assert all(isinstance(o, ConcurrencyError) for o in lost), lost
    rows = await event_rows(order_id)
    assert [r["version"] for r in rows] == [1, 2]
    assert json.loads(rows[1]["data"])["sku"] == skus[outcomes.index(won[0])]
    assert await pool.fetchval("SELECT count(*) FROM commands") == 2


async def test_one_command_id_sent_twenty_times_at_once_writes_once(
    store: EventStore, event_rows: EventRows, order_id: str
) -> None:
    await append(store, order_id, 0, [created(order_id)])
    command_id = uuid4()
    events: list[Event] = [widget(2), widget(1, "W-2")]

    answers = await asyncio.gather(
        *(store.append(order_id, 1, events, command_id, meta(command_id)) for _ in range(20))
    )

    assert {(a.stream_id, a.first_version, a.last_version) for a in answers} == {(order_id, 2, 3)}
    assert sum(not a.duplicate for a in answers) == 1
    rows = await event_rows(order_id)
    assert [(r["version"], r["type"]) for r in rows] == [
        (1, "OrderCreated"),
        (2, "ItemAdded"),
        (3, "ItemAdded"),
    ]
