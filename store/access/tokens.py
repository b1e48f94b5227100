"""API tokens of programs: shown once when made, kept only as their SHA-256, revocable."""

from __future__ import annotations

import secrets
from datetime import datetime
from uuid import UUID, uuid4

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from domain.access import Actor, Role, check_binding
from store.access.binding import refuse_forgotten
from store.access.sessions import digest

# A token is recognisable in a leaked log or a secret scanner by its prefix.
PREFIX = "orders_"


class NameTaken(Exception):
    pass


class Token(msgspec.Struct, frozen=True):
    token_id: UUID
    name: str
    role: Role
    customer_id: str | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


_COLUMNS = "token_id, name, role, customer_id, created_by, created_at, revoked_at"
_ADD = f"""
INSERT INTO api_tokens (token_id, name, token_hash, role, customer_id, created_by)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING RETURNING {_COLUMNS}
"""
_LIST = f"SELECT {_COLUMNS} FROM api_tokens ORDER BY name"
_FIND = """
SELECT token_id, name, role, customer_id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL
"""
_REVOKE = f"""
UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE name = $1 RETURNING {_COLUMNS}
"""

# A forgotten customer's tokens, in the forget's transaction.
_REVOKE_BOUND = f"""
UPDATE api_tokens SET revoked_at = now() WHERE role = 'customer' AND customer_id = $1 AND revoked_at IS NULL
RETURNING {_COLUMNS}
"""


async def revoke_bound(conn: asyncpg.Connection | PoolConnectionProxy, customer_id: str) -> list[Token]:
    """Revoke every token bound to `customer_id`, inside the caller's transaction; those revoked now."""
    return [Token(*row) for row in await conn.fetch(_REVOKE_BOUND, customer_id)]


class Tokens:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add(
        self, name: str, role: Role, created_by: str, customer_id: str | None = None
    ) -> tuple[Token, str]:
        """A new token and its secret, which is never stored and cannot be shown again."""
        check_binding(role, customer_id)
        secret = PREFIX + secrets.token_urlsafe(32)
        async with self.pool.acquire() as conn, conn.transaction():
            await refuse_forgotten(conn, customer_id)
            row = await conn.fetchrow(_ADD, uuid4(), name, digest(secret), role, customer_id, created_by)
        if row is None:
            raise NameTaken(f"There is already a token called {name}.")
        return Token(*row), secret

    async def list(self) -> list[Token]:
        return [Token(*row) for row in await self.pool.fetch(_LIST)]

    async def actor(self, secret: str) -> Actor | None:
        """Who a bearer token acts as; None for an unknown or revoked one."""
        if not secret.startswith(PREFIX) or len(secret) > 100:
            return None
        row = await self.pool.fetchrow(_FIND, digest(secret))
        return None if row is None else Actor(f"token:{row[0]}", row[1], row[2], row[3])

    async def revoke(self, name: str) -> Token | None:
        if "\x00" in name:  # PostgreSQL text cannot hold NUL: no token has such a name
            return None
        row = await self.pool.fetchrow(_REVOKE, name)
        return None if row is None else Token(*row)
