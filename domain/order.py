"""The order, as a decider: commands, events, state, decide, evolve.

Pure: no I/O, no clock, no id generation. Ids arrive on the commands; time is
recorded by the store beside each event.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import ClassVar, Literal

from msgspec import Struct, structs

from domain.errors import (
    EmptyOrder,
    InvalidCancelReason,
    InvalidCustomerId,
    InvalidItemName,
    InvalidItemNote,
    InvalidQuantity,
    InvalidSku,
    ItemNotOnOrder,
    LineQuantityTooLarge,
    OrderAlreadyCancelled,
    OrderAlreadyExists,
    OrderNotDraft,
    OrderNotFound,
    PriceMismatch,
    RemoveQuantityTooLarge,
    TooManyLines,
    UnitPriceNotPositive,
    UnitPriceTooHigh,
)
from domain.money import check_currency, format_amount

MAX_LINES = 100
MAX_QUANTITY = 999
MAX_UNIT_PRICE_CENTS = 100_000_000
MAX_REASON = 500
MAX_NOTE = 200

# Commands, events and states are immutable values that never refer back to
# what holds them, so none can be in a reference cycle: `gc=False` keeps the
# garbage collector from scanning them (it took a third of a replay's time).

# ---------------------------------------------------------------- commands


class CreateOrder(Struct, frozen=True, gc=False):
    order_id: str
    customer_id: str
    currency: str


class AddItem(Struct, frozen=True, gc=False):
    order_id: str
    sku: str
    name: str
    unit_price_cents: int
    quantity: int
    note: str = ""


class RemoveItem(Struct, frozen=True, gc=False):
    order_id: str
    sku: str
    quantity: int | None = None


class PlaceOrder(Struct, frozen=True, gc=False):
    order_id: str


class CancelOrder(Struct, frozen=True, gc=False):
    order_id: str
    reason: str


Command = CreateOrder | AddItem | RemoveItem | PlaceOrder | CancelOrder

# ------------------------------------------------------------------ events


class OrderCreated(Struct, frozen=True, gc=False):
    schema_version: ClassVar[int] = 1
    order_id: str
    customer_id: str
    currency: str


class ItemAdded(Struct, frozen=True, gc=False):
    """Version 2 added `note` (a line note such as an engraving); version 1 rows read as note=""."""

    schema_version: ClassVar[int] = 2
    sku: str
    name: str
    unit_price_cents: int
    quantity: int
    note: str = ""


class ItemRemoved(Struct, frozen=True, gc=False):
    schema_version: ClassVar[int] = 1
    sku: str
    quantity: int


class OrderPlaced(Struct, frozen=True, gc=False):
    schema_version: ClassVar[int] = 1
    total_cents: int


class OrderCancelled(Struct, frozen=True, gc=False):
    schema_version: ClassVar[int] = 1
    reason: str


Event = OrderCreated | ItemAdded | ItemRemoved | OrderPlaced | OrderCancelled
EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls for cls in (OrderCreated, ItemAdded, ItemRemoved, OrderPlaced, OrderCancelled)
}

# ------------------------------------------------------------------- state

Status = Literal["none", "draft", "placed", "cancelled"]


class Line(Struct, frozen=True, gc=False):
    sku: str
    name: str
    unit_price_cents: int
    quantity: int
    note: str = ""

    @property
    def total_cents(self) -> int:
        return self.unit_price_cents * self.quantity


class Order(Struct, frozen=True, gc=False):
    order_id: str = ""
    customer_id: str = ""
    currency: str = ""
    status: Status = "none"
    lines: tuple[Line, ...] = ()
    version: int = 0
    cancel_reason: str | None = None

    @property
    def total_cents(self) -> int:
        return sum(line.total_cents for line in self.lines)

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)

    def line(self, sku: str) -> Line | None:
        for line in self.lines:  # a loop, not next(generator): this runs for every item event folded
            if line.sku == sku:
                return line
        return None


initial_state = Order()

# ------------------------------------------------------------------ decide

_SKU = re.compile(r"[A-Za-z0-9._-]{1,64}")


def decide(command: Command, state: Order) -> list[Event]:
    if isinstance(command, CreateOrder):
        return _create(command, state)
    if state.status == "none":
        raise OrderNotFound(f"There is no order {command.order_id}.")
    if isinstance(command, AddItem):
        return _add_item(command, state)
    if isinstance(command, RemoveItem):
        return _remove_item(command, state)
    if isinstance(command, PlaceOrder):
        _require_draft(state, "be placed")
        if not state.lines:
            raise EmptyOrder("An order needs at least one item before it can be placed.")
        return [OrderPlaced(total_cents=state.total_cents)]
    return _cancel(command, state)


def _create(command: CreateOrder, state: Order) -> list[Event]:
    if state.status != "none":
        raise OrderAlreadyExists(f"Order {command.order_id} already exists.")
    customer = command.customer_id
    if not customer.strip():
        raise InvalidCustomerId("Give a customer id (1 to 64 printable characters); it cannot be blank.")
    if len(customer) > 64:
        raise InvalidCustomerId(
            f"The customer id must be at most 64 characters (this one has {len(customer)})."
        )
    if not customer.isprintable():
        raise InvalidCustomerId("The customer id must be printable characters, with no control characters.")
    check_currency(command.currency)
    return [OrderCreated(command.order_id, customer, command.currency)]


def _add_item(command: AddItem, state: Order) -> list[Event]:
    _require_draft(state, "change its items")
    if not _SKU.fullmatch(command.sku):
        raise InvalidSku(
            "A SKU is 1 to 64 characters: letters, digits, '-', '_' or '.' "
            f"(this one has {len(command.sku)} characters)."
        )
    name = command.name
    if not name.strip():
        raise InvalidItemName("Give the item a name (1 to 200 characters); it cannot be blank.")
    if len(name) > 200:
        raise InvalidItemName(f"The item name must be at most 200 characters (this one has {len(name)}).")
    if _has_control(name):
        raise InvalidItemName("The item name must not contain control characters.")
    price = command.unit_price_cents
    if price <= 0:
        raise UnitPriceNotPositive("The unit price must be more than 0.00.")
    if price > MAX_UNIT_PRICE_CENTS:
        raise UnitPriceTooHigh(
            f"The unit price must be at most {format_amount(MAX_UNIT_PRICE_CENTS)} "
            f"(this one is {format_amount(price)})."
        )
    _check_quantity(command.quantity)
    if len(command.note) > MAX_NOTE or _has_control(command.note):
        raise InvalidItemNote(
            f"A line note is at most {MAX_NOTE} characters, without control characters "
            f"(this one has {len(command.note)})."
        )
    line = state.line(command.sku)
    if line is None:
        if len(state.lines) >= MAX_LINES:
            raise TooManyLines(f"An order has at most {MAX_LINES} lines; this one is full.")
    else:
        if line.unit_price_cents != price:
            raise PriceMismatch(
                f"{command.sku} is already on the order at {format_amount(line.unit_price_cents)} "
                f"{state.currency}; add it at that price or remove the line first."
            )
        if line.quantity + command.quantity > MAX_QUANTITY:
            raise LineQuantityTooLarge(
                f"{command.sku} already has {line.quantity}; a line holds at most "
                f"{MAX_QUANTITY}, so at most {MAX_QUANTITY - line.quantity} more can be added."
            )
    return [ItemAdded(command.sku, name, price, command.quantity, command.note)]


def _remove_item(command: RemoveItem, state: Order) -> list[Event]:
    _require_draft(state, "change its items")
    line = state.line(command.sku)
    if line is None:
        raise ItemNotOnOrder(f"{command.sku[:64]} is not on this order.")
    quantity = line.quantity if command.quantity is None else command.quantity
    _check_quantity(quantity)
    if quantity > line.quantity:
        raise RemoveQuantityTooLarge(
            f"The line for {line.sku} has {line.quantity}; you cannot remove {quantity}."
        )
    return [ItemRemoved(line.sku, quantity)]


def _cancel(command: CancelOrder, state: Order) -> list[Event]:
    if state.status == "cancelled":
        raise OrderAlreadyCancelled("This order is already cancelled.")
    reason = command.reason
    if not reason.strip() or len(reason) > MAX_REASON:
        raise InvalidCancelReason(
            f"Give a reason for the cancellation, 1 to {MAX_REASON} characters "
            f"(this one has {len(reason.strip())})."
        )
    if _has_control(reason.replace("\r", "").replace("\n", "").replace("\t", "")):
        raise InvalidCancelReason("The reason must not contain control characters.")
    return [OrderCancelled(reason)]


def _require_draft(state: Order, action: str) -> None:
    if state.status != "draft":
        raise OrderNotDraft(f"This order is {state.status}; only a draft order can {action}.")


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text)


def _check_quantity(quantity: int) -> None:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidQuantity(f"The quantity must be a whole number from 1 to {MAX_QUANTITY}.")


def parse_quantity(text: str) -> int:
    """Read a quantity typed into a form; anything but a whole number is refused."""
    text = text.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 6:
        raise InvalidQuantity(f"The quantity must be a whole number from 1 to {MAX_QUANTITY}.")
    return int(text)


# ------------------------------------------------------------------ evolve


def evolve(state: Order, event: Event) -> Order:
    version = state.version + 1
    if isinstance(event, OrderCreated):
        return Order(event.order_id, event.customer_id, event.currency, "draft", (), version)
    if isinstance(event, ItemAdded):
        line = state.line(event.sku)
        if line is None:
            line = Line(event.sku, event.name, event.unit_price_cents, event.quantity, event.note)
            lines = (*state.lines, line)
        else:
            merged = structs.replace(line, quantity=line.quantity + event.quantity)
            lines = tuple(merged if x.sku == event.sku else x for x in state.lines)
        return structs.replace(state, lines=lines, version=version)
    if isinstance(event, ItemRemoved):
        lines = tuple(
            structs.replace(x, quantity=x.quantity - event.quantity) if x.sku == event.sku else x
            for x in state.lines
        )
        lines = tuple(x for x in lines if x.quantity > 0)
        return structs.replace(state, lines=lines, version=version)
    if isinstance(event, OrderPlaced):
        return structs.replace(state, status="placed", version=version)
    return structs.replace(state, status="cancelled", cancel_reason=event.reason, version=version)


def fold(events: Iterable[Event], state: Order = initial_state) -> Order:
    for event in events:
        state = evolve(state, event)
    return state


def state_at(events: Iterable[Event], version: int) -> Order:
    """The order as it was after its first `version` events."""
    state = initial_state
    for event in events:
        if state.version >= version:
            break
        state = evolve(state, event)
    return state
