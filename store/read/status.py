"""Where every read model stands against the head of the log, for the admin page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from store.read.projections import PROJECTIONS


class ReadModelStatus(msgspec.Struct, frozen=True):
    name: str
    kind: str
    checkpoint: int
    head: int
    lag_events: int
    lag_seconds: float
    leader: str | None
    events_applied: int
    rebuild_state: str | None = None
    rebuild_done: int = 0
    rebuild_total: int = 0
    rebuild_finished_at: datetime | None = None
    rebuild_error: str | None = None


# Lag counts the events after the checkpoint in the subscription's own order.
_SUBSCRIPTION = """
SELECT s.position, s.leader, s.events_applied,
       (SELECT count(*) FROM events e WHERE (e.tx_id, e.position) > (s.tx_id, s.position)),
       coalesce(extract(epoch FROM now() - (
           SELECT min(e.recorded_at) FROM events e WHERE (e.tx_id, e.position) > (s.tx_id, s.position)
       )), 0)
FROM subscriptions s WHERE s.name = $1
"""

_REBUILDS = "SELECT name, state, events_done, events_total, finished_at, error FROM projection_rebuilds"


async def read_model_status(pool: asyncpg.Pool) -> list[ReadModelStatus]:
    head = await pool.fetchval("SELECT coalesce(max(position), 0) FROM events")
    rebuilds = {row[0]: row for row in await pool.fetch(_REBUILDS)}

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
                name, "subscription", position, head, lag, float(seconds), leader, applied, **rebuild(name)
            )
        )
    return statuses
