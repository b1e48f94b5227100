"""Accounts, sessions and tokens made straight in the database, as a test's starting point.

Passwords are hashed with Argon2id at the smallest cost, so a test can sign in
through the page quickly; the app verifies any Argon2 hash by its own parameters.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from uuid import uuid4

import asyncpg
from argon2 import PasswordHasher

from store.access.sessions import digest
from store.access.tokens import PREFIX

PASSWORD = "correct horse battery staple"
_CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
_HASH = _CHEAP.hash(PASSWORD)

_ACCOUNT = """
INSERT INTO accounts (account_id, name, role, customer_id, password_hash) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, customer_id = EXCLUDED.customer_id
RETURNING account_id
"""


def hashed(password: str) -> str:
    return _HASH if password == PASSWORD else _CHEAP.hash(password)


async def add_account(
    db: asyncpg.Pool | asyncpg.Connection,
    name: str,
    role: str,
    customer_id: str | None = None,
    password: str = PASSWORD,
) -> str:
    """The account (made, or its role set), its id."""
    account_id = await db.fetchval(_ACCOUNT, uuid4(), name, role, customer_id, hashed(password))
    return str(account_id)


async def session_for(
    db: asyncpg.Pool | asyncpg.Connection, name: str, role: str, customer_id: str | None = None
) -> str:
    """A signed-in session of the account `name` (made if need be): the id its cookie holds."""
    account_id = await add_account(db, name, role, customer_id)
    session_id = secrets.token_urlsafe(32)
    await db.execute(
        "INSERT INTO sessions (id_hash, account_id, expires_at) VALUES ($1, $2, now() + interval '1 day')",
        digest(session_id),
        account_id,
    )
    return session_id


async def token_for(
    db: asyncpg.Pool | asyncpg.Connection, name: str, role: str, customer_id: str | None = None
) -> str:
    """A new API token `name` for the role: the secret a program sends."""
    secret = PREFIX + secrets.token_urlsafe(32)
    await db.execute(
        "INSERT INTO api_tokens (token_id, name, token_hash, role, customer_id, created_by) "
        "VALUES ($1, $2, $3, $4, $5, 'test')",
        uuid4(),
        name,
        digest(secret),
        role,
        customer_id,
    )
    return secret


async def _on(url: str, make: str, name: str, role: str, customer_id: str | None) -> str:
    conn = await asyncpg.connect(url)
    try:
        maker = session_for if make == "session" else token_for
        return await maker(conn, name, role, customer_id)
    finally:
        await conn.close()


def session_on(url: str, name: str, role: str, customer_id: str | None = None) -> str:
    """`session_for` on the database at `url`, for synchronous fixtures (servers in processes)."""
    return asyncio.run(_on(url, "session", name, role, customer_id))


def token_on(url: str, name: str, role: str, customer_id: str | None = None) -> str:
    return asyncio.run(_on(url, "token", name, role, customer_id))


async def session_at(url: str, name: str, role: str, customer_id: str | None = None) -> str:
    return await _on(url, "session", name, role, customer_id)


async def token_at(url: str, name: str, role: str, customer_id: str | None = None) -> str:
    return await _on(url, "token", name, role, customer_id)


async def sign_in_state(pool: asyncpg.Pool) -> dict[str, Any]:
    """Accounts and tokens row by row, sessions and access-log entries counted: what a change to
    sign-in writes, to compare before and after one that must write nothing."""
    return {
        "accounts": [tuple(r) for r in await pool.fetch("SELECT * FROM accounts ORDER BY account_id")],
        "tokens": [tuple(r) for r in await pool.fetch("SELECT * FROM api_tokens ORDER BY token_id")],
        "sessions": await pool.fetchval("SELECT count(*) FROM sessions"),
        "access_log": await pool.fetchval("SELECT count(*) FROM access_log"),
    }
