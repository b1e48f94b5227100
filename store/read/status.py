"""Where every read model stands against the head of the log, and who holds each leader's job now,
for the admin page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from store.leader import holder_of
from store.read.projections import PROJECTIONS
from store.read.subscriptions import _lock_key as lock_key
from store.workflows.runners import LEADER_LOOPS, WORKFLOWS, loop_lock_key


class ReadModelStatus(msgspec.Struct, frozen=True):
    name: str
    kind: str
    checkpoint: int
    head: int
    lag_events: int
    lag_seconds: float
    leader: str | None  # the instance that last moved the checkpoint
    events_applied: int
    holder: str | None = None  # the instance that holds the subscription's lock now (None: nobody)
    rebuild_state: str | None = None
    rebuild_done: int = 0
    rebuild_total: int = 0
    rebuild_finished_at: datetime | None = None
    rebuild_error: str | None = None


class JobHolder(msgspec.Struct, frozen=True):
    name: str
    kind: str  # "projection" or "workflow" (subscriptions), or "loop" (a leader loop)
    holder: str | None  # the instance that holds the job's lock now (None: nobody)


# Every job that runs under a leader lock (store/leader.py): name, kind and lock key.
JOBS: tuple[tuple[str, str, str], ...] = (
    *((name, "projection", lock_key(name)) for name in PROJECTIONS),
    *((name, "workflow", lock_key(name)) for name in WORKFLOWS),
    *((name, "loop", loop_lock_key(name)) for name in LEADER_LOOPS),
)


# Lag counts the events after the checkpoint in the subscription's own order.
_SUBSCRIPTION = """
SELECT s.position, s.leader, s.events_applied,
       (SELECT count(*) FROM events e WHERE (e.tx_id, e.position) > (s.tx_id, s.position)),
       coalesce(extract(epoch FROM now() - (
           SELECT min(e.recorded_at) FROM events e WHERE (e.tx_id, e.position) > (s.tx_id, s.position)
       )), 0)
FROM subscriptions s WHERE s.name = $1
"""

# Who holds each subscription's lock now, from PostgreSQL's own lock table: a session advisory
# lock on one bigint (store/leader.py) shows its high half as classid, its low half as objid
# and objsubid 1; its session's application_name names the instance (`orders:<job>@<instance>`).
_HOLDERS = """
SELECT k.name, a.application_name
FROM unnest($1::text[], $2::text[]) AS k(name, key)
JOIN pg_locks l ON l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND ((l.classid::int8 << 32) | l.objid::int8) = hashtext(k.key)::int8
JOIN pg_stat_activity a ON a.pid = l.pid
"""


async def _holders(pool: asyncpg.Pool, jobs: Sequence[tuple[str, str, str]]) -> dict[str, str]:
    """The instance holding each of `jobs` now, by name; a job nobody holds is left out."""
    names, keys = [name for name, _, _ in jobs], [key for _, _, key in jobs]
    return {
        name: holder_of(application_name or "")
        for name, application_name in await pool.fetch(_HOLDERS, names, keys)
    }


async def job_holders(pool: asyncpg.Pool, kinds: frozenset[str] | None = None) -> list[JobHolder]:
    """Every job (of `kinds`, if given) run under a leader lock, in JOBS' order, with the instance
    holding it now."""
    jobs = [job for job in JOBS if kinds is None or job[1] in kinds]
    held = await _holders(pool, jobs)
    return [JobHolder(name, kind, held.get(name)) for name, kind, _ in jobs]


_REBUILDS = "SELECT name, state, events_done, events_total, finished_at, error FROM projection_rebuilds"


async def read_model_status(pool: asyncpg.Pool) -> list[ReadModelStatus]:
    head = await pool.fetchval("SELECT coalesce(max(position), 0) FROM events")
    rebuilds = {row[0]: row for row in await pool.fetch(_REBUILDS)}
    holders = await _holders(pool, [job for job in JOBS if job[1] == "projection"])

    def rebuild(name: str) -> dict[str, Any]:
        row = rebuilds.get(name)
        if row is None:
            return {}
        return {
            "rebuild_state": row[1],
            "rebuild_done": row[2],
            "rebuild_total": row[3],
            "rebuild_finished_at": row[4],
            "rebuild_error": row[5],
        }

    statuses = [
        # Kept in the append statement itself: always at the head.
        ReadModelStatus(
            "order_read_model", "inline", head, head, 0, 0.0, None, head, **rebuild("order_read_model")
        ),
    ]
    for name in PROJECTIONS:
        row = await pool.fetchrow(_SUBSCRIPTION, name)
        position, leader, applied, lag, seconds = row if row is not None else (0, None, 0, head, 0.0)
        statuses.append(
            ReadModelStatus(
                *(name, "subscription", position, head, lag, float(seconds), leader, applied),
                holder=holders.get(name),
                **rebuild(name),
            )
        )
    return statuses
