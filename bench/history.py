"""5. Loading history: read and fold a 100-event stream; rebuild a 1,000-event order with no snapshot."""

from __future__ import annotations

from uuid import uuid4

from bench import workload
from bench.lab import Lab, Sample, Trial, app_store, raw_pool
from bench.results import Row, Target, explain, values
from bench.workflow import eventsourcing_available
from domain.order import Event, ItemAdded, OrderCreated, fold
from store.log.event_store import EventStore

# The rows read_stream reads, as plain asyncpg returns them: no decoding, no fold.
RAW_READ = """
SELECT position, stream_id, version, event_id, type, schema_version, data::text, metadata::text, recorded_at
FROM events WHERE stream_id = $1 ORDER BY version
"""
REBUILD_EVENTS = 1000
REBUILD_SKUS = 50

WHY_READ = (
    "read_events reads only type, schema version and body (the '-row is read_stream, every "
    "column and a RecordedEvent each). The profile's heaviest frames are fold -> evolve -> "
    "Order.line: each ItemAdded looks its SKU "
    "up by a linear scan of the lines tuple and then copies the tuple, so folding n items is "
    "O(n^2) (99 lines here). Then read_stream builds a RecordedEvent per row (a ten-field Struct), "
    "decodes the body and, with a second decoder, the metadata, which a fold never reads. What "
    "would close it: keep lines in a dict (sku -> line) while folding and build the tuple once; "
    "a read path for folding that decodes only type and body."
)
WHY_REBUILD = (
    "The same causes as 5a, grown with the stream: 1,000 evolve calls each scan and copy a "
    "tuple of up to 50 lines, and 1,000 RecordedEvents with their metadata are decoded. The "
    "library applies each event to a mutable aggregate (a dict update) instead. What would close "
    "it: the same dict-while-folding and body-only decoding as 5a, or snapshots (see "
    "docs/architecture.md, Snapshots) so a rebuild folds a bounded tail."
)


def stream_of(count: int) -> tuple[str, list[Event]]:
    """An order of `count` events: created, then items over a few SKUs (every line stays ≤ 999)."""
    order_id = workload.new_order_id()
    skus = min(count - 1, REBUILD_SKUS if count > 100 else 99)
    events: list[Event] = [OrderCreated(order_id, workload.CUSTOMER, workload.CURRENCY)]
    events += [ItemAdded(f"SKU-{i % skus:03d}", f"Item {i % skus}", 350, 1) for i in range(count - 1)]
    return order_id, events


def read_and_fold(lab: Lab, count: int, *, envelopes: bool = False) -> Trial:
    """The store's load path (read_events: the columns a fold reads); `envelopes`: read_stream's."""

    async def trial(profile: bool) -> Sample:
        async with lab.database() as url, app_store(url, 2) as store:
            order_id, events = stream_of(count)
            command_id = uuid4()
            await store.append(order_id, 0, events, command_id, workload.metadata(command_id), fold(events))

            async def load() -> int:
                order = fold(await store.read_events(order_id))
                assert order.version == count
                return 1

            async def load_envelopes() -> int:
                order = fold(e.event for e in await store.read_stream(order_id))
                assert order.version == count
                return 1

            return await lab.rate(load_envelopes if envelopes else load, 1, profile=profile)

    return trial


def raw_read(lab: Lab, count: int) -> Trial:
    async def trial(profile: bool) -> Sample:
        async with lab.database() as url:
            pool = await raw_pool(url, 1)
            order_id, events = stream_of(count)
            command_id = uuid4()
            await EventStore(pool).append(order_id, 0, events, command_id, workload.metadata(command_id))

            async def load() -> int:
                rows = await pool.fetch(RAW_READ, order_id)
                assert len(rows) == count
                return 1

            try:
                return await lab.rate(load, 1, profile=profile)
            finally:
                await pool.close()

    return trial


def library_rebuild(lab: Lab, count: int) -> Trial:
    from bench.es_orders import Order, orders_app

    async def trial(profile: bool) -> Sample:
        async with lab.database(migrated=False) as url:
            app = orders_app(url, pool_size=1)
            _, events = stream_of(count)
            order = Order(workload.CUSTOMER, workload.CURRENCY)
            for event in events[1:]:
                assert isinstance(event, ItemAdded)
                order.add_item(event.sku, event.name, event.unit_price_cents, event.quantity)
            app.save(order)

            def load() -> int:
                assert app.get_order(order.id).version == count
                return 1

            try:
                return await lab.rate_in_threads(load, 1)
            finally:
                app.close()

    return trial


def milliseconds(samples: list[Sample]) -> list[float]:
    return [1000 / sample.value for sample in samples]


async def run(lab: Lab) -> list[Row]:
    print("5. Read and fold a 100-event stream", flush=True)
    subject = read_and_fold(lab, 100)
    trials = {"read_events + fold": subject, "raw asyncpg fetch": raw_read(lab, 100)}
    if not lab.settings.quick:
        trials["read_stream + fold"] = read_and_fold(lab, 100, envelopes=True)
    samples = await lab.alternate(trials)
    raw = values(samples["raw asyncpg fetch"])
    row = Row(
        "5a",
        "Load a 100-event stream",
        "read_events + fold",
        "loads/s",
        values(samples["read_events + fold"]),
        "raw asyncpg fetch of the rows",
        raw,
        Target("at_least", 0.7),
    )
    await explain(lab, row, subject, WHY_READ)
    rows = [row]
    if "read_stream + fold" in samples:
        envelopes = values(samples["read_stream + fold"])
        rows.append(
            Row(
                "5a'",
                "Load a 100-event stream",
                "read_stream + fold",
                "loads/s",
                envelopes,
                "raw asyncpg fetch of the rows",
                raw,
            )
        )

    print(f"5. Rebuild a {REBUILD_EVENTS:,}-event order, no snapshot", flush=True)
    subject = read_and_fold(lab, REBUILD_EVENTS)
    trials = {"read_events + fold": subject}
    if eventsourcing_available():
        trials["eventsourcing repository.get"] = library_rebuild(lab, REBUILD_EVENTS)
    samples = await lab.alternate(trials)
    library = samples.get("eventsourcing repository.get")
    row = Row(
        "5b",
        f"Rebuild a {REBUILD_EVENTS:,}-event order",
        "read_events + fold",
        "ms",
        milliseconds(samples["read_events + fold"]),
        "eventsourcing repository.get" if library else None,
        milliseconds(library) if library else [],
        Target("at_most", 0.5) if library else None,
    )
    await explain(lab, row, subject, WHY_REBUILD)
    rows.append(row)
    return rows
