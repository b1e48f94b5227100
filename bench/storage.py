"""Rows per GB: `uv run --group bench python -m bench.storage [--quick] [--events N]`.

Builds a log of N events (default 200,000) in a throw-away embedded
PostgreSQL through `orders seed --days`'s path (store/seed.py: decided
commands, hash chains, COPY through the import) in calls of 100,000 events,
rebuilding the read models after each as that command does; then runs
`VACUUM (ANALYZE)` and prints what each table takes on disk
(`pg_total_relation_size`: rows, indexes and TOAST), the events table's bytes
per event and events per GiB, and the whole database's. The load's rate is a
side figure: events written per second through that path, Python deciding and
hashing included (not the rate of single appends; bench/append.py measures
those).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import asyncpg

from store.database import connect_pool, embedded_postgres
from store.migrations import migrate
from store.personal import Keyring, MasterKey
from store.read.projections import PROJECTIONS
from store.read.replay import READ_MODELS, rebuild
from store.seed import seed_history

EVENTS_PER_CALL = 100_000
EVENTS_PER_ORDER = 6.5  # about what seed_history's orders have
GIB = 1 << 30
MB = 1e6

_TABLES = """
SELECT c.relname::text, c.reltuples::bigint, pg_relation_size(c.oid), pg_indexes_size(c.oid),
       pg_total_relation_size(c.oid) - pg_relation_size(c.oid) - pg_indexes_size(c.oid),
       pg_total_relation_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'
ORDER BY pg_total_relation_size(c.oid) DESC, c.relname
"""

_PAYLOAD = "SELECT avg(octet_length(data::text) + octet_length(metadata::text))::float8 FROM events"


async def quiet(_done: int, _total: int) -> None:
    return None


async def build(pool: asyncpg.Pool, events: int) -> tuple[int, float]:
    """Write about `events` events through seed_history; the events written and the seconds it took."""
    written, seconds = 0, 0.0
    # As `orders seed --days` run again and again: one master key for every call (a later call
    # opens the keys of the customers an earlier one registered), and the read models rebuilt
    # after each (a later call finds those customers in the customers read model). Only the
    # writing is timed.
    keyring = Keyring(pool, MasterKey.generate())
    while written < events:
        orders = max(1, int(min(EVENTS_PER_CALL, events - written) / EVENTS_PER_ORDER))
        started = time.monotonic()
        written += await seed_history(pool, orders, 365, quiet, keyring=keyring)
        seconds += time.monotonic() - started
        for name in READ_MODELS:
            await rebuild(pool, name)
    return written, seconds


async def run(url: str, events: int) -> None:
    pool = await connect_pool(url, min_size=1, max_size=4)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            settings = await conn.fetch(
                "SELECT name, setting FROM pg_settings WHERE name IN ('server_version', 'fsync', "
                "'synchronous_commit', 'shared_buffers', 'block_size') ORDER BY name"
            )
            empty = await conn.fetchval("SELECT pg_database_size(current_database())")
        print("postgresql: " + ", ".join(f"{name} {value}" for name, value in settings), flush=True)
        written, seconds = await build(pool, events)
        print(
            f"load: {written:,} events in {seconds:.1f} s through the seed --days path, "
            f"{written / seconds:,.0f} events/s (decide, hash, COPY; one transaction per call)",
            flush=True,
        )
        async with pool.acquire() as conn:
            started = time.monotonic()
            await conn.execute("VACUUM (ANALYZE)")
            print(f"VACUUM (ANALYZE) in {time.monotonic() - started:.1f} s", flush=True)
            count = await conn.fetchval("SELECT count(*) FROM events")
            tables = await conn.fetch(_TABLES)
            payload = await conn.fetchval(_PAYLOAD)
            database = await conn.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await pool.close()
    report(count, tables, payload, database, empty)


def report(count: int, tables: list[asyncpg.Record], payload: float, database: int, empty: int) -> None:
    # A projection keeps two tables: its orders' states and its aggregate (store/read/projections.py).
    read_models = set(READ_MODELS) | {table for p in PROJECTIONS.values() for table in p.tables}
    print(
        f"\n{'table':<22} {'rows':>10} {'rows MB':>9} {'index MB':>9} {'toast MB':>9} {'total MB':>9}"
        f" {'B/event':>8}  kind"
    )
    shown = 0
    for name, rows, heap, indexes, toast, total in tables:
        if total < 64 * 1024 and name not in read_models:
            continue  # the empty tables: a page or two each
        shown += 1
        kind = {"events": "the log", "commands": "command ids (the log's)"}.get(name, "")
        kind = kind or ("read model" if name in read_models else "")
        print(
            f"{name:<22} {max(rows, 0):>10,} {heap / MB:9.1f} {indexes / MB:9.1f} {toast / MB:9.1f} "
            f"{total / MB:9.1f} {total / count:8.0f}  {kind}"
        )
    print(f"({len(tables) - shown} other tables under 64 kB each)")
    events_total = next(row[5] for row in tables if row[0] == "events")
    print(
        f"\nevents: {count:,}, data and metadata {payload:.0f} bytes each on average (as text)\n"
        f"events table: {events_total / MB:.1f} MB, {events_total / count:.0f} bytes per event, "
        f"{GIB * count / events_total / 1e6:.2f} million events per GiB\n"
        f"whole database: {database / MB:.1f} MB, {database / count:.0f} bytes per event, "
        f"{GIB * count / database / 1e6:.2f} million events per GiB "
        f"(of which {empty / MB:.1f} MB the migrated database held empty: the catalog)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.storage", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 10,000 events")
    parser.add_argument("--events", type=int, help="events to write (default 200,000; quick 10,000)")
    args = parser.parse_args()
    events = args.events or (10_000 if args.quick else 200_000)
    print(
        f"bench.storage: {events:,} events, load average {os.getloadavg()}, {os.cpu_count()} cores",
        flush=True,
    )
    with (
        tempfile.TemporaryDirectory(prefix="orders-bench-storage-") as folder,
        embedded_postgres(Path(folder) / "pg", delete=True) as url,
    ):
        asyncio.run(run(url, events))
    print(f"bench.storage: load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
