"""What the JSON API reads and writes: msgspec Structs whose limits the OpenAPI document shows.

The limits and patterns are the domain's rules (domain/rules.py); the domain
checks them again and gives the messages (docs/architecture.md, "Refusals").
Money is a decimal string with its currency, never a float.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from domain.rules import (
    AMOUNT_PATTERN,
    CURRENCIES,
    CURRENCY_PATTERN,
    CUSTOMER_ID_PATTERN,
    EMAIL_PATTERN,
    MAX_ADDRESS,
    MAX_CUSTOMER_ID,
    MAX_EMAIL,
    MAX_ITEM_NAME,
    MAX_NOTE,
    MAX_PERSON_NAME,
    MAX_QUANTITY,
    MAX_REASON,
    MAX_SKU,
    MAX_UNIT_PRICE_CENTS,
    NOTE_PATTERN,
    REASON_PATTERN,
    SKU_PATTERN,
    TEXT_PATTERN,
)
from domain.serialization import STORED_TYPES

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_HIGHEST_PRICE = f"{MAX_UNIT_PRICE_CENTS // 100}.{MAX_UNIT_PRICE_CENTS % 100:02d}"

OrderId = Annotated[str, Meta(pattern=UUID_PATTERN, description="The order's id, a UUID.")]


def _text(most: int, pattern: str, description: str, example: str, least: int = 1) -> Meta:
    """A string field's limits, pattern and words, for the document and the decoder alike."""
    return Meta(
        min_length=least, max_length=most, pattern=pattern, description=description, examples=[example]
    )


CustomerId = Annotated[
    str,
    _text(
        MAX_CUSTOMER_ID,
        CUSTOMER_ID_PATTERN,
        f"1 to {MAX_CUSTOMER_ID} printable characters, not blank.",
        "customer-42",
    ),
]
Currency = Annotated[
    str,
    Meta(
        pattern=CURRENCY_PATTERN,
        description="An ISO 4217 code in capitals.",
        examples=["EUR"],
        extra_json_schema={"extra": {"enum": sorted(CURRENCIES)}},
    ),
]
Sku = Annotated[
    str, _text(MAX_SKU, SKU_PATTERN, f"1 to {MAX_SKU} letters, digits, '-', '_' or '.'.", "TEA-1")
]
ItemName = Annotated[
    str,
    _text(
        MAX_ITEM_NAME,
        TEXT_PATTERN,
        f"1 to {MAX_ITEM_NAME} characters, not blank, no control characters.",
        "Green tea",
    ),
]
Amount = Annotated[
    str,
    Meta(
        pattern=AMOUNT_PATTERN,
        description=f"A decimal string from 0.01 to {_HIGHEST_PRICE} with at most two decimals.",
        examples=["3.50"],
    ),
]
Note = Annotated[
    str,
    _text(
        MAX_NOTE,
        NOTE_PATTERN,
        f"A note on the line, such as an engraving: up to {MAX_NOTE} characters, no control characters.",
        "For Ada",
        least=0,
    ),
]
Quantity = Annotated[
    int, Meta(ge=1, le=MAX_QUANTITY, description=f"A whole number from 1 to {MAX_QUANTITY}.")
]
Reason = Annotated[
    str,
    _text(
        MAX_REASON,
        REASON_PATTERN,
        f"Why the order is cancelled: 1 to {MAX_REASON} characters, not blank; "
        "line breaks and tabs are allowed, other control characters are not.",
        "The customer changed their mind.",
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
PersonName = Annotated[
    str,
    _text(
        MAX_PERSON_NAME,
        TEXT_PATTERN,
        f"The customer's name: 1 to {MAX_PERSON_NAME} characters, not blank, no control characters. "
        "Personal data: stored encrypted, erased when the customer is forgotten.",
        "Ada Lovelace",
    ),
]
Email = Annotated[
    str,
    Meta(
        max_length=MAX_EMAIL,
        pattern=EMAIL_PATTERN,
        description=f"An email address such as name@example.com, at most {MAX_EMAIL} characters. "
        "Personal data.",
        examples=["ada@example.com"],
    ),
]
Address = Annotated[
    str,
    _text(
        MAX_ADDRESS,
        REASON_PATTERN,
        f"The shipping address: 1 to {MAX_ADDRESS} characters, not blank; line breaks and tabs are "
        "allowed, other control characters are not. Personal data.",
        "12 Analytical Row\nLondon",
    ),
]
ForgetReason = Annotated[
    str,
    _text(
        MAX_REASON,
        REASON_PATTERN,
        f"Why the customer is forgotten, recorded for good with who did it: 1 to {MAX_REASON} "
        "characters, not blank. No personal data here.",
        "Erasure request of 2026-12-01.",
    ),
]
EventType = Annotated[str, Meta(extra_json_schema={"extra": {"enum": sorted(STORED_TYPES)}})]
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


class RegisterCustomerBody(Struct, frozen=True):
    """A new customer; a customer's token registers itself only (its own id, whatever is sent)."""

    customer_id: CustomerId
    name: PersonName
    email: Email
    address: Address


class CustomerDetailsBody(Struct, frozen=True):
    """The customer's details as they are to be, all three."""

    name: PersonName
    email: Email
    address: Address


class ForgetCustomerBody(Struct, frozen=True):
    reason: ForgetReason


# ----------------------------------------------------------------- responses

ShipTo = Annotated[
    str,
    Meta(
        description="Where a placed order ships: the customer's address when it was placed, "
        '"[erased]" once the customer is forgotten (null before it is placed).'
    ),
]


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
    ship_to: ShipTo | None = None


class EventMetadata(Struct, frozen=True):
    """Who wrote the event and on which command: `actor` is the account's (or token's, or the
    system's) name, `actor_id` its id; events from before accounts existed say "anonymous"."""

    command_id: str
    correlation_id: str
    actor: str
    causation_id: str | None = None
    requested_at: str | None = None
    actor_id: str | None = None


class EventView(Struct, frozen=True):
    """One recorded event; `data` is its body in its current schema version (amounts in cents),
    personal fields opened ("[erased]" once their customer is forgotten)."""

    position: int
    order_id: OrderId | None  # null for a customer's event (see stream_id)
    version: int
    event_id: str
    type: EventType
    schema_version: int
    data: dict[str, Any]
    metadata: EventMetadata
    recorded_at: datetime
    stream_id: str = ""  # the order id, or customer:<customer id> for a customer's event


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


class CustomerView(Struct, frozen=True):
    """A customer; once forgotten, name, email and address read "[erased]" and `forgotten_reason` says why."""

    customer_id: str
    name: str
    email: str
    address: str
    status: Literal["registered", "forgotten"]
    version: int
    registered_at: datetime
    updated_at: datetime
    forgotten_reason: str | None = None


class CustomerPage(Struct, frozen=True):
    """Newest first; pass `next_after` as `after` for the next page (null: no more)."""

    customers: list[CustomerView]
    next_after: str | None


class LogPage(Struct, frozen=True):
    """The whole log in commit order; pass `next_after` as `after` to go on, or to poll."""

    events: list[EventView]
    next_after: str
    has_more: bool
