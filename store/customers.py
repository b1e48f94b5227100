"""Customers' streams: their commands, their read model, and forgetting them.

A customer command is decided on the customer's stream (domain/customer.py),
its personal fields sealed with the customer's key (store/personal), and
appended in one transaction with the customer's row in `customers`; forgetting
deletes the key in that same transaction, and ends the sign-in of the accounts and
tokens bound to the customer (store/access/forgotten.py), so the CustomerForgotten
event, the key's deletion and the disabled accounts are never seen apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from domain.access import Actor
from domain.customer import (
    Customer,
    CustomerCommand,
    CustomerEvent,
    ForgetCustomer,
    RegisterCustomer,
    customer_stream,
    decide_customer,
    fold_customer,
)
from domain.errors import DomainError
from domain.rules import check_customer_id
from store.access.forgotten import end_sign_in
from store.log.event_store import EVENT_COLUMNS, ConcurrencyError, EventStore, Metadata, recorded_event
from store.personal import Keyring

RACE_RETRIES = 5


class CustomerResult(msgspec.Struct, frozen=True):
    """The customer after a command (personal fields sealed); `changed`: whether it wrote events."""

    customer: Customer
    changed: bool


class CustomerRow(msgspec.Struct, frozen=True):
    """A customer as the read model keeps them; personal fields sealed, or "" once forgotten."""

    customer_id: str
    name: str
    email: str
    address: str
    status: str
    version: int
    registered_at: datetime
    updated_at: datetime
    forgotten_reason: str | None


class CustomerPage(msgspec.Struct, frozen=True):
    customers: list[CustomerRow]
    next_after: str | None  # the cursor of the next page, if there is one


_ROW_COLUMNS = (
    "customer_id, name, email, address, status, version, registered_at, updated_at, forgotten_reason"
)

_UPSERT = """
INSERT INTO customers AS c (customer_id, name, email, address, status, version, registered_at, updated_at,
                            forgotten_reason)
VALUES ($1, $2, $3, $4, $5, $6, now(), now(), $7)
ON CONFLICT (customer_id) DO UPDATE SET
    name = EXCLUDED.name, email = EXCLUDED.email, address = EXCLUDED.address, status = EXCLUDED.status,
    version = EXCLUDED.version, updated_at = EXCLUDED.updated_at, forgotten_reason = EXCLUDED.forgotten_reason
"""

_DELETE_KEY = "DELETE FROM customer_keys WHERE customer_id = $1"

_ROW = f"SELECT {_ROW_COLUMNS} FROM customers WHERE customer_id = $1"

# The customer of an order, in one statement: what placing it needs.
_ROW_OF_ORDER = f"""
SELECT o.customer_id, {", ".join(f"c.{column}" for column in _ROW_COLUMNS.split(", ")[1:])}
FROM order_read_model o LEFT JOIN customers c ON c.customer_id = o.customer_id
WHERE o.order_id = $1
"""

# Newest first, keyset paged on (registered_at, customer_id); `after` is a customer id.
_PAGE = f"""
SELECT {_ROW_COLUMNS} FROM customers
WHERE ($1::text IS NULL OR (registered_at, customer_id) <
       (SELECT registered_at, customer_id FROM customers WHERE customer_id = $1))
  AND ($3::text IS NULL OR customer_id LIKE $3 || '%')
