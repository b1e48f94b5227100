"""A forgotten customer's sign-in, ended in the forget's own transaction.

Every account bound to the customer is disabled and renamed (its sessions end), every token bound to
them revoked, and the access log says so, naming the admin who forgot them. Called once, by the
transaction that appends CustomerForgotten: a second forget appends nothing and so changes nothing.
"""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from domain.access import Actor
from store.access.access_log import append_entry
from store.access.accounts import forget_bound
from store.access.tokens import revoke_bound


async def end_sign_in(conn: asyncpg.Connection | PoolConnectionProxy, customer_id: str, actor: Actor) -> None:
    """Inside the caller's transaction: no account or token of `customer_id` signs in any more."""
    because = f"customer {customer_id} forgotten"
    for account in await forget_bound(conn, customer_id):
        await append_entry(
            conn, "account disabled", actor, account.name, f"{because}: renamed, its sessions ended"
        )
    for token in await revoke_bound(conn, customer_id):
        await append_entry(conn, "token revoked", actor, token.name, because)
