"""A rebuild writes out orders the log has left alone for a while as it reads on; an order
that comes back later is loaded from its row, and the rebuild still ends equal to the live
read model."""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import msgspec
import pytest

from domain.order import AddItem, CancelOrder, CreateOrder, Order, PlaceOrder, fold
from store.log.commands import handle
from store.log.event_store import EventStore
from store.read.projections import COLD_BATCHES, PROJECTIONS
from store.read.replay import rebuild
from tests.integration.test_replay import contents, kept_live


@pytest.mark.parametrize("name", sorted(PROJECTIONS))
async def test_orders_left_alone_are_written_early_and_loaded_back_when_they_return(
    database_url: str, pool: asyncpg.Pool, store: EventStore, name: str
) -> None:
    # Each order's events together, one order after another; then the first few come back.
    order_ids = [str(uuid4()) for _ in range(30)]
    for n, order_id in enumerate(order_ids):
        await handle(store, CreateOrder(order_id, f"customer-{n % 4}", "EUR"), command_id=uuid4())
        for item in range(3):
            await handle(store, AddItem(order_id, f"SKU-{item}", "Item", 100 + n, 1), command_id=uuid4())
    returning = order_ids[:5]
    for order_id in returning:
        await handle(store, PlaceOrder(order_id), command_id=uuid4())
    await handle(store, CancelOrder(returning[0], "changed my mind"), command_id=uuid4())
    kept = await kept_live(database_url, pool, name)
    events = await pool.fetchval("SELECT count(*) FROM events")
    batch_size = 4
    assert events > batch_size * COLD_BATCHES * 2, "the log outlasts the cold window several times"

    # Room for every order, so only orders left alone are written before the end.
    replayed = await rebuild(pool, name, batch_size=batch_size, hold=1000)

    assert replayed == events
    assert await contents(pool, name) == kept
    table = PROJECTIONS[name].tables[0]
    rows = {r[0]: r[1] for r in await pool.fetch(f"SELECT order_id, state FROM {table}")}
    for order_id in order_ids:
        expected = fold(e.event for e in await store.read_stream(order_id))
        assert msgspec.json.decode(rows[order_id], type=Order) == expected
