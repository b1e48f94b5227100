"""The same order in the `eventsourcing` library (PyPI), as its documentation would have one write it.

Rules are checked in the command methods; the @event methods only change state, so replaying
the stored events rebuilds the aggregate without re-checking them.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.lab import libpq_params


class RuleBroken(Exception):
    pass


class Order(Aggregate):
    @event("Created")
    def __init__(self, customer_id: str, currency: str) -> None:
        self.customer_id = customer_id
        self.currency = currency
        self.status = "draft"
        # sku -> [name, unit price in cents, quantity]
        self.lines: dict[str, list[Any]] = {}

    def add_item(self, sku: str, name: str, unit_price_cents: int, quantity: int) -> None:
        if self.status != "draft":
            raise RuleBroken("only a draft order can change its items")
        if not 0 < unit_price_cents <= 100_000_000 or not 1 <= quantity <= 999:
            raise RuleBroken("bad price or quantity")
        line = self.lines.get(sku)
        if line is None and len(self.lines) >= 100:
            raise RuleBroken("at most 100 lines")
        if line is not None and (line[1] != unit_price_cents or line[2] + quantity > 999):
            raise RuleBroken("same price, at most 999 on a line")
        self._item_added(sku, name, unit_price_cents, quantity)

    @event("ItemAdded")
    def _item_added(self, sku: str, name: str, unit_price_cents: int, quantity: int) -> None:
        line = self.lines.get(sku)
        if line is None:
            self.lines[sku] = [name, unit_price_cents, quantity]
        else:
            line[2] += quantity

    def place(self) -> None:
        if self.status != "draft" or not self.lines:
            raise RuleBroken("only a draft order with lines can be placed")
        self._placed(sum(price * quantity for _, price, quantity in self.lines.values()))

    @event("Placed")
    def _placed(self, total_cents: int) -> None:
        self.status = "placed"
        self.total_cents = total_cents


class Orders(Application[UUID]):
    """One get-and-save per command, as the library's examples do."""

    def create_order(self, customer_id: str, currency: str) -> UUID:
        order = Order(customer_id, currency)
        self.save(order)
        return order.id

    def add_item(self, order_id: UUID, sku: str, name: str, unit_price_cents: int, quantity: int) -> None:
        order: Order = self.repository.get(order_id)
        order.add_item(sku, name, unit_price_cents, quantity)
        self.save(order)

    def place(self, order_id: UUID) -> None:
        order: Order = self.repository.get(order_id)
        order.place()
        self.save(order)

    def get_order(self, order_id: UUID) -> Order:
        order: Order = self.repository.get(order_id)
        return order


def orders_app(database_url: str, pool_size: int) -> Orders:
    """The library's application on its PostgreSQL persistence, in the database `database_url` names."""
    params = libpq_params(database_url)
    return Orders(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": params["dbname"],
            "POSTGRES_HOST": params["host"],
            "POSTGRES_PORT": params["port"],
            "POSTGRES_USER": params["user"],
            "POSTGRES_PASSWORD": params["password"],
            "POSTGRES_POOL_SIZE": str(pool_size),
            "POSTGRES_MAX_OVERFLOW": "0",
            "IS_SNAPSHOTTING_ENABLED": "no",
        }
    )
