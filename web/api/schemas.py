"""What the JSON API reads and writes: msgspec Structs whose limits the OpenAPI document shows.

The limits are the domain's rules (DESIGN.md); the domain checks them again and
gives the messages. Money is a decimal string with its currency, never a float.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from domain.money import CURRENCIES
from domain.order import EVENT_TYPES
from domain.rules import MAX_NOTE, MAX_QUANTITY, MAX_REASON

# No control characters (C0, DEL, C1), as the domain's rule.
_NO_CONTROL = r"[^\x00-\x1f\x7f-\x9f]"
# Not blank: at least one character that is neither a control nor white space.
_VISIBLE = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_TEXT = f"^{_NO_CONTROL}*{_VISIBLE}{_NO_CONTROL}*$"
# 0.01 to 1000000.00, at most two decimals, no sign, exponent or leading zeros.
_AMOUNT = r"^(?:[1-9][0-9]{0,5}(?:\.[0-9]{1,2})?|1000000(?:\.0{1,2})?|0\.(?:[1-9][0-9]?|0[1-9]))$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

OrderId = Annotated[str, Meta(pattern=UUID_PATTERN, description="The order's id, a UUID.")]
CustomerId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=_TEXT,
        description="1 to 64 printable characters, not blank.",
        examples=["customer-42"],
    ),
]
Currency = Annotated[
    str,
    Meta(
        pattern="^[A-Z]{3}$",
        description="An ISO 4217 code in capitals.",
        examples=["EUR"],
        extra_json_schema={"extra": {"enum": sorted(CURRENCIES)}},
    ),
]
Sku = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="1 to 64 letters, digits, '-', '_' or '.'.",
        examples=["TEA-1"],
    ),
]
ItemName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        pattern=_TEXT,
        description="1 to 200 characters, not blank, no control characters.",
        examples=["Green tea"],
    ),
]
Amount = Annotated[
    str,
    Meta(
        pattern=_AMOUNT,
        description="A decimal string from 0.01 to 1000000.00 with at most two decimals.",
        examples=["3.50"],
    ),
]
Note = Annotated[
    str,
    Meta(
        max_length=MAX_NOTE,
        pattern=f"^{_NO_CONTROL}*$",
        description="A note on the line, such as an engraving: up to 200 characters, no control characters.",
        examples=["For Ada"],
    ),
]
Quantity = Annotated[int, Meta(ge=1, le=MAX_QUANTITY, description="A whole number from 1 to 999.")]
Reason = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_REASON,
        pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*"
        r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
        r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$",
        description="Why the order is cancelled: 1 to 500 characters, not blank; "
        "line breaks and tabs are allowed, other control characters are not.",
        examples=["The customer changed their mind."],
    ),
]
ExpectedVersion = Annotated[
    int,
    Meta(
        ge=0,
        le=2**31 - 1,
        description="The version the client decided on; 409 when the order is no longer at it. "
        "The If-Match header does the same with 412.",
        # Litestar 2.25 drops a falsy bound (ge=0) of an optional field from the document.
        extra_json_schema={"extra": {"minimum": 0}},
    ),
]
EventType = Annotated[str, Meta(extra_json_schema={"extra": {"enum": sorted(EVENT_TYPES)}})]
Status = Literal["draft", "placed", "cancelled"]

# ------------------------------------------------------------------ requests


class MoneyIn(Struct, frozen=True):
    """An amount with its currency, which must be the order's."""

    amount: Amount
    currency: Currency


class CreateOrderBody(Struct, frozen=True):
    customer_id: CustomerId
    currency: Currency


class AddItemBody(Struct, frozen=True):
    sku: Sku
    name: ItemName
    unit_price: MoneyIn
    quantity: Quantity
    note: Note = ""
    expected_version: ExpectedVersion | None = None


class PlaceOrderBody(Struct, frozen=True):
    expected_version: ExpectedVersion | None = None


class CancelOrderBody(Struct, frozen=True):
    reason: Reason
    expected_version: ExpectedVersion | None = None


# ----------------------------------------------------------------- responses


class Money(Struct, frozen=True):
    amount: Annotated[str, Meta(pattern=r"^-?[0-9]+\.[0-9]{2}$", examples=["3.50"])]
    currency: str


class LineView(Struct, frozen=True):
    sku: str
    name: str
    quantity: int
    unit_price: Money
    total: Money
    note: str


class OrderView(Struct, frozen=True):
    """The order as it was after `version` events; `latest_version` is its version now."""

    order_id: OrderId
    customer_id: str
    status: Status
    lines: list[LineView]
    item_count: int
    total: Money
    version: int
    latest_version: int
    cancel_reason: str | None = None


class EventMetadata(Struct, frozen=True):
    command_id: str
    correlation_id: str
    actor: str
    causation_id: str | None = None
    requested_at: str | None = None


class EventView(Struct, frozen=True):
    """One recorded event; `data` is its body in its current schema version (amounts in cents)."""

    position: int
    order_id: OrderId
    version: int
    event_id: str
    type: EventType
    schema_version: int
    data: dict[str, Any]
    metadata: EventMetadata
    recorded_at: datetime


class WriteResult(Struct, frozen=True):
    """The order after the command, its new version (also the ETag) and the events written."""

    order: OrderView
    version: int
    events: list[EventView]


class OrderSummary(Struct, frozen=True):
    order_id: OrderId
    customer_id: str
    status: Status
    line_count: int
    item_count: int
    total: Money
    version: int
    created_at: datetime
    updated_at: datetime


class OrderPage(Struct, frozen=True):
    """Newest first; pass `next_after` as `after` for the next page (null: no more)."""

    orders: list[OrderSummary]
    next_after: OrderId | None


class StreamPage(Struct, frozen=True):
    """One order's events by version; pass `next_after` as `after` to go on."""

    events: list[EventView]
    next_after: int
    has_more: bool


class LogPage(Struct, frozen=True):
    """The whole log in commit order; pass `next_after` as `after` to go on, or to poll."""

    events: list[EventView]
    next_after: str
    has_more: bool
