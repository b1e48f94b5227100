"""5c. Replay: rebuild customer_summaries from the log beside a raw scan of the columns it reads."""

from __future__ import annotations

import time

from bench.lab import Lab, Sample, TrialGroup
from bench.profiles import InProcessProfile
from bench.read_side_data import bulk_orders
from bench.results import Row, Target, values
from store.database import connect_pool
from store.read.replay import rebuild

EVENTS = 200_000
QUICK_EVENTS = 10_000
REPLAY = "rebuild customer_summaries"
SCAN = "raw cursor scan of the columns replay reads"

# What store/read/log_reader reads, in the log's order, through the same kind of cursor.
NARROW_SCAN = (
    "SELECT stream_id, version, type, schema_version, data::text, recorded_at, tx_id::text, position "
    "FROM events ORDER BY position"
)

WHY = (
    "The rebuild reads the same rows through one cursor on a connection of its own, so the "
    "cursor's share (asyncpg making the records) is the scan's; on top of it, per event, the "
    "body is decoded with msgspec into the domain's event and linked to its order's event before "
    "it in the batch; each order's events in a batch are folded at once (the domain's fold keeps "
    "the lines by SKU and makes one Order at the end; an order seen once is evolved), and per "
    "order the row is made (the state encoded as JSON) and sent by COPY, for orders gone quiet "
    "while folding goes on. The client is the bottleneck: its CPU per event is about twice the "
    "scan's (python -m bench.client_cpu); what is left is mostly decoding, the fold and the rows."
)


def replay_and_scan(lab: Lab, events: int) -> TrialGroup:
    """One database of `events` events; each round scans it, then rebuilds from it."""

    async def group(profile: bool) -> dict[str, Sample]:
        async with lab.database() as url:
            pool = await connect_pool(url, min_size=2, max_size=4)
            try:
                written = await bulk_orders(pool, events // 10)
                await pool.execute("VACUUM ANALYZE events")
                await lab.checkpoint()
                started = time.perf_counter()
                async with pool.acquire() as conn, conn.transaction(readonly=True):
                    scanned = 0
                    async for _ in conn.cursor(NARROW_SCAN, prefetch=2000):
                        scanned += 1
                scan = scanned / (time.perf_counter() - started)
                await lab.checkpoint()
                started = time.perf_counter()
                with InProcessProfile(profile) as profiler:
                    replayed = await rebuild(pool, "customer_summaries")
                replay = replayed / (time.perf_counter() - started)
                assert scanned == replayed == written
            finally:
                await pool.close()
        return {REPLAY: Sample(replay, profile=profiler.text), SCAN: Sample(scan)}

    return group


async def run(lab: Lab) -> list[Row]:
    events = QUICK_EVENTS if lab.settings.quick else EVENTS
    print(f"5. Replay {events:,} events into customer_summaries", flush=True)
    group = replay_and_scan(lab, events)
    samples = await lab.alternate({"replay": group})
    row = Row(
        "5c",
        f"Replay {events:,} events into a read model",
        REPLAY,
        "events/s",
        values(samples[REPLAY]),
        SCAN,
        values(samples[SCAN]),
        Target("at_least", 0.5),
    )
    if row.verdict == "MISSED":
        row.why = WHY
        if lab.wants_profile("in process"):
            print("    5c missed its target; profiling the rebuild", flush=True)
            row.profile = (await group(True))[REPLAY].profile
        else:
            row.profile = "(not profiled in a quick run: one profile of each kind only)"
    return [row]
