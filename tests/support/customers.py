"""Registered customers as a test's starting point: a new order is for a registered customer (issue 15).

A test that orders for "alice" registers alice first, through the application
layer, with plausible details of her own; registering someone already
registered is fine (another test helper, or the same one twice, got there first).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import zlib
from collections.abc import Iterable
from typing import Any
from uuid import uuid4

import asyncpg
from litestar.testing import AsyncTestClient

from domain.customer import RegisterCustomer
from domain.errors import CustomerAlreadyRegistered
from domain.personal import is_sealed, sealed_owner
from store.application import Envelope, Orders
from store.personal import MasterKey
from store.personal.master import configured
from tests.support.app import TEST_MASTER_KEY
from tests.support.databases import open_pool

# The master key of the servers tests start in processes (tests/support/servers.py sets ORDERS_SECRET).
SERVER_SECRET = "browser-test-secret"

_NAMES = ("Alice Martin", "Bruno Keller", "Chiara Rossi", "Dmitri Volkov", "Eun-ji Park", "Farah Haddad")
_STREETS = ("Station Road", "Mill Lane", "Harbour Street", "Linden Avenue", "Orchard Way")
_TOWNS = ("Ghent", "Leeds", "Graz", "Utrecht", "Lyon")


def app_master() -> MasterKey:
    """The master key of every app the tests build in process (tests/support/app.py)."""
    master = configured(str(TEST_MASTER_KEY), "")
    assert master is not None
    return master


def registration(customer_id: str) -> RegisterCustomer:
    """The registration of `customer_id`: a name, an email address and a shipping address of their own."""
    n = zlib.crc32(customer_id.encode())
    local = re.sub(r"[^a-z0-9]+", ".", customer_id.lower()).strip(".")[:40] or f"customer{n % 10_000}"
    address = f"{n % 200 + 1} {_STREETS[n % len(_STREETS)]}\n{_TOWNS[n % len(_TOWNS)]}"
    return RegisterCustomer(customer_id, _NAMES[n % len(_NAMES)], f"{local}@example.org", address)


async def ensure_customer(orders: Orders, customer_id: str) -> None:
    """Register `customer_id` unless they are registered already."""
    if await orders.customers.row(customer_id) is not None:
        return
    with contextlib.suppress(CustomerAlreadyRegistered):
        await orders.register_customer(registration(customer_id), Envelope(uuid4()))


async def ensure_customers(orders: Orders, customer_ids: Iterable[str]) -> None:
    for customer_id in dict.fromkeys(customer_ids):
        await ensure_customer(orders, customer_id)


def register_in(client: AsyncTestClient[Any], *customer_ids: str) -> None:
    """Register these customers in the app that `client` drives, through its own application layer.

    On the client's portal thread, where the app's pool lives and its requests run: the test's
    loop waits for it as it waits for a request.
    """
    client.blocking_portal.call(ensure_customers, client.app.state.services.orders, customer_ids)


async def register_with(pool: asyncpg.Pool, *customer_ids: str, master: MasterKey | None = None) -> None:
    """Register these customers in the pool's database, as a server there (by default one that
    `uvicorn_process` started) would: its master key wraps their keys."""
    await ensure_customers(Orders(pool, master=master or MasterKey.from_secret(SERVER_SECRET)), customer_ids)


async def register_at(url: str, *customer_ids: str, master: MasterKey | None = None) -> None:
    """`register_with` the database at `url`."""
    async with open_pool(url, max_size=2) as pool:
        await register_with(pool, *customer_ids, master=master)


def register_on(url: str, *customer_ids: str, master: MasterKey | None = None) -> None:
    """`register_at`, for synchronous tests and fixtures (servers in processes)."""
    asyncio.run(register_at(url, *customer_ids, master=master))


class SealedFor:
    """Equal to a value sealed with `customer_id`'s key (`pii:1:<customer id>:...`), whatever its
    nonce: how a personal field looks in a stored row, never in clear."""

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and is_sealed(other) and sealed_owner(other) == self.customer_id

    def __hash__(self) -> int:
        return hash(self.customer_id)

    def __repr__(self) -> str:
        return f"<a value sealed for {self.customer_id}>"
