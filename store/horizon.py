"""The horizon catch-up readers stop at: how far it lags behind the head, and who holds it.

Subscriptions, the live feed and replay read only events written by
transactions older than every transaction still running
(`pg_snapshot_xmin(pg_current_snapshot())`, docs/architecture.md, Catch-up
order). A session that keeps a transaction with a transaction id open (it
wrote something, or asked for its id) holds that horizon where it is: events
committed since are in the log but no catch-up reader sees them until it
ends. A transaction that only reads holds no transaction id and does not
hold this horizon (it holds back VACUUM, not the readers).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

from store.database import APPLICATION

# Committed events at or above the horizon: no catch-up reader can see them yet.
# One snapshot for the horizon and the count, so both describe the same moment.
_HELD = """
WITH horizon AS (
    SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin, pg_snapshot_xmax(pg_current_snapshot()) AS xmax
)
SELECT horizon.xmin::text, horizon.xmax::text, held.events, held.first_position,
       coalesce(extract(epoch FROM now() - held.oldest), 0)::float8
FROM horizon, LATERAL (
    SELECT count(*) AS events, min(recorded_at) AS oldest, min(position) AS first_position
    FROM events WHERE tx_id >= horizon.xmin
) AS held
"""

# The transaction whose id is the horizon: a session, or a prepared transaction.
# pg_stat_activity shows pid, user, application name and transaction ids to
# every role; the state, times, address and query only to the same user, a
# superuser or a member of pg_read_all_stats (they are NULL otherwise).
_HOLDER = """
SELECT pid, usename::text, application_name,
       CASE WHEN client_port = -1 THEN 'local socket' ELSE host(client_addr) END,
       state, xact_start, left(query, $2), coalesce(extract(epoch FROM now() - xact_start), 0)::float8
FROM pg_stat_activity WHERE backend_xid = $1::text::xid8::xid
UNION ALL
SELECT NULL, owner::text, 'prepared transaction ' || gid, NULL, 'prepared', prepared, NULL,
       extract(epoch FROM now() - prepared)::float8
FROM pg_prepared_xacts WHERE transaction = $1::text::xid8::xid
LIMIT 1
"""

QUERY_CHARACTERS = 120


class Holder(msgspec.Struct, frozen=True, kw_only=True):
    """The session (or prepared transaction) whose open transaction is the horizon."""

    pid: int | None
    user: str | None
    application_name: str
    client: str | None  # its address, "local socket", or None when not shown to this role
    state: str | None  # "idle in transaction", "active", …
    transaction_started: datetime | None
    open_seconds: float  # how long its transaction has been open (0 when not shown)
    query: str | None  # the first characters of its last query
    ours: bool  # one of this app's connections (application_name "orders:<role>")


class Horizon(msgspec.Struct, frozen=True, kw_only=True):
    """Where catch-up readers stand against the head of the log, and why."""

    xmin: int  # the horizon: the oldest transaction id still running
    next_xid: int  # the next transaction id to be given out
    lag_events: int  # committed events at or above the horizon, which no catch-up reader sees yet
    lag_seconds: float  # age of the oldest of them (0 when there are none)
    first_held_position: int | None  # the lowest position among them
    warning_after: float  # seconds of lag that make it `held`
    held: bool  # lag_seconds has passed warning_after: the readers are stalled
    holder: Holder | None  # who holds it (None when nothing runs, or it has just ended)


async def horizon(pool: asyncpg.Pool, *, warning_after: float, timeout: float = 5.0) -> Horizon:
    """The horizon now; `held` when events have waited past `warning_after` seconds."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(_HELD, timeout=timeout)
        assert row is not None
        xmin, next_xid, events, first_position, seconds = row
        holder = None
        if xmin != next_xid:  # some transaction with an id is running
            found = await conn.fetchrow(_HOLDER, xmin, QUERY_CHARACTERS, timeout=timeout)
            holder = None if found is None else _holder(found)
    return Horizon(
        xmin=int(xmin),
        next_xid=int(next_xid),
        lag_events=events,
        lag_seconds=seconds,
        first_held_position=first_position,
        warning_after=warning_after,
        held=events > 0 and seconds >= warning_after,
        holder=holder,
    )


def _holder(row: asyncpg.Record) -> Holder:
    pid, user, application_name, client, state, started, query, seconds = row
    return Holder(
        pid=pid,
        user=user,
        application_name=application_name or "",
        client=client,
        state=state,
        transaction_started=started,
        open_seconds=seconds,
        query=query,
        ours=(application_name or "").startswith(f"{APPLICATION}:"),
    )
