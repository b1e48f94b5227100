"""The append statement: its hash chain is event_hash()'s; with a Notifier, every append wakes listeners."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import asyncpg

from domain.order import ItemAdded, OrderCreated, OrderPlaced, fold
from store.log.event_store import EventStore, Metadata
from store.log.notifier import EVENTS_CHANNEL, Notifier

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


async def test_with_a_notifier_lone_and_concurrent_appends_each_wake_listeners(
    pool: asyncpg.Pool, database_url: str
) -> None:
    notifier = Notifier(pool)
    waking = asyncio.create_task(notifier.run())
    store = EventStore(pool, notifier=notifier)
    named: set[str] = set()
    arrived = asyncio.Event()

    def on_notify(conn: object, pid: int, channel: str, payload: object) -> None:
        named.update(str(payload).split())
        arrived.set()

    async def create(order_id: str) -> None:
        command_id = uuid4()
        events = [OrderCreated(order_id, "customer-1", "EUR")]
        await store.append(
            order_id, 0, events, command_id, Metadata(command_id=str(command_id)), fold(events)
        )

    async def named_all(order_ids: list[str]) -> None:
        while not named.issuperset(order_ids):
            arrived.clear()
            await asyncio.wait_for(arrived.wait(), timeout=5)

    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener(EVENTS_CHANNEL, on_notify)
        alone = f"order-{uuid4()}"
        await create(alone)  # nothing else in flight: the NOTIFY is in its statement
        await named_all([alone])
        together = [f"order-{uuid4()}" for _ in range(8)]
        await asyncio.gather(*(create(order_id) for order_id in together))  # the Notifier's, after commit
        await named_all(together)
    finally:
        await listener.close()
        waking.cancel()
        await asyncio.gather(waking, return_exceptions=True)

    assert named.issuperset([alone, *together])
