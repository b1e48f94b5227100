"""Personal data in the store beyond the customer's stream: the outbox, `orders verify`, exports.

A customer with recognisable details orders; what the tables, the delivered
messages, the verify report and an export hold is searched for those details.
Real PostgreSQL throughout.
"""

from __future__ import annotations

import base64
import json
import logging
from uuid import uuid4

import asyncpg
import pytest

from domain.access import Actor
from domain.customer import ForgetCustomer, RegisterCustomer
from domain.order import AddItem, CancelOrder, CreateOrder, PlaceOrder
from domain.personal import ERASED, is_sealed
from store.application import Envelope, NotificationQuery, Orders
from store.log.integrity import verify
from store.personal import MasterKey, TamperedValue
from store.read.subscriptions import SubscriptionRunner
from store.workflows.outbox import NOT_SENT_FORGOTTEN, CustomerNotifications, LogSender, Relay
from tests.support.workflows import RecordingSender, outbox_rows

ADMIN = Actor("admin-1", "ada-admin", "admin")
NAME, EMAIL, ADDRESS = "Philippa Wrenfeather", "p.wrenfeather@example.net", "7 Thistle Row\nKilbarrow"
DETAILS = (NAME, EMAIL, "Thistle", "Kilbarrow", "Wrenfeather")


def envelope() -> Envelope:
    return Envelope(uuid4())


@pytest.fixture
def orders(pool: asyncpg.Pool) -> Orders:
    return Orders(pool, master=MasterKey.generate())


async def registered_customer_with_an_order(orders: Orders, customer_id: str = "cust-pw") -> str:
    await orders.register_customer(RegisterCustomer(customer_id, NAME, EMAIL, ADDRESS), envelope())
    order_id = str(uuid4())
    await orders.execute(CreateOrder(order_id, customer_id, "EUR"), envelope())
    await orders.execute(AddItem(order_id, "K-1", "Kettle", 2500, 2), envelope())
    await orders.execute(PlaceOrder(order_id), envelope())
    return order_id


async def forget(orders: Orders, customer_id: str = "cust-pw") -> None:
    command = ForgetCustomer(customer_id, "asked to be forgotten")
    await orders.acting_as(ADMIN).forget_customer(command, envelope())


async def notify(database_url: str, pool: asyncpg.Pool, orders: Orders, sender: RecordingSender) -> None:
    """The workflow writes what is due, the relay delivers it."""
    await SubscriptionRunner(database_url, pool, CustomerNotifications(orders.keyring)).catch_up()
    await Relay(pool, sender, orders.keyring).deliver_due()


def clear_details_in(text: str) -> list[str]:
    return [detail for detail in DETAILS if detail in text]


# ------------------------------------------------------------------ notifications


async def test_a_placed_order_is_notified_to_the_email_by_name_and_the_outbox_holds_neither(
    database_url: str, pool: asyncpg.Pool, orders: Orders
) -> None:
    order_id = await registered_customer_with_an_order(orders)
    sender = RecordingSender()
    await notify(database_url, pool, orders, sender)

    (row,) = await outbox_rows(pool, order_id)
    assert clear_details_in(str(tuple(row))) == []
    assert is_sealed(row["recipient"])
    assert is_sealed(row["body"])
    assert row["state"] == "sent"
    (sent,) = sender.sent
    assert sent.recipient == EMAIL
    assert sent.body.startswith(f"Hello {NAME},\n\nthank you: your order {order_id} is placed.")
    assert "It ships to:\n7 Thistle Row\nKilbarrow\n" in sent.body
    page, _ = await orders.notifications(NotificationQuery(order_id=order_id))
    assert [(n.recipient, n.body) for n in page.notifications] == [(EMAIL, sent.body)]


