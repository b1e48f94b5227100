"""Queries on OrderReadModel, the one-row-per-order table kept by the append itself."""

from __future__ import annotations

from datetime import datetime

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


class OrderPage(msgspec.Struct, frozen=True):
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
WHERE ($1::text IS NULL OR starts_with(customer_id, $1))
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

    async def list_orders(
        self,
        customer: str | None = None,
        status: str | None = None,
        after: str | None = None,
        limit: int = 25,
    ) -> OrderPage:
        rows = await self.pool.fetch(_LIST_ORDERS, customer or None, status or None, after or None, limit + 1)
        orders = [_summary(row) for row in rows[:limit]]
        next_after = orders[-1].order_id if len(rows) > limit else None
        return OrderPage(orders, next_after)
