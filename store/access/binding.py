"""Binding an account or a token to a customer: never to one who has been forgotten."""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from domain.errors import CustomerForgottenError

# FOR SHARE: a forget in flight (it updates the customer's row first) is waited for, and its outcome
# seen; a forget that starts after this waits for the binding to commit, then ends its sign-in too.
_FORGOTTEN = "SELECT status = 'forgotten' FROM customers WHERE customer_id = $1 FOR SHARE"


async def refuse_forgotten(conn: asyncpg.Connection | PoolConnectionProxy, customer_id: str | None) -> None:
    """Inside the caller's transaction, before it binds `customer_id`: refused if they are forgotten."""
    if customer_id and "\x00" not in customer_id and await conn.fetchval(_FORGOTTEN, customer_id):
        raise CustomerForgottenError(
            f"Customer {customer_id} has been forgotten: no account or token can act for them."
        )