ORDER BY registered_at DESC, customer_id DESC
LIMIT $2
"""


def row_values(customer: Customer) -> tuple[object, ...]:
    """The read-model row of a customer state: a forgotten customer keeps no personal field."""
    forgotten = customer.status == "forgotten"
    personal = ("", "", "") if forgotten else (customer.name, customer.email, customer.address)
    return (customer.customer_id, *personal, customer.status, customer.version, customer.forgotten_reason)


class _Repeat(Exception):
    """The command id was handled before: roll back, and answer with the customer as they are."""


class Customers:
    """The customer streams of one database: load, handle, and the read model's rows."""

    def __init__(self, pool: asyncpg.Pool, keyring: Keyring) -> None:
        self.pool = pool
        self.keyring = keyring
        # No Notifier: the append notifies in its own statement, so listeners wake after the commit.
        self.store = EventStore(pool)

    async def load(self, customer_id: str) -> Customer:
        """The customer as their stream says, personal fields sealed (status "none": no such customer)."""
        return fold_customer(await self.store.read_customer_events(customer_stream(customer_id)))

    async def row(self, customer_id: str) -> CustomerRow | None:
        row = await self.pool.fetchrow(_ROW, customer_id)
        return None if row is None else CustomerRow(*row)

    async def row_of_order(self, order_id: str) -> tuple[str, CustomerRow | None] | None:
        """The order's customer id and their row (None: not registered); None when there is no order."""
        row = await self.pool.fetchrow(_ROW_OF_ORDER, order_id)
        if row is None:
            return None
        return row[0], None if row[1] is None else CustomerRow(*row)

    async def page(self, after: str | None, limit: int, prefix: str | None = None) -> CustomerPage:
        rows = await self.pool.fetch(_PAGE, after, limit + 1, prefix)
        found = [CustomerRow(*row) for row in rows[:limit]]
        return CustomerPage(found, found[-1].customer_id if len(rows) > limit else None)

    async def handle(
        self, command: CustomerCommand, *, command_id: UUID, actor: Actor, correlation_id: UUID | None = None
    ) -> CustomerResult:
        """Decide on the customer's stream and append, once per command id; a lost race is decided again."""
        metadata = Metadata(
            command_id=str(command_id),
            correlation_id=str(correlation_id or command_id),
            actor=actor.name,
            actor_id=actor.id,
        )
        check_customer_id(command.customer_id)  # before any query: PostgreSQL text holds no NUL
        stream = customer_stream(command.customer_id)
        for _ in range(RACE_RETRIES + 1):
            state = await self.load(command.customer_id)
            try:
                events = decide_customer(command, state)
            except DomainError:
                if await self.store.find_command(command_id) is not None:
                    return CustomerResult(state, False)
                raise
            if not events:
                if isinstance(command, ForgetCustomer):  # forgotten before: make sure the key is gone
                    await self.pool.execute(_DELETE_KEY, command.customer_id)
                    self.keyring.drop(command.customer_id)
                return CustomerResult(state, False)
            if isinstance(command, RegisterCustomer):
                await self.keyring.create(command.customer_id)
            else:
                await self.keyring.load([command.customer_id])
            sealed = [self._sealed(command.customer_id, event) for event in events]
            new_state = fold_customer(sealed, state)
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    appended = await self.store.append(
                        stream, state.version, sealed, command_id, metadata, conn=conn
                    )
                    if appended.duplicate:
                        raise _Repeat
                    await conn.execute(_UPSERT, *row_values(new_state))
                    if new_state.status == "forgotten":
                        await conn.execute(_DELETE_KEY, command.customer_id)
                        await end_sign_in(conn, command.customer_id, actor)
            except _Repeat:
                return CustomerResult(await self.load(command.customer_id), False)
            except ConcurrencyError:
                if await self.store.find_command(command_id) is not None:
                    return CustomerResult(await self.load(command.customer_id), False)
                continue
            if new_state.status == "forgotten":
                self.keyring.drop(command.customer_id)
            return CustomerResult(new_state, True)
        raise ConcurrencyError(stream, -1, -1)

    def _sealed(self, customer_id: str, event: CustomerEvent) -> CustomerEvent:
        return self.keyring.sealed(customer_id, event)


async def refold_customers(
    conn: asyncpg.Connection | PoolConnectionProxy, table: str, stream_ids: Sequence[str]
) -> int:
    """Write the rows of these customer streams into `table` from their events; the events read."""
    rows = await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = ANY($1::text[]) ORDER BY stream_id, version",
        list(stream_ids),
    )
    streams: dict[str, list[CustomerEvent]] = {}
    times: dict[str, tuple[datetime, datetime]] = {}
    for row in rows:
        recorded = recorded_event(row)
        streams.setdefault(recorded.stream_id, []).append(recorded.event)  # type: ignore[arg-type]
        first = times.get(recorded.stream_id, (recorded.recorded_at, recorded.recorded_at))[0]
        times[recorded.stream_id] = (first, recorded.recorded_at)
    for stream_id, events in streams.items():
        values = row_values(fold_customer(events))
        registered, updated = times[stream_id]
        await conn.execute(
            f"""
            INSERT INTO {table} (customer_id, name, email, address, status, version, forgotten_reason,
                                 registered_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (customer_id) DO UPDATE SET
                name = EXCLUDED.name, email = EXCLUDED.email, address = EXCLUDED.address,
                status = EXCLUDED.status, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at,
                forgotten_reason = EXCLUDED.forgotten_reason
            """,
            *values,
            registered,
            updated,
        )
    return len(rows)
