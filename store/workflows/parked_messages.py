"""Messages the outbox relay gave up on after its tries: list them, retry one, drop one with a reason.

Each retry or drop is written to the parking log (store/read/parking) with
the admin who did it, in the same transaction as the message's new state.
"""

from __future__ import annotations

import asyncpg

from domain.access import Actor, require
from store.read.parking import NotParked, log_entry
from store.workflows.outbox import NOTIFICATION_COLUMNS, OUTBOX_CHANNEL, Notification, notification_from

_PARKED = f"SELECT {NOTIFICATION_COLUMNS} FROM outbox WHERE state = 'parked' ORDER BY id"

# Due at once, and with its tries used up: one more failure parks it again.
_RETRY = f"""
UPDATE outbox SET state = 'pending', next_attempt_at = now(), parked_at = NULL
WHERE id = $1 AND state = 'parked' RETURNING {NOTIFICATION_COLUMNS}
"""

_DROP = f"""
UPDATE outbox SET state = 'dropped' WHERE id = $1 AND state = 'parked' RETURNING {NOTIFICATION_COLUMNS}
"""


class ParkedMessages:
    """Messages the relay gave up on: list them, retry one (after a fix), or drop one with a reason."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def parked(self) -> list[Notification]:
        return [notification_from(row) for row in await self.pool.fetch(_PARKED)]

    async def retry(self, notification_id: int, actor: Actor) -> Notification:
        return await self._resolve(_RETRY, "retried", notification_id, actor, "")

    async def drop(self, notification_id: int, actor: Actor, reason: str) -> Notification:
        return await self._resolve(_DROP, "dropped", notification_id, actor, reason)

    async def _resolve(
        self, statement: str, kind: str, notification_id: int, actor: Actor, reason: str
    ) -> Notification:
        require(actor, "administer")
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(statement, notification_id)
            if row is None:
                raise NotParked(f"Message {notification_id} is not parked.")
            n = notification_from(row)
            await log_entry(
                *(conn, kind, "outbox", n.order_id, actor),
                event_id=n.cause_event_id,
                version=n.cause_version,
                event_type=n.kind,
                notification_id=n.id,
                error=n.last_error or "",
                reason=reason,
            )
            if kind == "retried":
                # Delivered at commit: the relay wakes when the message is due.
                await conn.execute("SELECT pg_notify($1, '')", OUTBOX_CHANNEL)
            return n
