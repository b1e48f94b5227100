"""Server-side sessions: the cookie holds a random id, the table its SHA-256.

Every instance reads the same table, so a sign-out or a disabled account ends
a session everywhere at once. A session ends after `idle` without a request,
or `absolute` after it began, whichever comes first.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import asyncpg

from domain.access import Actor


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


# One round trip per request: the session's account, if the session is alive and
# the account enabled; `last_seen_at` is written at most once a minute per session.
_RESUMED = """
WITH alive AS (
    SELECT a.account_id, a.name, a.role, a.customer_id, s.last_seen_at
    FROM sessions s JOIN accounts a USING (account_id)
    WHERE s.id_hash = $1 AND s.expires_at > now() AND s.last_seen_at > now() - $2::interval
      AND a.disabled_at IS NULL
), touched AS (
    UPDATE sessions SET last_seen_at = now()
    WHERE id_hash = $1 AND last_seen_at < now() - interval '1 minute' AND EXISTS (SELECT FROM alive)
)
SELECT account_id, name, role, customer_id{also} FROM alive
"""
_RESUME = _RESUMED.format(also="")
# The same, and an order page's first question in that round trip: its stream's latest version
# (as store/log/event_store.py's stream_version asks it).
_RESUME_WITH_HEAD = _RESUMED.format(
    also=", (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $3)"
)
_BEGIN = "INSERT INTO sessions (id_hash, account_id, expires_at) VALUES ($1, $2, now() + $3::interval)"
_END = "DELETE FROM sessions WHERE id_hash = $1 RETURNING account_id"
_END_ALL = "DELETE FROM sessions WHERE account_id = $1"
# What housekeeping forgets: sessions past any expiry, failed sign-ins past the throttle's window.
_FORGET = """
WITH gone AS (DELETE FROM sessions WHERE expires_at < now())
DELETE FROM sign_in_failures WHERE at < now() - interval '1 day'
"""


async def forget_expired(pool: asyncpg.Pool) -> bool:
    """Housekeeping (a leader loop): drop expired sessions and day-old failed sign-ins."""
    await pool.execute(_FORGET)
    return False


class Sessions:
    def __init__(self, pool: asyncpg.Pool, *, idle: timedelta, absolute: timedelta) -> None:
        self.pool = pool
        self.idle = idle
        self.absolute = absolute

    async def begin(self, account_id: str) -> str:
        """A new session for the account; its id, for the cookie alone."""
        session_id = secrets.token_urlsafe(32)
        await self.pool.execute(_BEGIN, digest(session_id), account_id, self.absolute)
        return session_id

    async def resume(self, session_id: str) -> Actor | None:
        if not session_id or len(session_id) > 100:
            return None
        row = await self.pool.fetchrow(_RESUME, digest(session_id), self.idle)
        return None if row is None else Actor(str(row[0]), row[1], row[2], row[3])

    async def resume_with_head(self, session_id: str, stream_id: str) -> tuple[Actor | None, int]:
        """`resume`, and the stream's latest version (0: none, or no session) in the same round trip."""
        if not session_id or len(session_id) > 100:
            return None, 0
        row = await self.pool.fetchrow(_RESUME_WITH_HEAD, digest(session_id), self.idle, stream_id)
        return (None, 0) if row is None else (Actor(str(row[0]), row[1], row[2], row[3]), row[4])

    async def end(self, session_id: str) -> None:
        await self.pool.execute(_END, digest(session_id))

    async def end_all(self, account_id: str) -> None:
        """Sign the account out everywhere."""
        await self.pool.execute(_END_ALL, account_id)
