"""Who is asking, while the primary is down: sessions and tokens read from a replica, never written.

Sessions and tokens live on the primary: a session's check also writes (its
`last_seen_at`), and sign-ins, sign-outs and revocations are writes. Only when
the primary does not answer are they looked up on a replica (store/replicas.py),
read-only, so that reads go on; commands fail on the primary anyway. The price:
a sign-out or a revocation made in the replica's lag before the outage may not
be seen until the primary is back.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from domain.access import Actor
from store.access.sessions import Sessions, digest
from store.access.tokens import Tokens
from store.database import UNAVAILABLE
from store.replicas import Replicas

# The check of store/access/sessions.py without its write of last_seen_at.
_ALIVE = """
SELECT a.account_id, a.name, a.role, a.customer_id
FROM sessions s JOIN accounts a USING (account_id)
WHERE s.id_hash = $1 AND s.expires_at > now() AND s.last_seen_at > now() - $2::interval
  AND a.disabled_at IS NULL
"""
_BEARER = (
    "SELECT token_id, name, role, customer_id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
)


class SessionsOrStandby(Sessions):
    def __init__(
        self, pool: asyncpg.Pool, replicas: Replicas, *, idle: timedelta, absolute: timedelta
    ) -> None:
        super().__init__(pool, idle=idle, absolute=absolute)
        self.replicas = replicas

    async def resume(self, session_id: str) -> Actor | None:
        try:
            return await super().resume(session_id)
        except UNAVAILABLE:
            standby = self.replicas.any_usable()
            if standby is None or not session_id or len(session_id) > 100:
                raise
            row = await standby.fetchrow(_ALIVE, digest(session_id), self.idle)
            return None if row is None else Actor(str(row[0]), row[1], row[2], row[3])


class TokensOrStandby(Tokens):
    def __init__(self, pool: asyncpg.Pool, replicas: Replicas) -> None:
        super().__init__(pool)
        self.replicas = replicas

    async def actor(self, secret: str) -> Actor | None:
        try:
            return await super().actor(secret)
        except UNAVAILABLE:
            standby = self.replicas.any_usable()
            if standby is None:
                raise
            row = await standby.fetchrow(_BEARER, digest(secret))
            return None if row is None else Actor(f"token:{row[0]}", row[1], row[2], row[3])
