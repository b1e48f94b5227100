"""The Notifier: a burst's appends share a NOTIFY, and none is lost, also when it stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import uuid4

import asyncpg

from domain.order import OrderCreated, fold
from store.log.event_store import EventStore, Metadata
from store.log.live import LiveFeed
from store.log.notifier import EVENTS_CHANNEL, Notifier, payloads


class Listener:
    """A LISTEN connection that keeps every "<stream> <version>" line it is sent."""

    def __init__(self) -> None:
        self.notifications: list[str] = []
        self.arrived = asyncio.Event()

    def __call__(self, conn: object, pid: int, channel: str, payload: object) -> None:
        self.notifications.append(str(payload))
        self.arrived.set()

    @property
    def lines(self) -> set[str]:
        return {line for payload in self.notifications for line in payload.split("\n")}

    async def until_named(self, *lines: str) -> None:
        while not self.lines.issuperset(lines):
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), timeout=5)


@asynccontextmanager
async def listening(database_url: str) -> AsyncIterator[Listener]:
    listener = Listener()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.add_listener(EVENTS_CHANNEL, listener)
        yield listener
    finally:
        await conn.close()


@asynccontextmanager
async def running(notifier: Notifier) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(notifier.run())
    await asyncio.sleep(0)  # it has started
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def create(store: EventStore, order_id: str, conn: asyncpg.Connection | None = None) -> None:
    command_id = uuid4()
    events = [OrderCreated(order_id, "customer-1", "EUR")]
    await store.append(
        order_id, 0, events, command_id, Metadata(command_id=str(command_id)), fold(events), conn=conn
    )


async def test_a_burst_of_appends_is_notified_in_one_notify_each_stream_with_its_version(
    pool: asyncpg.Pool, database_url: str
) -> None:
    # Lingering for a minute: only the end of the burst (no append left in flight) sends.
    notifier = Notifier(pool, linger=60)
    store = EventStore(pool, notifier=notifier)
    order_ids = [f"order-{uuid4()}" for _ in range(16)]

    async with listening(database_url) as listener, running(notifier):
        await asyncio.gather(*(create(store, order_id) for order_id in order_ids))
        await listener.until_named(*(f"{order_id} 1" for order_id in order_ids))

    # The first append was alone in flight and notified in its own statement; the other
    # fifteen, one NOTIFY after the last of them committed (a Notifier stopped before it knew
    # that one had gone out sends it again as it stops: a second wake-up, never a lost one).
    assert len(set(listener.notifications)) == 2
    assert listener.lines == {f"{order_id} 1" for order_id in order_ids}


async def test_what_is_pending_when_the_notifier_stops_is_sent_before_it_ends(
    pool: asyncpg.Pool, database_url: str
) -> None:
    notifier = Notifier(pool, linger=60)
    async with listening(database_url) as listener:
        async with running(notifier):
            notifier.appended("order-a", 3)  # an append committed, others still in flight
            notifier.appended("order-b", 1)
            notifier.appended("order-a", 2)  # a racing append of the same stream, behind
        await listener.until_named("order-a 3", "order-b 1")

    assert listener.lines == {"order-a 3", "order-b 1"}


async def test_an_append_that_ends_after_the_notifier_stopped_notifies_for_itself(
    pool: asyncpg.Pool, database_url: str
) -> None:
    notifier = Notifier(pool, linger=60)
    store = EventStore(pool, notifier=notifier)
    first, second = f"order-{uuid4()}", f"order-{uuid4()}"
    blocker = await asyncpg.connect(database_url)
    try:
        async with listening(database_url) as listener:
            async with running(notifier):
                # Both appends wait for the read model, so both are in flight at once: the
                # second leaves its NOTIFY to the Notifier.
                holding = blocker.transaction()
                await holding.start()
                await blocker.execute("LOCK TABLE order_read_model IN EXCLUSIVE MODE")
                appends = asyncio.gather(create(store, first), create(store, second))
                while await blocker.fetchval(_WAITING_FOR_THE_LOCK) < 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            assert not notifier.running
            await holding.rollback()
            await appends
            await listener.until_named(f"{first} 1", f"{second} 1")
    finally:
        await blocker.close()


_WAITING_FOR_THE_LOCK = """
SELECT count(*) FROM pg_locks WHERE relation = 'order_read_model'::regclass AND NOT granted
"""


async def test_an_append_in_the_callers_transaction_notifies_when_it_commits(
    pool: asyncpg.Pool, database_url: str
) -> None:
    notifier = Notifier(pool, linger=60)
    store = EventStore(pool, notifier=notifier)
    other, ours = f"order-{uuid4()}", f"order-{uuid4()}"
    blocker = await asyncpg.connect(database_url)
    try:
        async with listening(database_url) as listener, running(notifier):
            # Another append of the store in flight (held on the read model's lock) while
            # ours runs in a transaction of its own: ours must not be left to the Notifier,
            # which would wake listeners before that transaction commits.
            holding = blocker.transaction()
            await holding.start()
            await blocker.execute("LOCK TABLE order_read_model IN EXCLUSIVE MODE")
            elsewhere = asyncio.ensure_future(create(store, other))
            while await blocker.fetchval(_WAITING_FOR_THE_LOCK) < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            async with pool.acquire() as conn:
                transaction = conn.transaction()
                await transaction.start()
                appending = asyncio.ensure_future(create(store, ours, conn))
                while await blocker.fetchval(_WAITING_FOR_THE_LOCK) < 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                await holding.rollback()
                await asyncio.gather(elsewhere, appending)
                await listener.until_named(f"{other} 1")
                await asyncio.sleep(0.05)  # time for a NOTIFY sent too early to arrive
                assert f"{ours} 1" not in listener.lines
                await transaction.commit()
            await listener.until_named(f"{ours} 1")
    finally:
        await blocker.close()


def test_a_long_list_of_streams_is_split_into_payloads_under_the_limit() -> None:
    heads = {f"order-{uuid4()}-{'x' * i}": i for i in range(400)}

    sent = payloads(heads)

    assert len(sent) > 1
    assert all(len(payload.encode()) < 8000 for payload in sent)
    assert [line for payload in sent for line in payload.split("\n")] == [
        f"{stream} {version}" for stream, version in heads.items()
    ]


async def test_the_live_feed_tells_its_watchers_every_stream_of_a_notification(pool: asyncpg.Pool) -> None:
    feed = LiveFeed("unused", pool)
    seen: list[str] = []
    feed.watchers.append(seen.append)

    feed._notified(None, 1, EVENTS_CHANNEL, "order-1 4\ncustomer:Bea Benchmark 2")
    feed._notified(None, 1, EVENTS_CHANNEL, "order-2 1")

    assert seen == ["order-1", "customer:Bea Benchmark", "order-2"]
