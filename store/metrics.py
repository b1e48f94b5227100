"""What the service counts for Prometheus: the metric objects, and the figures read at scrape time.

Counters, histograms and gauges are prometheus-client objects, counted where
the work happens (the application layer, the command handler, the sign-in
page, the live streams). Under several uvicorn workers prometheus-client
keeps them in files of a shared folder (its multiprocess mode): counters and
histograms add up across workers, and the gauges say how (`livesum`: the
sum over the workers alive). What the database knows (each subscription's
lag, parked streams and messages, the horizon) is read once per scrape by
`database_figures`, so it costs nothing between scrapes; the read replicas'
standing is what the process's last look at them found (`replica_figures`).
prometheus-client does no I/O to PostgreSQL; the queries here are the store's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import asyncpg
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from store.database import UNAVAILABLE
from store.horizon import horizon

# Seconds: from a millisecond to ten seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

COMMANDS = Counter(
    "orders_commands",
    "Commands handled, by type and outcome: accepted, repeated (a command id seen before: nothing "
    "written), the refusal's kind (invalid, conflict, not_found, stale, forbidden), or error.",
    ["command", "outcome"],
)
COMMAND_SECONDS = Histogram(
    "orders_command_seconds",
    "Time to handle a command (authorize, load, decide, append), by type and outcome.",
    ["command", "outcome"],
    buckets=LATENCY_BUCKETS,
)
APPENDS = Counter(
    "orders_appends",
    "Appends to the event log: written, repeated (the command id was there), or conflict (the "
    "stream moved on: decided again or refused).",
    ["outcome"],
)
APPEND_SECONDS = Histogram(
    "orders_append_seconds", "Time of one append statement (one round trip).", buckets=LATENCY_BUCKETS
)
EVENTS_APPENDED = Counter("orders_events_appended", "Events written by appends.")
SIGN_INS = Counter(
    "orders_sign_ins", "Sign-ins through the page: signed_in, failed, or throttled.", ["outcome"]
)
SSE_CLIENTS = Gauge("orders_sse_clients", "Server-sent event streams open now.", multiprocess_mode="livesum")
POOL_CONNECTIONS = Gauge(
    "orders_db_pool_connections",
    "The app's pooled PostgreSQL connections: open now, busy (in use) now, and the most it may open.",
    ["state"],
    multiprocess_mode="livesum",
)
# Each (command, outcome)'s counter and histogram, resolved once: `labels` takes a lock and
# builds its key on every call, and a command is counted on every request that writes.
_COMMAND_CHILDREN: dict[tuple[str, str], tuple[Counter, Histogram]] = {}


def command_handled(command: str, outcome: str, seconds: float) -> None:
    """Count one command handled, and how long it took."""
    children = _COMMAND_CHILDREN.get((command, outcome))
    if children is None:
        children = COMMANDS.labels(command, outcome), COMMAND_SECONDS.labels(command, outcome)
        _COMMAND_CHILDREN[(command, outcome)] = children
    children[0].inc()
    children[1].observe(seconds)


_APPEND_CHILDREN: dict[str, Counter] = {}


def append_done(outcome: str) -> None:
    """Count one append statement's outcome."""
    child = _APPEND_CHILDREN.get(outcome)
    if child is None:
        child = _APPEND_CHILDREN[outcome] = APPENDS.labels(outcome)
    child.inc()


class ReplicaStanding(Protocol):
    """A read replica as the last look at it found it (store/replicas.Replica)."""

    @property
    def name(self) -> str: ...

    answering: bool
    usable: bool
    lag_seconds: float | None


