"""Queries on OrderReadModel, the one-row-per-order table kept by the append itself."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg
import msgspec


class OrderSummary(msgspec.Struct, frozen=True):
    order_id: str
    customer_id: str
    currency: str
    status: str
    line_count: int
    item_count: int
    total_cents: int
    version: int
    created_at: datetime
    updated_at: datetime


class OrderQuery(msgspec.Struct, frozen=True):
    """Which orders a list shows: newest first, the `limit` after the order `after`."""

    customer: str | None = None  # a prefix of the customer id, or the whole id when `exact`
    status: str | None = None
    after: str | None = None
    limit: int = 25
    exact: bool = False


class OrderList(msgspec.Struct, frozen=True):
    orders: list[OrderSummary]
    next_after: str | None


_FIELDS = (
    "order_id, customer_id, currency, status, line_count, item_count, total_cents, "
    "version, created_at, updated_at"
)

_GET_ORDER = f"SELECT {_FIELDS} FROM order_read_model WHERE order_id = $1"

# Customers match by prefix, so the list filters as a person types.
# Keyset paging, newest first. The cursor is the last order id of the previous
# page; its (created_at, order_id) pair is where the next page starts.
_LIST_ORDERS = f"""
SELECT {_FIELDS} FROM order_read_model
WHERE ($1::text IS NULL OR (CASE WHEN $5 THEN customer_id = $1 ELSE starts_with(customer_id, $1) END))
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR (created_at, order_id) <
       (SELECT created_at, order_id FROM order_read_model WHERE order_id = $3))
ORDER BY created_at DESC, order_id DESC
LIMIT $4
"""


def _summary(row: asyncpg.Record) -> OrderSummary:
    return OrderSummary(*row)


class ReadModel:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def get_order(self, order_id: str) -> OrderSummary | None:
        row = await self.pool.fetchrow(_GET_ORDER, order_id)
        return None if row is None else _summary(row)

    async def list_orders(self, query: OrderQuery) -> OrderList:
        if query.customer and "\x00" in query.customer:  # PostgreSQL text cannot hold NUL; no id has one
            return OrderList([], None)
        q = query
        rows = await self.pool.fetch(
            _LIST_ORDERS, q.customer or None, q.status or None, q.after or None, q.limit + 1, q.exact
        )
        orders = [_summary(row) for row in rows[: q.limit]]
        next_after = orders[-1].order_id if len(rows) > q.limit else None
        return OrderList(orders, next_after)

    async def order_ids_of(self, customer_id: str) -> set[str]:
        rows = await self.pool.fetch(
            "SELECT order_id FROM order_read_model WHERE customer_id = $1", customer_id
        )
        return {row[0] for row in rows}


class CustomerSummary(msgspec.Struct, frozen=True):
    customer_id: str
    draft: int
    placed: int
    cancelled: int
    placed_value: dict[str, int]
    last_activity: datetime


class DaySales(msgspec.Struct, frozen=True):
    day: date
    currency: str
    placed: int
    placed_cents: int
    cancelled: int
    cancelled_cents: int


_GET_CUSTOMER = """
SELECT customer_id, draft, placed, cancelled, placed_value::text, last_activity
FROM customer_summaries WHERE customer_id = $1
"""

_SALES = """
SELECT day, currency, placed, placed_cents, cancelled, cancelled_cents FROM sales_by_day
WHERE day > (now() AT TIME ZONE 'UTC')::date - $1::int
ORDER BY day, currency
"""


class Summaries:
    """Customer summaries and sales by day, kept by subscriptions (they may lag the log by a moment)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def customer_summary(self, customer_id: str) -> CustomerSummary | None:
        if "\x00" in customer_id:
            return None
        row = await self.pool.fetchrow(_GET_CUSTOMER, customer_id)
        if row is None:
            return None
        return CustomerSummary(row[0], row[1], row[2], row[3], msgspec.json.decode(row[4]), row[5])

    async def sales_by_day(self, days: int = 30) -> list[DaySales]:
        return [DaySales(*row) for row in await self.pool.fetch(_SALES, days)]
