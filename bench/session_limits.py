"""Does long legitimate work fit the app's server-side limits? Rebuilds, export and verify on a big log.

`uv run python -m bench.session_limits [ORDERS] [SECONDS]`: writes ORDERS orders of 10 events
(default 100,000: 1,000,000 events) into a throw-away embedded PostgreSQL, then rebuilds two read
models, exports the log as NDJSON and runs verify on a pool whose `statement_timeout` and
`idle_in_transaction_session_timeout` are both SECONDS (default 1; the app's default is 60).
Each finishes only if no single statement, and no pause inside a transaction, took longer.
The bulk data has no hash chains, so verify reports every event: it still reads them all.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bench.read_side_data import bulk_orders
from store.database import SessionLimits, connect_pool, embedded_postgres
from store.log.export import export
from store.log.integrity import verify
from store.migrations import migrate
from store.read.replay import rebuild


async def run(url: str, orders: int, seconds: float) -> None:
    unlimited = SessionLimits(statement=3600, idle_in_transaction=3600)
    setup = await connect_pool(url, min_size=1, max_size=2, limits=unlimited)
    async with setup.acquire() as conn:
        await migrate(conn)
    started = time.monotonic()
    events = await bulk_orders(setup, orders)
    print(f"wrote {events:,} events in {time.monotonic() - started:.1f} s")
    await setup.execute("VACUUM ANALYZE events")
    await setup.close()

    limits = SessionLimits(statement=seconds, idle_in_transaction=seconds)
    pool = await connect_pool(url, min_size=1, max_size=4, limits=limits)
    try:
        for name in ("customer_summaries", "order_read_model"):
            started = time.monotonic()
            done = await rebuild(pool, name)
            print(f"rebuild {name}: {done:,} events in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        size = 0
        async for chunk in export(pool, "ndjson"):
            size += len(chunk)
        print(f"export: {size / 1e6:,.0f} MB of NDJSON in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        report = await verify(pool)
        print(f"verify: {report.events:,} events in {time.monotonic() - started:.1f} s")
    finally:
        await pool.close()
    print(f"all within statement and idle-in-transaction limits of {seconds} s")


def main() -> None:
    orders = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    with (
        tempfile.TemporaryDirectory(prefix="orders-limits-") as folder,
        embedded_postgres(Path(folder) / "pg", delete=True) as url,
    ):
        asyncio.run(run(url, orders, seconds))


if __name__ == "__main__":
    main()
