"""The append writes the hash chain inline: each row's hash is what migration 007's event_hash() gives."""

from __future__ import annotations

from uuid import uuid4

import asyncpg

from domain.order import ItemAdded, OrderCreated, OrderPlaced, fold
from store.log.event_store import EventStore, Metadata
from store.log.notifier import Notifier

# Each row's hash recomputed by the function the migration defines, over the stored fields
# and the hash of the version before it.
_RECOMPUTED = """
SELECT version, event_id, hash = event_hash(
    lag(hash) OVER (ORDER BY version), stream_id, version, event_id, type, schema_version, data,
    metadata, recorded_at) AS matches
FROM events WHERE stream_id = $1 ORDER BY version
"""


async def test_each_appended_hash_is_event_hash_of_its_row_and_the_one_before(
    pool: asyncpg.Pool, order_id: str
) -> None:
    store = EventStore(pool, notifier=Notifier(pool))
    first = [OrderCreated(order_id, "customer-ü 1", "EUR"), ItemAdded("T-1", 'Tea "green" ☕', 350, 2)]
    second = [ItemAdded("T-2", "Cup", 1200, 1), OrderPlaced(1900)]
    for expected, events in ((0, first), (2, second)):
        command_id = uuid4()
        metadata = Metadata(command_id=str(command_id), actor="zoë")
        order = fold([*first, *second][: expected + len(events)])
        await store.append(order_id, expected, events, command_id, metadata, order)

    rows = await pool.fetch(_RECOMPUTED, order_id)

    assert [(r["version"], r["matches"]) for r in rows] == [(v, True) for v in range(1, 5)]
    assert len({r["event_id"] for r in rows}) == 4
