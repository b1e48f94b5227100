"""Orders, events and read-model rows as the JSON API shows them."""

from __future__ import annotations

from typing import Any

import msgspec

from domain.customer import is_customer_stream
from domain.order import Order
from store.application import CustomerView as Customer
from store.log.event_store import RecordedEvent
from store.read import read_model
from web.api.schemas import (
    CustomerView,
    EventMetadata,
    EventView,
    LineView,
    Money,
    OrderSummary,
    OrderView,
)


def amount(cents: int) -> str:
    """Cents as a plain decimal string: 350 -> "3.50" (no grouping, unlike the pages)."""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole}.{fraction:02d}"


def money(cents: int, currency: str) -> Money:
    return Money(amount(cents), currency)


def order_view(order: Order, latest_version: int) -> OrderView:
    currency = order.currency
    lines = [
        LineView(
            line.sku,
            line.name,
            line.quantity,
            money(line.unit_price_cents, currency),
            money(line.total_cents, currency),
            line.note,
        )
        for line in order.lines
    ]
    status: Any = order.status
    return OrderView(
        order_id=order.order_id,
        customer_id=order.customer_id,
        status=status,
        lines=lines,
        item_count=order.item_count,
        total=money(order.total_cents, currency),
        version=order.version,
        latest_version=latest_version,
        cancel_reason=order.cancel_reason,
        ship_to=order.ship_to or None,
    )


def event_view(recorded: RecordedEvent) -> EventView:
    metadata = recorded.metadata
    return EventView(
        position=recorded.position,
        order_id=None if is_customer_stream(recorded.stream_id) else recorded.stream_id,
        version=recorded.version,
        event_id=str(recorded.event_id),
        type=recorded.type,
        schema_version=type(recorded.event).schema_version,
        data=msgspec.to_builtins(recorded.event),
        metadata=EventMetadata(**msgspec.structs.asdict(metadata)),
        recorded_at=recorded.recorded_at,
        stream_id=recorded.stream_id,
    )


def summary_view(row: read_model.OrderSummary) -> OrderSummary:
    status: Any = row.status
    return OrderSummary(
        order_id=row.order_id,
        customer_id=row.customer_id,
        status=status,
        line_count=row.line_count,
        item_count=row.item_count,
        total=money(row.total_cents, row.currency),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def customer_view(customer: Customer) -> CustomerView:
    status: Any = customer.status
    return CustomerView(
        customer_id=customer.customer_id,
        name=customer.name,
        email=customer.email,
        address=customer.address,
        status=status,
        version=customer.version,
        registered_at=customer.registered_at,
        updated_at=customer.updated_at,
        forgotten_reason=customer.forgotten_reason,
    )
