"""Idempotency keys: which request a key belongs to, and the answer it got.

A key is claimed with the fingerprint of its request before the command runs,
so two different requests can never both run under one key. The answer is
recorded afterwards as bytes the caller encodes (the store never reads them);
a claim without one (the first attempt failed or is still running) lets the
same request run again, which the command id makes harmless.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import msgspec

# How long a key is remembered. A retry is a matter of seconds or minutes; a day
# is what payment APIs keep. After it, the key's command id (made from the key
# and the request) still keeps a retried request from writing twice.
KEEP_KEYS = timedelta(hours=24)


class Claim(msgspec.Struct, frozen=True):
    fingerprint: str
    answer: bytes | None


# Inserting waits for a concurrent claim of the same key to commit, then does
# nothing; that claim is invisible to this statement's snapshot, so the caller
# reads it again with _READ.
_CLAIM = """
WITH claimed AS (
    INSERT INTO idempotency_keys (key, fingerprint) VALUES ($1, $2)
    ON CONFLICT (key) DO NOTHING
    RETURNING fingerprint, answer
)
SELECT fingerprint, answer FROM claimed
UNION ALL
SELECT fingerprint, answer FROM idempotency_keys WHERE key = $1
LIMIT 1
"""

_PURGE = """
DELETE FROM idempotency_keys WHERE key IN (
    SELECT key FROM idempotency_keys WHERE created_at < now() - $1::interval ORDER BY created_at LIMIT $2
)
"""

_READ = "SELECT fingerprint, answer FROM idempotency_keys WHERE key = $1"

# The first answer stays: a concurrent twin of the same request answers the same.
_ANSWER = """
UPDATE idempotency_keys SET answer = $2, answered_at = now()
WHERE key = $1 AND answer IS NULL
"""


class IdempotencyKeys:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def claim(self, key: str, fingerprint: str) -> Claim:
        """Claim `key` for the request with `fingerprint`; return the key's claim as it stands."""
        row = await self.pool.fetchrow(_CLAIM, key, fingerprint)
        if row is None:
            row = await self.pool.fetchrow(_READ, key)
        assert row is not None
        return Claim(row[0], None if row[1] is None else bytes(row[1]))

    async def answer(self, key: str, answer: bytes) -> None:
        """Keep the key's first answer."""
        await self.pool.execute(_ANSWER, key, answer)

    async def purge(self, older_than: timedelta = KEEP_KEYS, batch: int = 1000) -> bool:
        """Forget up to `batch` keys claimed more than `older_than` ago; True if more may be left."""
        status = await self.pool.execute(_PURGE, older_than, batch)
        return int(status.split()[-1]) == batch
