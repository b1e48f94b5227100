"""The one-time set-up link: with no admin account, `orders serve` makes one; it creates the first admin."""

from __future__ import annotations

import secrets
from uuid import uuid4

import asyncpg

from store.access.accounts import Account, account_row, hash_password
from store.access.sessions import digest

_ADMINS = "SELECT count(*) FROM accounts WHERE role = 'admin'"
_MAKE = "INSERT INTO setup_tokens (token_hash) VALUES ($1)"
_VALID = """
SELECT EXISTS (SELECT FROM setup_tokens WHERE token_hash = $1)
   AND NOT EXISTS (SELECT FROM accounts WHERE role = 'admin')
"""
# One statement: a valid link retires every link and makes the admin. Of two racing
# uses, the second finds the links already deleted (row locks) and makes nobody.
_FIRST_ADMIN = """
WITH used AS (
    DELETE FROM setup_tokens
    WHERE EXISTS (SELECT FROM setup_tokens WHERE token_hash = $1)
      AND NOT EXISTS (SELECT FROM accounts WHERE role = 'admin')
    RETURNING token_hash
)
INSERT INTO accounts (account_id, name, role, password_hash)
SELECT $2, $3, 'admin', $4 WHERE EXISTS (SELECT FROM used WHERE token_hash = $1)
ON CONFLICT (name) DO NOTHING
RETURNING account_id, name, role, customer_id, disabled_at, created_at
"""


class SetupLinks:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def make_if_needed(self) -> str | None:
        """A new set-up token when no admin exists; None when one does."""
        if await self.pool.fetchval(_ADMINS):
            return None
        token = secrets.token_urlsafe(24)
        await self.pool.execute(_MAKE, digest(token))
        return token

    async def valid(self, token: str) -> bool:
        return 0 < len(token) < 100 and bool(await self.pool.fetchval(_VALID, digest(token)))

    async def first_admin(self, token: str, name: str, password: str) -> Account | None:
        """The first admin, made through the link `token`; None if the link is used or no link."""
        if not 0 < len(token) < 100:
            return None
        row = await self.pool.fetchrow(
            _FIRST_ADMIN, digest(token), uuid4(), name, await hash_password(password)
        )
        return None if row is None else account_row(row)
