"""What one /metrics scrape costs the database, and what counting a command costs the process.

`uv run python -m bench.metrics_scrape [EVENTS]`: writes EVENTS raw events (default 500,000, in
transactions of 10,000) into a throw-away embedded PostgreSQL, then times the scrape's database
figures (store/metrics.py `database_figures`: every subscription's lag, parked streams and
messages, the horizon) with one subscription at the start of the log and one at its head, and
again with both at the head. Then it times a command's counter and histogram in this process.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

import asyncpg

from store import metrics
from store.database import connect_pool, embedded_postgres
from store.metrics import LAG_COUNT_LIMIT, database_figures
from store.migrations import migrate

_BULK = """
INSERT INTO events (stream_id, version, event_id, type, schema_version, data)
SELECT 'bulk-' || $1 || '-' || g, 1, gen_random_uuid(), 'OrderCreated', 1, '{}'
FROM generate_series(1, $2::int) g
"""
_AT_THE_HEAD = """
UPDATE subscriptions
SET tx_id = (SELECT max(tx_id) FROM events), position = (SELECT max(position) FROM events)
WHERE name = ANY($1)
"""


async def _median_ms(pool: asyncpg.Pool, runs: int = 11) -> float:
    await database_figures(pool)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await database_figures(pool)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def run(url: str, events: int) -> None:
    pool = await connect_pool(url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            for batch in range(0, events, 10_000):
                await conn.execute(_BULK, str(batch), min(10_000, events - batch))
            await conn.execute("INSERT INTO subscriptions (name) VALUES ('behind'), ('current')")
            await conn.execute(_AT_THE_HEAD, ["current"])
            await conn.execute("VACUUM ANALYZE events")
        behind = await _median_ms(pool)
        await pool.execute(_AT_THE_HEAD, ["behind"])
        current = await _median_ms(pool)
    finally:
        await pool.close()
    counted = min(events, LAG_COUNT_LIMIT)
    print(f"scrape, one subscription {events:,} events behind (counts {counted:,}): {behind:.1f} ms (median)")
    print(f"scrape, every subscription at the head: {current:.1f} ms (median)")


def count_a_command() -> float:
    """Microseconds to count one command: its counter and its latency histogram."""
    n = 100_000

    def once() -> None:
        metrics.COMMANDS.labels("AddItem", "accepted").inc()
        metrics.COMMAND_SECONDS.labels("AddItem", "accepted").observe(0.003)

    return timeit.timeit(once, number=n) / n * 1e6


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
    with (
        tempfile.TemporaryDirectory(prefix="orders-bench-") as folder,
        embedded_postgres(Path(folder) / "pg", delete=True) as url,
    ):
        asyncio.run(run(url, events))
    print(f"counting a command (counter + histogram, one process): {count_a_command():.1f} µs")


if __name__ == "__main__":
    main()
