"""2. Commands in process: the order workflow through Orders.execute, beside two baselines.

(a) the physical limit: one raw single-row INSERT per command (no read, no checks);
(b) the `eventsourcing` library: one repository get and one save per command.
"""

from __future__ import annotations

import importlib.util
import statistics
from datetime import UTC, datetime
from uuid import uuid4

from bench import workload
from bench.lab import Lab, Sample, Trial, app_orders, raw_pool
from bench.results import Row, Target, explain, values
from store.application import Envelope

TASKS = (1, 16)
COMMANDS_PER_ORDER = 5

RAW_INSERT = """
INSERT INTO events (stream_id, version, event_id, type, schema_version, data, metadata)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb)
"""

WHY_RAW = (
    "A command here is one statement, as the baseline's: the process decides on the state it "
    "last appended to the stream (EventStore.recent), so it reads the stream only when another "
    "process wrote it last or a decision on that state was refused. What is left is the append "
    "statement itself, which does more than a one-row INSERT (see 1a: the command row, the "
    "hash chain, the read-model upsert and fifteen parameters to encode), and the Python work "
    "of each command (decide, fold, metadata) on a client that shares two cores with the "
    "server."
)
WHY_LIBRARY = (
    "Both sides commit once per command with synchronous_commit on, so a commit's WAL flush sets "
    "a floor under both. In this run the physical limit (one raw INSERT per command) is "
    "{limit:.1f}x the library's orders/s, so {target:g}x is {reach} with one commit per command. "
    "The library's save takes LOCK TABLE ... IN EXCLUSIVE MODE (its notification-log ordering) "
    "and NOTIFYs inside its transaction, which serialises its writers at 16 threads; ours no "
    "longer does (the Notifier), and each of our commands is one statement when the process "
    "wrote the stream last (see 2b). At 16 tasks the client process is the bottleneck: the "
    "append's parameters and its Python work per command (see 2b)."
)


def eventsourcing_available() -> bool:
    return importlib.util.find_spec("eventsourcing") is not None


def via_handler(lab: Lab, tasks: int) -> Trial:
    async def trial(profile: bool) -> Sample:
        async with lab.database() as url, app_orders(url, tasks + 1) as orders:

            async def order_workflow() -> int:
                for command in workload.order_commands(workload.new_order_id()):
                    await orders.execute(command, Envelope(uuid4(), requested_at=datetime.now(UTC)))
                return COMMANDS_PER_ORDER

            return await lab.rate(order_workflow, tasks, profile=profile)

    return trial


def raw_inserts(lab: Lab, tasks: int) -> Trial:
    async def trial(profile: bool) -> Sample:
        async with lab.database() as url:
            pool = await raw_pool(url, tasks)

            async def order_workflow() -> int:
                order_id = workload.new_order_id()
                bodies = workload.event_bodies(order_id)
                for version in range(1, COMMANDS_PER_ORDER + 1):
                    await pool.execute(
                        RAW_INSERT,
                        order_id,
                        version,
                        uuid4(),
                        workload.EVENT_TYPES[version - 1],
                        workload.SCHEMA_VERSIONS[version - 1],
                        bodies[version - 1],
                        workload.metadata_json(uuid4()),
                    )
                return COMMANDS_PER_ORDER

            try:
                return await lab.rate(order_workflow, tasks, profile=profile)
            finally:
                await pool.close()

    return trial


def via_library(lab: Lab, threads: int) -> Trial:
    from bench.es_orders import orders_app

    async def trial(profile: bool) -> Sample:
        async with lab.database(migrated=False) as url:
            app = orders_app(url, pool_size=threads)

            def order_workflow() -> int:
                order_id = app.create_order(workload.CUSTOMER, workload.CURRENCY)
                for sku, name, price, quantity in workload.ITEMS:
                    app.add_item(order_id, sku, name, price, quantity)
                app.place(order_id)
                return COMMANDS_PER_ORDER

            try:
                return await lab.rate_in_threads(order_workflow, threads)
            finally:
                app.close()

    return trial


async def run(lab: Lab, library_rates: dict[int, list[float]]) -> list[Row]:
    """The rows of section 2; the library's orders/s per round go in `library_rates[threads]`."""
    rows = []
    with_library = eventsourcing_available()
    for tasks in TASKS:
        test = f"Order workflow, {tasks} task{'s' if tasks > 1 else ''}"
        print(f"2. {test}", flush=True)
        subject = via_handler(lab, tasks)
        trials = {"handle()": subject, "raw one-row INSERT per command": raw_inserts(lab, tasks)}
        if with_library:
            trials[f"eventsourcing, {tasks} thread{'s' if tasks > 1 else ''}"] = via_library(lab, tasks)
        samples = await lab.alternate(trials)
        commands = values(samples["handle()"])
        key = "2a" if tasks == 1 else "2b"
        row = Row(
            key,
            test,
            "handle()",
            "commands/s",
            commands,
            "raw one-row INSERT per command",
            values(samples["raw one-row INSERT per command"]),
            Target("at_least", 0.5),
        )
        await explain(lab, row, subject, WHY_RAW)
        rows.append(row)
        orders = [value / COMMANDS_PER_ORDER for value in commands]
        library = f"eventsourcing, {tasks} thread{'s' if tasks > 1 else ''}"
        if library in samples:
            library_orders = [value / COMMANDS_PER_ORDER for value in values(samples[library])]
            library_rates[tasks] = library_orders
            row = Row(
                key + "+",
                test,
                "handle()",
                "orders/s",
                orders,
                f"{library} (PostgreSQL)",
                library_orders,
                Target("at_least", 4.0),
            )
            raw_orders = statistics.median(values(samples["raw one-row INSERT per command"]))
            limit = raw_orders / COMMANDS_PER_ORDER / statistics.median(library_orders)
            reach = "within reach" if limit >= 4 else "beyond the physical limit on this machine"
            await explain(lab, row, subject, WHY_LIBRARY.format(limit=limit, target=4.0, reach=reach))
        else:
            row = Row(key + "+", test, "handle() (eventsourcing not installed)", "orders/s", orders)
        rows.append(row)
    return rows