async def test_after_a_forget_no_message_goes_out_and_the_old_ones_read_as_erased(
    database_url: str, pool: asyncpg.Pool, orders: Orders
) -> None:
    order_id = await registered_customer_with_an_order(orders)
    await notify(database_url, pool, orders, RecordingSender())
    await forget(orders)
    await orders.execute(CancelOrder(order_id, "Out of stock"), envelope())
    sender = RecordingSender()
    await notify(database_url, pool, orders, sender)

    assert sender.sent == []
    _, cancelled = await outbox_rows(pool, order_id)
    assert (cancelled["kind"], cancelled["state"], cancelled["last_error"]) == (
        "order_cancelled",
        "forgotten",
        NOT_SENT_FORGOTTEN,
    )
    assert (cancelled["recipient"], cancelled["body"]) == ("", "")
    page, _ = await orders.notifications(NotificationQuery(order_id=order_id))
    shown = {n.kind: n for n in page.notifications}
    assert (shown["order_placed"].state, shown["order_placed"].recipient, shown["order_placed"].body) == (
        "sent",
        ERASED,
        ERASED,
    )
    assert shown["order_cancelled"].state == "forgotten"
    assert page.counts["forgotten"] == 1
    assert clear_details_in(str([tuple(r) for r in await pool.fetch("SELECT * FROM outbox")])) == []


async def test_a_message_written_before_the_forget_and_due_after_it_is_never_sent(
    database_url: str, pool: asyncpg.Pool, orders: Orders
) -> None:
    order_id = await registered_customer_with_an_order(orders)
    await SubscriptionRunner(database_url, pool, CustomerNotifications(orders.keyring)).catch_up()
    relay_keyring = Orders(pool, master=orders.keyring.master).keyring  # another process's, key cached
    await relay_keyring.load(["cust-pw"])
    await forget(orders)
    sender = RecordingSender()
    await Relay(pool, sender, relay_keyring).deliver_due()

    assert sender.sent == []
    (row,) = await outbox_rows(pool, order_id)
    assert (row["state"], row["attempts"], row["parked_at"], row["recipient"], row["body"]) == (
        "forgotten",
        0,
        None,
        "",
        "",
    )


async def test_an_order_of_a_customer_who_never_registered_is_notified_without_personal_data(
    database_url: str, pool: asyncpg.Pool, orders: Orders
) -> None:
    # Orders from before customers had streams: written straight to the log.
    from tests.support.workflows import draft, place

    order_id = await draft(orders.store, "legacy-7")
    await place(orders.store, order_id)
    sender = RecordingSender()
    await notify(database_url, pool, orders, sender)
    (sent,) = sender.sent
    assert (sent.recipient, sent.body.splitlines()[0]) == ("", "Hello legacy-7,")
    (row,) = await outbox_rows(pool, order_id)
    assert (row["state"], is_sealed(row["body"])) == ("sent", False)


# ------------------------------------------------------------------ verify


async def test_verify_passes_before_and_after_a_forget(
    database_url: str, pool: asyncpg.Pool, orders: Orders
) -> None:
    await registered_customer_with_an_order(orders)
    await notify(database_url, pool, orders, RecordingSender())
    assert (await verify(pool)).findings == []
    await forget(orders)
    assert (await verify(pool)).findings == []


async def test_verify_reports_a_forgotten_customer_whose_key_was_put_back(
    pool: asyncpg.Pool, orders: Orders
) -> None:
    await registered_customer_with_an_order(orders)
    (key,) = await pool.fetch("SELECT * FROM customer_keys WHERE customer_id = 'cust-pw'")
    await forget(orders)
    await pool.execute(
        "INSERT INTO customer_keys (customer_id, wrapped, master_key_id) VALUES ($1, $2, $3)",
        *(key["customer_id"], key["wrapped"], key["master_key_id"]),
    )
    report = await verify(pool)
    assert [(f.kind, f.stream_id, f.detail) for f in report.findings] == [
        (
            "forgotten_key",
            "customer:cust-pw",
            "the customer was forgotten but customer_keys still holds their key",
        )
    ]


