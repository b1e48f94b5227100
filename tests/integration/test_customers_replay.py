"""Every read model rebuilt from the log after an erasure shows the same erased view it kept live."""

from __future__ import annotations

from uuid import uuid4

import asyncpg

from domain.access import Actor
from domain.customer import ChangeCustomerDetails, ForgetCustomer, RegisterCustomer
from domain.order import AddItem, CancelOrder, CreateOrder, PlaceOrder
from domain.personal import ERASED
from store.application import Envelope, Orders
from store.personal import MasterKey
from store.read.projections import PROJECTIONS
from store.read.replay import READ_MODELS, rebuild
from store.read.subscriptions import SubscriptionRunner

ADMIN = Actor("admin-1", "ada-admin", "admin")

# Every column of every read model, in a stable order.
QUERIES = {
    "order_read_model": "SELECT * FROM order_read_model ORDER BY order_id",
    "customers": "SELECT * FROM customers ORDER BY customer_id",
    "customer_summaries": (
        "SELECT customer_id, draft, placed, cancelled, placed_value::text, last_activity "
        "FROM customer_summaries ORDER BY customer_id;"
        "SELECT * FROM customer_orders ORDER BY order_id"
    ),
    "sales_by_day": (
        "SELECT * FROM sales_by_day ORDER BY day, currency; SELECT * FROM sales_orders ORDER BY order_id"
    ),
}


async def contents(pool: asyncpg.Pool, name: str) -> list[list[tuple[object, ...]]]:
    return [[tuple(r) for r in await pool.fetch(query)] for query in QUERIES[name].split(";")]


async def test_every_read_model_rebuilt_after_an_erasure_equals_the_one_kept_live(
    database_url: str, pool: asyncpg.Pool
) -> None:
    assert set(QUERIES) == set(READ_MODELS), "a read model this test does not look at"
    orders = Orders(pool, master=MasterKey.generate())
    for customer_id, name in (("cust-zq", "Zebulon Quigglesworth"), ("cust-keep", "Kept Person")):
        command = RegisterCustomer(customer_id, name, f"{customer_id}@example.org", f"1 {name} Road")
        await orders.register_customer(command, Envelope(uuid4()))
        for n in range(3):
            order_id = str(uuid4())
            await orders.execute(CreateOrder(order_id, customer_id, "EUR"), Envelope(uuid4()))
            await orders.execute(AddItem(order_id, "K-1", "Kettle", 1000 + n, n + 1), Envelope(uuid4()))
            await orders.execute(PlaceOrder(order_id), Envelope(uuid4()))
            if n == 2:
                await orders.execute(CancelOrder(order_id, "changed mind"), Envelope(uuid4()))
    await orders.change_customer(
        ChangeCustomerDetails("cust-zq", "Zebulon Q", "zq@example.org", "2 New Road"), Envelope(uuid4())
    )
    await orders.acting_as(ADMIN).forget_customer(ForgetCustomer("cust-zq", "asked"), Envelope(uuid4()))
    for projection in PROJECTIONS.values():
        await SubscriptionRunner(database_url, pool, projection).catch_up()
    live = {name: await contents(pool, name) for name in READ_MODELS}
    forgotten = await pool.fetchrow(
        "SELECT name, email, address, status FROM customers WHERE customer_id = 'cust-zq'"
    )
    assert tuple(forgotten) == ("", "", "", "forgotten")

    for name in READ_MODELS:
        await rebuild(pool, name, batch_size=7)
        assert await contents(pool, name) == live[name], f"{name} rebuilt differs from the one kept live"

    assert (await orders.customer("cust-zq")).name == ERASED
    assert (await orders.customer("cust-keep")).name == "Kept Person"
    ships = {
        (await orders.order_at(row[0])).order.ship_to
        for row in await pool.fetch("SELECT order_id FROM order_read_model WHERE customer_id = 'cust-zq'")
    }
    assert ships == {ERASED}
