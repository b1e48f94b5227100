"""The sign-in throttle: after repeated failures for one name, or from one client, tries wait.

Counted in the database, so every instance throttles alike.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

# Within WINDOW: NAME_LIMIT failures for one name, or CLIENT_LIMIT from one client, refuse
# further tries until the oldest of them leaves the window.
WINDOW = timedelta(minutes=15)
NAME_LIMIT = 5
CLIENT_LIMIT = 20

_WAIT = """
SELECT greatest(
    (SELECT min(at) + $3::interval - now() FROM (
        SELECT at FROM sign_in_failures WHERE username = $1 AND at > now() - $3::interval
        ORDER BY at DESC LIMIT $4) n HAVING count(*) >= $4),
    (SELECT min(at) + $3::interval - now() FROM (
        SELECT at FROM sign_in_failures WHERE client = $2 AND at > now() - $3::interval
        ORDER BY at DESC LIMIT $5) c HAVING count(*) >= $5)
)
"""
_FAILED = "INSERT INTO sign_in_failures (username, client) VALUES ($1, $2)"


class Throttle:
    def __init__(
        self, pool: asyncpg.Pool, *, name_limit: int = NAME_LIMIT, client_limit: int = CLIENT_LIMIT
    ) -> None:
        self.pool = pool
        self.name_limit = name_limit
        self.client_limit = client_limit

    async def wait(self, username: str, client: str) -> float:
        """Seconds before `username` may try again from `client` (0: now)."""
        wait: timedelta | None = await self.pool.fetchval(
            _WAIT, username, client, WINDOW, self.name_limit, self.client_limit
        )
        return max(0.0, wait.total_seconds()) if wait else 0.0

    async def failed(self, username: str, client: str) -> None:
        await self.pool.execute(_FAILED, username[:200], client)
