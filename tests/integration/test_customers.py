"""Customers through the application layer: their streams, sealed personal data, and forgetting them.

Real PostgreSQL; what is asserted is what the tables hold and what a reader is shown.
"""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import pytest

from domain.access import Actor
from domain.customer import ChangeCustomerDetails, ForgetCustomer, RegisterCustomer
from domain.errors import (
    CustomerAlreadyRegistered,
    CustomerForgottenError,
    CustomerNotFound,
    CustomerNotRegistered,
    InvalidAddress,
    InvalidEmail,
    InvalidPersonName,
)
from domain.order import AddItem, CreateOrder, OrderPlaced, PlaceOrder
from domain.personal import ERASED
from store.application import Envelope, Orders
from store.personal import MasterKey

ADMIN = Actor("admin-1", "ada-admin", "admin")
NAME, EMAIL, ADDRESS = "Zebulon Quigglesworth", "zebulon.q@example.org", "12 Marigold Lane\nPemberton"


def envelope() -> Envelope:
    return Envelope(uuid4())


async def everything_stored(pool: asyncpg.Pool) -> str:
    """Every row of every table of the public schema, as text."""
    tables = [r[0] for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    dump = []
    for table in tables:
        dump += [str(tuple(row)) for row in await pool.fetch(f"SELECT * FROM {table}")]
    return "\n".join(dump)


@pytest.fixture
def orders(pool: asyncpg.Pool) -> Orders:
    return Orders(pool, master=MasterKey.generate())


async def register(orders: Orders, customer_id: str = "cust-zq") -> None:
    await orders.register_customer(RegisterCustomer(customer_id, NAME, EMAIL, ADDRESS), envelope())


async def placed_order(orders: Orders, customer_id: str = "cust-zq") -> str:
    order_id = str(uuid4())
    await orders.execute(CreateOrder(order_id, customer_id, "EUR"), envelope())
    await orders.execute(AddItem(order_id, "K-1", "Kettle", 2500, 2), envelope())
    await orders.execute(PlaceOrder(order_id), envelope())
    return order_id


async def test_registered_details_are_shown_and_stored_only_sealed(
    orders: Orders, pool: asyncpg.Pool
) -> None:
    await register(orders)
    shown = await orders.customer("cust-zq")
    assert (shown.name, shown.email, shown.address, shown.status) == (NAME, EMAIL, ADDRESS, "registered")
    stored = await everything_stored(pool)
    for detail in (NAME, EMAIL, "Marigold"):
        assert detail not in stored
    data = await pool.fetchval("SELECT data::text FROM events WHERE stream_id = 'customer:cust-zq'")
    assert '"name": "pii:1:cust-zq:' in data


async def test_an_order_ships_to_the_address_sealed_and_shows_it_opened(
    orders: Orders, pool: asyncpg.Pool
) -> None:
    await register(orders)
    order_id = await placed_order(orders)
    at = await orders.order_at(order_id)
    assert at.order.ship_to == ADDRESS
    placed = [e for e in await orders.events(order_id) if isinstance(e.event, OrderPlaced)]
    assert placed[0].event.ship_to == ADDRESS  # type: ignore[union-attr]
    assert "Marigold" not in await everything_stored(pool)


async def test_forgetting_erases_every_view_and_keeps_the_order(orders: Orders, pool: asyncpg.Pool) -> None:
    await register(orders)
    order_id = await placed_order(orders)
    admin = orders.acting_as(ADMIN)
    forgotten = await admin.forget_customer(ForgetCustomer("cust-zq", "asked by email, ticket 7"), envelope())
    assert (forgotten.name, forgotten.email, forgotten.address) == (ERASED, ERASED, ERASED)
    assert await pool.fetchval("SELECT count(*) FROM customer_keys WHERE customer_id = 'cust-zq'") == 0
    last = await pool.fetchrow(
        "SELECT type, data::text, metadata->>'actor' FROM events WHERE stream_id = 'customer:cust-zq' "
        "ORDER BY version DESC LIMIT 1"
    )
    assert tuple(last) == ("CustomerForgotten", '{"reason": "asked by email, ticket 7"}', "ada-admin")
    at = await orders.order_at(order_id)
    assert at.order.ship_to == ERASED
    assert (at.order.total_cents, at.order.status) == (5000, "placed")
    early = await orders.order_at(order_id, version=2)
    assert (early.order.ship_to, early.order.total_cents) == ("", 5000)  # not placed yet at version 2
    # Twice is harmless; an unknown customer is not found.
    again = await admin.forget_customer(ForgetCustomer("cust-zq", "again"), envelope())
    assert again.version == forgotten.version
    with pytest.raises(CustomerNotFound):
        await admin.forget_customer(ForgetCustomer("nobody-here", "why"), envelope())
    # A forgotten customer orders nothing more, and their details cannot change.
    with pytest.raises(CustomerForgottenError):
        await orders.execute(CreateOrder(str(uuid4()), "cust-zq", "EUR"), envelope())
    with pytest.raises(CustomerForgottenError):
        await orders.change_customer(ChangeCustomerDetails("cust-zq", NAME, EMAIL, ADDRESS), envelope())


async def test_only_admins_forget(orders: Orders) -> None:
    await register(orders)
    from domain.access import Forbidden

    for role in ("clerk", "viewer", "customer"):
        actor = Actor(f"{role}-1", role, role, "cust-zq" if role == "customer" else None)  # type: ignore[arg-type]
        with pytest.raises(Forbidden):
            await orders.acting_as(actor).forget_customer(ForgetCustomer("cust-zq", "no"), envelope())
    assert (await orders.customer("cust-zq")).name == NAME


async def test_an_order_is_for_a_registered_customer(orders: Orders, pool: asyncpg.Pool) -> None:
    with pytest.raises(CustomerNotRegistered) as refused:
        await orders.execute(CreateOrder(str(uuid4()), "never-registered", "EUR"), envelope())
    assert refused.value.field == "customer_id"
    assert await pool.fetchval("SELECT count(*) FROM events") == 0


@pytest.mark.parametrize(
    ("name", "email", "address", "error"),
    [
        ("", EMAIL, ADDRESS, InvalidPersonName),
        ("x" * 201, EMAIL, ADDRESS, InvalidPersonName),
        ("Bell\x07", EMAIL, ADDRESS, InvalidPersonName),
        (NAME, "not-an-address", ADDRESS, InvalidEmail),
        (NAME, "a@b", ADDRESS, InvalidEmail),
        (NAME, EMAIL, "", InvalidAddress),
        (NAME, EMAIL, "y" * 501, InvalidAddress),
        (NAME, EMAIL, "Road\x00", InvalidAddress),
    ],
)
async def test_bad_details_are_refused_with_the_field_and_write_nothing(
    orders: Orders, pool: asyncpg.Pool, name: str, email: str, address: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await orders.register_customer(RegisterCustomer("cust-bad", name, email, address), envelope())
    assert await pool.fetchval("SELECT count(*) FROM events") == 0
    assert await pool.fetchval("SELECT count(*) FROM customers") == 0


async def test_registering_twice_is_refused_but_a_repeated_command_is_not(orders: Orders) -> None:
    command, first = RegisterCustomer("cust-zq", NAME, EMAIL, ADDRESS), envelope()
    await orders.register_customer(command, first)
    again = await orders.register_customer(command, first)  # the same command id: a retry
    assert again.version == 1
    with pytest.raises(CustomerAlreadyRegistered):
        await orders.register_customer(command, envelope())


async def test_details_change_and_an_order_keeps_the_address_it_was_placed_with(orders: Orders) -> None:
    await register(orders)
    order_id = await placed_order(orders)
    changed = await orders.change_customer(
        ChangeCustomerDetails("cust-zq", NAME, "new@example.org", "1 Other Street"), envelope()
    )
    assert (changed.email, changed.address, changed.version) == ("new@example.org", "1 Other Street", 2)
    assert (await orders.order_at(order_id)).order.ship_to == ADDRESS


async def test_a_customer_sees_and_edits_only_their_own_details(orders: Orders) -> None:
    await register(orders)
    await register(orders, "cust-other")
    me = orders.acting_as(Actor("acct-1", "zeb", "customer", "cust-zq"))
    assert (await me.customer("cust-zq")).name == NAME
    with pytest.raises(CustomerNotFound):
        await me.customer("cust-other")
    with pytest.raises(CustomerNotFound):
        await me.change_customer(ChangeCustomerDetails("cust-other", "X", EMAIL, ADDRESS), envelope())
    await me.change_customer(ChangeCustomerDetails("cust-zq", "Zeb Q", EMAIL, ADDRESS), envelope())
    assert (await orders.customer("cust-zq")).name == "Zeb Q"


async def test_a_repeated_place_answers_as_the_first_though_the_customer_was_forgotten_since(
    orders: Orders, pool: asyncpg.Pool
) -> None:
    await register(orders)
    order_id = str(uuid4())
    await orders.execute(CreateOrder(order_id, "cust-zq", "EUR"), envelope())
    await orders.execute(AddItem(order_id, "K-1", "Kettle", 2500, 2), envelope())
    place = envelope()
    first = await orders.execute(PlaceOrder(order_id), place)
    await orders.acting_as(ADMIN).forget_customer(ForgetCustomer("cust-zq", "asked"), envelope())
    events = await pool.fetchval("SELECT count(*) FROM events")

    again = await orders.execute(PlaceOrder(order_id), place)  # the same command id: a retry

    assert (again.duplicate, again.last_version) == (True, first.last_version)
    assert await pool.fetchval("SELECT count(*) FROM events") == events
    with pytest.raises(CustomerForgottenError):  # a new command for them is still refused
        await orders.execute(CreateOrder(str(uuid4()), "cust-zq", "EUR"), envelope())


async def test_a_customer_id_with_a_nul_is_refused_or_not_found_before_any_query(
    orders: Orders, pool: asyncpg.Pool
) -> None:
    from domain.errors import InvalidCustomerId

    with pytest.raises(InvalidCustomerId):
        await orders.register_customer(RegisterCustomer("\x00", NAME, EMAIL, ADDRESS), envelope())
    with pytest.raises(InvalidCustomerId):
        await orders.acting_as(ADMIN).forget_customer(ForgetCustomer("a\x00", "why"), envelope())
    with pytest.raises(CustomerNotFound):
        await orders.customer("a\x00")
    assert await pool.fetchval("SELECT count(*) FROM events") == 0
