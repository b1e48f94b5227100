"""Accounts of people: a name, a role (a customer is bound to one customer id), an Argon2id password."""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import cache
from uuid import UUID, uuid4

import asyncpg
import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from asyncpg.pool import PoolConnectionProxy

from domain.access import Actor, Role, check_binding
from store.access.binding import refuse_forgotten

Connection = asyncpg.Connection | PoolConnectionProxy

_HASHER = PasswordHasher()


@cache
def _decoy() -> str:
    """Checked when the name is unknown, so a wrong name costs the same time as a wrong password.

    Made on first use, not at import: an Argon2 hash takes its 64 MiB of memory then, and a
    process that never checks a password (a worker serving signed-in pages) never pays it.
    """
    return _HASHER.hash("a password no account has")


class NameTaken(Exception):
    pass


class LastAdmin(Exception):
    """The change would leave no enabled admin account, and so nobody to manage the others."""


class Account(msgspec.Struct, frozen=True):
    account_id: UUID
    name: str
    role: Role
    customer_id: str | None
    disabled_at: datetime | None
    created_at: datetime

    @property
    def actor(self) -> Actor:
        return Actor(str(self.account_id), self.name, self.role, self.customer_id)


_COLUMNS = "account_id, name, role, customer_id, disabled_at, created_at"
_ADD = f"""
INSERT INTO accounts (account_id, name, role, customer_id, password_hash) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (name) DO NOTHING RETURNING {_COLUMNS}
"""
_LIST = f"SELECT {_COLUMNS} FROM accounts ORDER BY name"
_BY_NAME = f"SELECT {_COLUMNS}, password_hash FROM accounts WHERE name = $1"
# Disabling an account ends its sessions in the same statement, on every instance at once.
_DISABLE = f"""
WITH ended AS (DELETE FROM sessions WHERE account_id = (SELECT account_id FROM accounts WHERE name = $1))
UPDATE accounts SET disabled_at = coalesce(disabled_at, now()) WHERE name = $1 RETURNING {_COLUMNS}
"""
_SET_ROLE = f"UPDATE accounts SET role = $2, customer_id = $3 WHERE name = $1 RETURNING {_COLUMNS}"
_SET_PASSWORD = f"UPDATE accounts SET password_hash = $2 WHERE name = $1 RETURNING {_COLUMNS}"
# A forgotten customer's accounts, in the forget's transaction: disabled as `_DISABLE` does (their
# sessions ended in the same statement), and renamed after their id, since a name may be personal
# data. Only customer accounts are bound to a customer, so no admin is ever among them.
# FOR UPDATE: a role change racing the forget waits for it, then finds the account already renamed,
# rather than binding elsewhere an account whose sessions were just ended.
_FORGET_BOUND = f"""
WITH bound AS (
    SELECT account_id FROM accounts WHERE role = 'customer' AND customer_id = $1 FOR UPDATE
), ended AS (DELETE FROM sessions WHERE account_id IN (SELECT account_id FROM bound))
UPDATE accounts SET disabled_at = coalesce(disabled_at, now()),
                    name = 'forgotten-' || replace(account_id::text, '-', '')
WHERE account_id IN (SELECT account_id FROM bound) RETURNING {_COLUMNS}
"""
# Locks every enabled admin's row: of two admins demoting or disabling each other at once,
# the second waits for the first to commit, then finds one admin fewer and is refused.
_LOCK_ADMINS = "SELECT name FROM accounts WHERE role = 'admin' AND disabled_at IS NULL FOR UPDATE"


def account_row(row: asyncpg.Record) -> Account:
    return Account(*row[:6])


async def hash_password(password: str) -> str:
    # Argon2 takes tens of milliseconds of CPU: off the event loop.
    return await asyncio.to_thread(_HASHER.hash, password)


async def forget_bound(conn: Connection, customer_id: str) -> list[Account]:
    """Disable and rename every account bound to `customer_id`, ending their sessions; inside the
    caller's transaction (the forget's), so both happen or neither. The accounts as they now are."""
    return [account_row(row) for row in await conn.fetch(_FORGET_BOUND, customer_id)]


class Accounts:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add(self, name: str, role: Role, password: str, customer_id: str | None = None) -> Account:
        check_binding(role, customer_id)
        password_hash = await hash_password(password)
        async with self.pool.acquire() as conn, conn.transaction():
            await refuse_forgotten(conn, customer_id)
            row = await conn.fetchrow(_ADD, uuid4(), name, role, customer_id, password_hash)
        if row is None:
            raise NameTaken(f"There is already an account called {name}.")
        return account_row(row)

    async def list(self) -> list[Account]:
        return [account_row(row) for row in await self.pool.fetch(_LIST)]

    async def find(self, name: str) -> Account | None:
        if "\x00" in name:  # PostgreSQL text cannot hold NUL: no account has such a name
            return None
        row = await self.pool.fetchrow(_BY_NAME, name)
        return None if row is None else account_row(row)

    async def check_password(self, name: str, password: str) -> Account | None:
        """The enabled account if `password` is its own; None otherwise, in about the same time."""
        row = await self.pool.fetchrow(_BY_NAME, name) if "\x00" not in name else None
        stored = _decoy() if row is None else row["password_hash"]
        try:
            await asyncio.to_thread(_HASHER.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or row["disabled_at"] is not None:
            return None
        return account_row(row)

    async def disable(self, name: str) -> Account | None:
        if "\x00" in name:  # PostgreSQL text cannot hold NUL: no account has such a name
            return None
        row = await self.pool.fetchrow(_DISABLE, name)
        return None if row is None else account_row(row)

    async def set_password(self, name: str, password: str) -> Account | None:
        if "\x00" in name:  # PostgreSQL text cannot hold NUL: no account has such a name
            return None
        row = await self.pool.fetchrow(_SET_PASSWORD, name, await hash_password(password))
        return None if row is None else account_row(row)

    async def set_role_leaving_an_admin(
        self, name: str, role: Role, customer_id: str | None = None
    ) -> Account | None:
        """Give the account another role; LastAdmin when that would take the last enabled admin's."""
        check_binding(role, customer_id)
        return await self._leaving_an_admin(
            name, role == "admin", _SET_ROLE, role, customer_id, binding=customer_id
        )

    async def disable_leaving_an_admin(self, name: str) -> Account | None:
        """`disable`, refused with LastAdmin when the account is the last enabled admin."""
        return await self._leaving_an_admin(name, False, _DISABLE)

    async def _leaving_an_admin(
        self, name: str, stays_admin: bool, statement: str, *args: object, binding: str | None = None
    ) -> Account | None:
        if "\x00" in name:  # PostgreSQL text cannot hold NUL: no account has such a name
            return None
        async with self.pool.acquire() as conn, conn.transaction():
            await refuse_forgotten(conn, binding)
            admins = [row[0] for row in await conn.fetch(_LOCK_ADMINS)]
            if not stays_admin and admins == [name]:
                raise LastAdmin(f"{name} is the last admin; make another account an admin first.")
            row = await conn.fetchrow(statement, name, *args)
        return None if row is None else account_row(row)