def replica_figures(replicas: Iterable[ReplicaStanding]) -> list[Metric]:
    """The read replicas as this process's last look (a second ago at most) found them.

    Built at each scrape from that look, not kept in gauges: a replica that stopped answering
    has no lag to report, and a gauge would go on saying the last one it was given.
    """
    up = GaugeMetricFamily(
        "orders_replica_up", "1 when the last look reached the read replica as a standby.", labels=["replica"]
    )
    in_use = GaugeMetricFamily(
        "orders_replica_in_use", "1 when reads go to the read replica (not skipped).", labels=["replica"]
    )
    lag = GaugeMetricFamily(
        "orders_replica_lag_seconds",
        "How far the read replica's replay is behind the primary; no sample while that is unknown "
        "(the replica or the primary not answering).",
        labels=["replica"],
    )
    for replica in replicas:
        up.add_metric([replica.name], int(replica.answering))
        in_use.add_metric([replica.name], int(replica.usable))
        if replica.answering and replica.lag_seconds is not None:
            lag.add_metric([replica.name], replica.lag_seconds)
    return [up, in_use, lag]


# A scrape counts at most this many events behind a subscription, through the (tx_id, position)
# index: a subscription that far behind shows this number, and the scrape stays cheap.
LAG_COUNT_LIMIT = 100_000

_SUBSCRIPTION_LAG = """
SELECT s.name,
       (SELECT count(*) FROM (
            SELECT FROM events e WHERE (e.tx_id, e.position) > (s.tx_id, s.position) LIMIT $1
        ) AS behind),
       coalesce(extract(epoch FROM now() - (
            SELECT e.recorded_at FROM events e WHERE (e.tx_id, e.position) > (s.tx_id, s.position)
            ORDER BY e.tx_id, e.position LIMIT 1
       )), 0)::float8
FROM subscriptions s ORDER BY s.name
"""

_PARKED_STREAMS = "SELECT subscription, count(*) FROM parked_streams GROUP BY subscription ORDER BY 1"

_PARKED_MESSAGES = "SELECT count(*) FROM outbox WHERE state = 'parked'"


def pool_in_use(pool: asyncpg.Pool) -> None:
    """Record how many of `pool`'s connections are open and busy now."""
    size = pool.get_size()
    POOL_CONNECTIONS.labels("open").set(size)
    POOL_CONNECTIONS.labels("busy").set(size - pool.get_idle_size())
    POOL_CONNECTIONS.labels("max").set(pool.get_max_size())


async def database_figures(pool: asyncpg.Pool, *, timeout: float = 5.0) -> list[Metric]:
    """What the database says now, as metric families; `orders_database_up` 0 when it does not answer."""
    up = GaugeMetricFamily("orders_database_up", "1 when the database answered this scrape's queries.")
    try:
        figures = await _read(pool, timeout)
    except (TimeoutError, *UNAVAILABLE):
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    return [up, *figures]


async def _read(pool: asyncpg.Pool, timeout: float) -> list[Metric]:
    lag_events = GaugeMetricFamily(
        "orders_subscription_lag_events",
        f"Committed events after each subscription's checkpoint (counted up to {LAG_COUNT_LIMIT}).",
        labels=["subscription"],
    )
    lag_seconds = GaugeMetricFamily(
        "orders_subscription_lag_seconds",
        "Age of the first event a subscription has not applied yet (0 when it is at the head).",
        labels=["subscription"],
    )
    parked = GaugeMetricFamily(
        "orders_parked_streams", "Orders' streams parked, by subscription.", labels=["subscription"]
    )
    async with pool.acquire() as conn:
        for name, events, seconds in await conn.fetch(_SUBSCRIPTION_LAG, LAG_COUNT_LIMIT, timeout=timeout):
            lag_events.add_metric([name], events)
            lag_seconds.add_metric([name], seconds)
        for subscription, count in await conn.fetch(_PARKED_STREAMS, timeout=timeout):
            parked.add_metric([subscription], count)
        messages = await conn.fetchval(_PARKED_MESSAGES, timeout=timeout)
    held = await horizon(pool, warning_after=0.0, timeout=timeout)
    return [
        lag_events,
        lag_seconds,
        parked,
        _gauge("orders_parked_messages", "Outbox messages parked after their tries.", messages),
        _gauge(
            "orders_horizon_lag_events",
            "Committed events no catch-up reader can see yet (at or above the horizon).",
            held.lag_events,
        ),
        _gauge(
            "orders_horizon_lag_seconds", "Age of the oldest of those events (0 when none).", held.lag_seconds
        ),
    ]


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