async def test_verify_reports_personal_fields_in_clear_naming_the_field_never_the_value(
    database_url: str, pool: asyncpg.Pool, orders: Orders
) -> None:
    order_id = await registered_customer_with_an_order(orders)
    await notify(database_url, pool, orders, RecordingSender())
    # The events table refuses UPDATE and DELETE (migration 001's trigger); an INSERT of a
    # hand-made stream is what a careless import or a bypassing script could still do.
    data = json.dumps({"customer_id": "cust-clear", "name": NAME, "email": EMAIL, "address": ""})
    await pool.execute(
        """
        INSERT INTO events (stream_id, version, event_id, type, schema_version, data, metadata)
        VALUES ('customer:cust-clear', 1, $1, 'CustomerRegistered', 1, $2::jsonb, '{}'::jsonb)
        """,
        uuid4(),
        data,
    )
    await pool.execute("UPDATE customers SET email = $1 WHERE customer_id = 'cust-pw'", EMAIL)
    message = await pool.fetchval("UPDATE outbox SET body = 'Hello there' WHERE true RETURNING id")
    report = await verify(pool)
    cleartext = [(f.stream_id, f.detail) for f in report.findings if f.kind == "cleartext"]
    assert sorted(cleartext) == sorted(
        [
            ("customer:cust-clear", "event version 1 (CustomerRegistered): name is stored in clear"),
            ("customer:cust-clear", "event version 1 (CustomerRegistered): email is stored in clear"),
            ("customer:cust-pw", "customers.email is stored in clear"),
            (order_id, f"outbox: message {message} body is stored in clear"),
        ]
    )
    assert clear_details_in(str(report.findings)) == []


# ------------------------------------------------------------------ exports


async def test_an_export_taken_before_a_forget_holds_no_clear_text_and_opens_with_no_key_left(
    pool: asyncpg.Pool, orders: Orders
) -> None:
    await registered_customer_with_an_order(orders)
    taken = {}
    for fmt in ("ndjson", "csv"):
        taken[fmt] = b"".join([chunk async for chunk in await orders.export(fmt)]).decode()
        assert clear_details_in(taken[fmt]) == []
        assert "pii:1:cust-pw:" in taken[fmt]
    wrapped = await pool.fetchval("SELECT wrapped FROM customer_keys WHERE customer_id = 'cust-pw'")
    for text in taken.values():  # the keys are never in an export, wrapped or not
        assert base64.b64encode(wrapped).decode()[:24] not in text
        assert wrapped.hex()[:24] not in text
    await forget(orders)

    sealed = [
        value
        for line in taken["ndjson"].splitlines()
        for value in json.loads(line)["data"].values()
        if isinstance(value, str) and is_sealed(value)
    ]
    assert len(sealed) == 4  # name, email and address registered, and the order's ship_to
    # Every key left in the database (another customer's) tried on every sealed value: none opens.
    other = RegisterCustomer("cust-other", "Other", "o@example.org", "1 Road")
    await orders.register_customer(other, envelope())
    keyring = orders.keyring
    keyring.clear()
    others = [r[0] for r in await pool.fetch("SELECT customer_id FROM customer_keys")]
    assert others == ["cust-other"]
    await keyring.load(["cust-pw", *others])
    for value in sealed:
        assert keyring.open(value) == ERASED
        forged = value.replace("pii:1:cust-pw:", "pii:1:cust-other:")
        with pytest.raises(TamperedValue):
            keyring.open(forged)


async def test_a_delivery_logs_ids_only(
    database_url: str, pool: asyncpg.Pool, orders: Orders, caplog: pytest.LogCaptureFixture
) -> None:
    order_id = await registered_customer_with_an_order(orders)
    await SubscriptionRunner(database_url, pool, CustomerNotifications(orders.keyring)).catch_up()
    with caplog.at_level(logging.INFO, logger="orders.notifications"):
        await Relay(pool, LogSender(), orders.keyring).deliver_due()
    (row,) = await outbox_rows(pool, order_id)
    assert row["state"] == "sent"
    assert [r.getMessage() for r in caplog.records] == [
        f"notification {row['id']} (order_placed of order {order_id}) to customer cust-pw"
    ]
