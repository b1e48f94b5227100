"""1. Append: EventStore.append of a 5-event command beside a raw one-statement unnest INSERT."""

from __future__ import annotations

from uuid import uuid4

from bench import workload
from bench.lab import Lab, Sample, Trial, app_store, raw_pool
from bench.pgbench import append_script, bare_script, pgbench_path, pgbench_trial
from bench.results import Row, Target, explain, values
from domain.order import fold

TASKS = (1, 16)

# The physical limit: the same five rows in one statement, with nothing else around them.
RAW_APPEND = """
INSERT INTO events (stream_id, version, event_id, type, schema_version, data, metadata)
SELECT $1, e.n, e.event_id, e.type, e.schema_version, e.data::jsonb, $6::jsonb
FROM unnest($2::uuid[], $3::text[], $4::smallint[], $5::text[])
     WITH ORDINALITY AS e(event_id, type, schema_version, data, n)
"""

# Two variants of the store's append, to read the gap by (no target): as it was before
# web/app.py gave it a Notifier, and on a pool that sends asyncpg's default reset query on
# every release, as store.database.connect_pool did before.
IN_STATEMENT = "EventStore.append, NOTIFY in its statement (no Notifier)"
DEFAULT_RESET = "EventStore.append on a pool with asyncpg's default reset query"
RAW = "raw unnest INSERT"
PG_APPEND = "the append statement in pgbench"
PG_BARE = "the bare unnest INSERT in pgbench"
# The read-model row handle() passes with a placed order; only its figures matter here.
PLACED = fold(workload.order_events(workload.new_order_id()))

RESET = (
    "store.database.connect_pool no longer lets asyncpg send `SELECT pg_advisory_unlock_all(); "
    "CLOSE ALL; UNLISTEN *; RESET ALL` after every statement; the '' row is the append on a "
    "pool with that reset query, a second round trip whenever a connection goes back to it "
    "(for every statement before appends kept their connection between them)."
)
WHY_ONE_TASK = (
    "The -sql row is PostgreSQL alone: pgbench runs the append statement and the bare INSERT "
    "with the same parameters, so its ratio is what the guarantees cost on the server (the "
    "stream head lookup, the hash chain, a `commands` row with its unique index, the read-model "
    "upsert with three indexes, more WAL). With one task each append is one statement and one "
    "commit, so that cost is on the append's path in full. On the client, beside the raw "
    "INSERT, the append binds 12 parameters and encodes the events and metadata with msgspec "
    "(the event ids are made in the statement), but takes no connection from the pool: the "
    "one the previous append left is still its own (store.database.BurstConnections keeps it "
    "to the end of the loop's turn), where the raw INSERT acquires and releases one each time. "
    "An append alone in flight NOTIFYs in its own statement (no second statement for the "
    "Notifier), as the ' row always does. "
    f"{RESET}"
)
WHY_MANY_TASKS = (
    "The -sql row is PostgreSQL alone (pgbench, the same statement and parameters): the "
    "guarantees cost that much on the server before any Python. The -py row is the append "
    "against that statement in pgbench, the part the client adds. The Notifier takes NOTIFY "
    "out of the append's transaction, so commits no longer queue on the lock a NOTIFY holds "
    "through its commit whenever other appends of the process are in flight (the ' row has the "
    "NOTIFY in every statement; its backends wait in `Lock: object`), and waits for the appends "
    "in flight (at most 5 ms) so that a burst shares one NOTIFY. An append that ends leaves its "
    "connection to the next one to start (store.database.BurstConnections) instead of releasing "
    f"it to the pool and acquiring another, as the raw INSERT does. {RESET}"
)


def store_append(lab: Lab, tasks: int, *, notifier: bool = True, default_reset: bool = False) -> Trial:
    async def trial(profile: bool) -> Sample:
        async with (
            lab.database() as url,
            app_store(url, tasks + 1, notifier=notifier, default_reset=default_reset) as store,
        ):

            async def append() -> int:
                order_id = workload.new_order_id()
                command_id = uuid4()
                events = workload.order_events(order_id)
                await store.append(order_id, 0, events, command_id, workload.metadata(command_id), PLACED)
                return 1

            return await lab.rate(append, tasks, profile=profile)

    return trial


def raw_append(lab: Lab, tasks: int) -> Trial:
    async def trial(profile: bool) -> Sample:
        async with lab.database() as url:
            pool = await raw_pool(url, tasks)

            async def append() -> int:
                order_id = workload.new_order_id()
                await pool.execute(
                    RAW_APPEND,
                    order_id,
                    [uuid4() for _ in range(5)],
                    workload.EVENT_TYPES,
                    workload.SCHEMA_VERSIONS,
                    workload.event_bodies(order_id),
                    workload.metadata_json(uuid4()),
                )
                return 1

            try:
                return await lab.rate(append, tasks, profile=profile)
            finally:
                await pool.close()

    return trial


async def run(lab: Lab) -> list[Row]:
    rows = []
    pgbench = pgbench_path()
    if pgbench is None:
        print("1. pgbench not found: its rows are skipped", flush=True)
    for tasks in TASKS:
        test = f"Append 5 events, {tasks} task{'s' if tasks > 1 else ''}"
        print(f"1. {test}", flush=True)
        subject = store_append(lab, tasks)
        trials = {"EventStore.append": subject, RAW: raw_append(lab, tasks)}
        if pgbench is not None:
            trials[PG_APPEND] = pgbench_trial(lab, pgbench, append_script(tasks), tasks)
            trials[PG_BARE] = pgbench_trial(lab, pgbench, bare_script(RAW_APPEND), tasks)
        if not lab.settings.quick:
            trials[IN_STATEMENT] = store_append(lab, tasks, notifier=False)
            trials[DEFAULT_RESET] = store_append(lab, tasks, default_reset=True)
        samples = await lab.alternate(trials)
        raw = values(samples[RAW])
        key = "1a" if tasks == 1 else "1b"
        appends = values(samples["EventStore.append"])
        row = Row(
            key,
            test,
            "EventStore.append (read-model row, Notifier)",
            "appends/s",
            appends,
            RAW,
            raw,
            Target("at_least", 0.9 if tasks == 1 else 0.75),
        )
        await explain(lab, row, subject, WHY_ONE_TASK if tasks == 1 else WHY_MANY_TASKS)
        rows.append(row)
        for suffix, variant in (("'", IN_STATEMENT), ("''", DEFAULT_RESET)):
            if variant in samples:
                rows.append(Row(key + suffix, test, variant, "appends/s", values(samples[variant]), RAW, raw))
        if pgbench is not None:
            statement, bare = values(samples[PG_APPEND]), values(samples[PG_BARE])
            # What the guarantees cost in PostgreSQL alone, and what the Python side adds to each.
            rows.append(Row(key + "-sql", test, PG_APPEND, "appends/s", statement, PG_BARE, bare))
            python = Row(
                key + "-py",
                test,
                "EventStore.append",
                "appends/s",
                appends,
                PG_APPEND,
                statement,
                Target("at_least", 0.9) if tasks > 1 else None,
            )
            rows.append(python)
            rows.append(Row(key + "-raw", test, RAW, "appends/s", raw, PG_BARE, bare))
    return rows
