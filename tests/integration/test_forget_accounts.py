"""Forgetting a customer ends the sign-in of everything bound to them, in the forget's transaction.

Real PostgreSQL; what is asserted is what signing in, a session, a token and the access log then give.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import asyncpg
import pytest

from domain.access import Actor, Forbidden
from domain.customer import ForgetCustomer, RegisterCustomer
from domain.errors import CustomerForgottenError
from store.access.access_log import AccessLog
from store.access.accounts import Accounts
from store.access.sessions import Sessions
from store.access.tokens import Tokens
from store.application import Envelope, Orders
from store.personal import MasterKey
from tests.support.accounts import PASSWORD, add_account, session_for, sign_in_state, token_for

ADMIN = Actor("admin-1", "ada-admin", "admin")
CLERK = Actor("clerk-1", "cleo-clerk", "clerk")
DETAILS = ("Zebulon Quigglesworth", "zebulon.q@example.org", "12 Marigold Lane\nPemberton")


@pytest.fixture
async def orders(pool: asyncpg.Pool) -> Orders:
    orders = Orders(pool, master=MasterKey.generate()).acting_as(ADMIN)
    for customer_id in ("cust-zq", "cust-other"):
        await orders.register_customer(RegisterCustomer(customer_id, *DETAILS), Envelope(uuid4()))
    return orders


async def forget(orders: Orders, customer_id: str = "cust-zq") -> None:
    await orders.forget_customer(ForgetCustomer(customer_id, "Asked to be forgotten"), Envelope(uuid4()))


async def test_a_forget_disables_renames_and_signs_out_the_customers_account_and_revokes_its_token(
    pool: asyncpg.Pool, orders: Orders
) -> None:
    sessions = Sessions(pool, idle=timedelta(hours=1), absolute=timedelta(days=1))
    accounts, tokens = Accounts(pool), Tokens(pool)
    zeb_id = await add_account(pool, "zebulon.q", "customer", "cust-zq")
    zeb_session = await session_for(pool, "zebulon.q", "customer", "cust-zq")
    zeb_token = await token_for(pool, "zeb-shop", "customer", "cust-zq")
    await session_for(pool, "olga", "customer", "cust-other")
    olga_token = await token_for(pool, "olga-shop", "customer", "cust-other")
    olga_before = await accounts.find("olga")
    assert await accounts.check_password("zebulon.q", PASSWORD) is not None
    assert await sessions.resume(zeb_session) is not None
    assert await tokens.actor(zeb_token) is not None

    await forget(orders)

    renamed = f"forgotten-{zeb_id.replace('-', '')}"
    assert await accounts.find("zebulon.q") is None
    account = await accounts.find(renamed)
    assert account is not None
    assert account.disabled_at is not None
    assert (account.role, account.customer_id) == ("customer", "cust-zq")
    assert await accounts.check_password("zebulon.q", PASSWORD) is None
    assert await accounts.check_password(renamed, PASSWORD) is None
    assert await sessions.resume(zeb_session) is None
    assert await pool.fetchval("SELECT count(*) FROM sessions WHERE account_id = $1", account.account_id) == 0
    assert await tokens.actor(zeb_token) is None
    entries = [(e.kind, e.actor_id, e.actor_name, e.subject, e.detail) for e in await AccessLog(pool).page()]
    assert entries == [
        ("token revoked", "admin-1", "ada-admin", "zeb-shop", "customer cust-zq forgotten"),
        (
            "account disabled",
            "admin-1",
            "ada-admin",
            renamed,
            "customer cust-zq forgotten: renamed, its sessions ended",
        ),
    ]
    # Another customer's account, session and token are as they were.
    assert await accounts.find("olga") == olga_before
    assert await accounts.check_password("olga", PASSWORD) is not None
    assert await pool.fetchval("SELECT count(*) FROM sessions") == 1
    assert await tokens.actor(olga_token) is not None


async def test_forgetting_twice_changes_no_account_the_second_time(
    pool: asyncpg.Pool, orders: Orders
) -> None:
    await session_for(pool, "zebulon.q", "customer", "cust-zq")
    await token_for(pool, "zeb-shop", "customer", "cust-zq")
    await forget(orders)
    after_first = await sign_in_state(pool)

    await forget(orders)

    assert await sign_in_state(pool) == after_first


async def test_a_refused_forget_changes_no_account(pool: asyncpg.Pool, orders: Orders) -> None:
    await session_for(pool, "zebulon.q", "customer", "cust-zq")
    await token_for(pool, "zeb-shop", "customer", "cust-zq")
    before = await sign_in_state(pool)

    with pytest.raises(Forbidden):
        await forget(orders.acting_as(CLERK))

    assert await sign_in_state(pool) == before


async def test_a_forget_that_fails_midway_leaves_the_customer_and_the_account_as_they_were(
    pool: asyncpg.Pool, orders: Orders
) -> None:
    await session_for(pool, "zebulon.q", "customer", "cust-zq")
    await token_for(pool, "zeb-shop", "customer", "cust-zq")
    before = await sign_in_state(pool)
    # The access log refuses the entry the forget writes last: the whole transaction must roll back.
    await pool.execute(
        """
        CREATE FUNCTION refuse_entry() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'no entry today'; END $$;
        CREATE TRIGGER refuse_entry BEFORE INSERT ON access_log FOR EACH ROW EXECUTE FUNCTION refuse_entry();
        """
    )

    with pytest.raises(asyncpg.RaiseError):
        await forget(orders)

    assert await sign_in_state(pool) == before
    assert (await orders.customer("cust-zq")).status == "registered"
    assert await pool.fetchval("SELECT count(*) FROM customer_keys WHERE customer_id = 'cust-zq'") == 1


async def test_no_account_or_token_can_be_bound_to_a_forgotten_customer_afterwards(
    pool: asyncpg.Pool, orders: Orders
) -> None:
    accounts, tokens = Accounts(pool), Tokens(pool)
    await add_account(pool, "mo", "clerk")
    await forget(orders)
    before = await sign_in_state(pool)

    with pytest.raises(CustomerForgottenError, match="cust-zq has been forgotten"):
        await accounts.add("zebulon.again", "customer", PASSWORD, "cust-zq")
    with pytest.raises(CustomerForgottenError):
        await tokens.add("zeb-again", "customer", "ada-admin", "cust-zq")
    with pytest.raises(CustomerForgottenError):
        await accounts.set_role_leaving_an_admin("mo", "customer", "cust-zq")
    assert await sign_in_state(pool) == before  # nothing written

    # Another customer, and a customer id nobody registered, still take accounts and tokens.
    assert (await accounts.add("olga.too", "customer", PASSWORD, "cust-other")).customer_id == "cust-other"
    await tokens.add("olga-shop-2", "customer", "ada-admin", "cust-other")
    assert (await accounts.set_role_leaving_an_admin("mo", "customer", "cust-new")) is not None
