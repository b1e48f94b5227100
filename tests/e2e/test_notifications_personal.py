"""The notifications page as staff see it: a message opened for them, then erased, and one never sent."""

from __future__ import annotations

from uuid import uuid4

import asyncpg

from domain.access import Actor
from domain.customer import ForgetCustomer, RegisterCustomer
from domain.order import AddItem, CancelOrder, CreateOrder, PlaceOrder
from store.application import Envelope, Orders
from store.personal import MasterKey
from tests.support.app import TEST_MASTER_KEY
from tests.support.page_client import PageClient
from tests.support.waiting import eventually
from tests.support.workflows import outbox_rows

NAME, EMAIL = "Ottoline Featherstonehaugh", "ottoline@feather.example"


async def test_a_forgotten_customers_messages_read_as_erased_and_a_new_one_is_marked_not_sent(
    app_client: PageClient, pool: asyncpg.Pool
) -> None:
    # The same master key as the app's (tests/support/app.py): one deployment, two processes.
    orders = Orders(pool, master=MasterKey.from_file(TEST_MASTER_KEY, create=True))
    await orders.register_customer(
        RegisterCustomer("cust-of", NAME, EMAIL, "2 Plover Walk"), Envelope(uuid4())
    )
    order_id = str(uuid4())
    for command in (CreateOrder(order_id, "cust-of", "EUR"), AddItem(order_id, "T-1", "Tea", 450, 2)):
        await orders.execute(command, Envelope(uuid4()))
    await orders.execute(PlaceOrder(order_id), Envelope(uuid4()))

    async def sent() -> bool:
        return [r["state"] for r in await outbox_rows(pool, order_id)] == ["sent"]

    await eventually(sent)
    page = await app_client.get(f"/notifications?order={order_id}")
    assert f"Hello {NAME}," in page.text

    admin = orders.acting_as(Actor("admin-1", "ada", "admin"))
    await admin.forget_customer(ForgetCustomer("cust-of", "asked"), Envelope(uuid4()))
    await orders.execute(CancelOrder(order_id, "Out of stock"), Envelope(uuid4()))

    async def not_sent() -> bool:
        return [r["state"] for r in await outbox_rows(pool, order_id)] == ["sent", "forgotten"]

    await eventually(not_sent)

    async def erased() -> str | None:
        shown = (await app_client.get(f"/notifications?order={order_id}")).text
        return shown if "[erased]" in shown else None

    shown = await eventually(erased)
    assert NAME not in shown
    assert EMAIL not in shown
    assert ">forgotten</span>" in shown
    assert "last error: not sent: the customer was forgotten" in shown
    listing = await app_client.get("/notifications?state=forgotten")
    assert listing.text.count('<tr id="notification-') == 1
