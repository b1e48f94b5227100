"""The order, as a decider: commands, events, state, decide, evolve.

Pure: no I/O, no clock, no id generation. Ids arrive on the commands; time is
recorded by the store beside each event.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Literal, assert_never

from msgspec import Struct, structs

from domain.errors import (
    EmptyOrder,
    ItemNotOnOrder,
    LineQuantityTooLarge,
    OrderAlreadyCancelled,
    OrderAlreadyExists,
    OrderNotDraft,
    OrderNotFound,
    PriceMismatch,
    RemoveQuantityTooLarge,
)
from domain.money import format_amount
from domain.rules import (
    MAX_QUANTITY,
    MAX_SKU,
    check_cancel_reason,
    check_currency,
    check_customer_id,
    check_item_name,
    check_note,
    check_quantity,
    check_room_for_line,
    check_sku,
    check_unit_price,
)

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
    """`ship_to` is the customer's shipping address, which the application layer fills in."""

    order_id: str
    ship_to: str = ""


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
    """Version 2 added `ship_to` (the address it ships to, personal data); version 1 rows read as ""."""

    schema_version: ClassVar[int] = 2
    total_cents: int
    ship_to: str = ""


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
    ship_to: str = ""

    @property
    def total_cents(self) -> int:
        # Line.total_cents spelt out: this runs for every order row a rebuild writes.
        return sum([line.unit_price_cents * line.quantity for line in self.lines])

    @property
    def item_count(self) -> int:
        return sum([line.quantity for line in self.lines])

    def line(self, sku: str) -> Line | None:
        for line in self.lines:  # a loop, not next(generator): this runs for every item event folded
            if line.sku == sku:
                return line
        return None


initial_state = Order()

# ------------------------------------------------------------------ decide


def decide(command: Command, state: Order) -> list[Event]:
    if state.status == "none" and not isinstance(command, CreateOrder):
        raise OrderNotFound(f"There is no order {command.order_id}.")
    match command:
        case CreateOrder():
            return _create(command, state)
        case AddItem():
            return _add_item(command, state)
        case RemoveItem():
            return _remove_item(command, state)
        case PlaceOrder():
            return _place(command, state)
        case CancelOrder():
            return _cancel(command, state)
        case _:
            assert_never(command)


def _create(command: CreateOrder, state: Order) -> list[Event]:
    if state.status != "none":
        raise OrderAlreadyExists(f"Order {command.order_id} already exists.")
    check_customer_id(command.customer_id)
    check_currency(command.currency)
    return [OrderCreated(command.order_id, command.customer_id, command.currency)]


def _add_item(command: AddItem, state: Order) -> list[Event]:
    _require_draft(state, "change its items")
    check_sku(command.sku)
    check_item_name(command.name)
    price = command.unit_price_cents
    check_unit_price(price)
    check_quantity(command.quantity)
    check_note(command.note)
    line = state.line(command.sku)
    if line is None:
        check_room_for_line(len(state.lines))
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
    return [ItemAdded(command.sku, command.name, price, command.quantity, command.note)]


def _remove_item(command: RemoveItem, state: Order) -> list[Event]:
    _require_draft(state, "change its items")
    line = state.line(command.sku)
    if line is None:
        raise ItemNotOnOrder(f"{command.sku[:MAX_SKU]} is not on this order.")
    quantity = line.quantity if command.quantity is None else command.quantity
    check_quantity(quantity)
    if quantity > line.quantity:
        raise RemoveQuantityTooLarge(
            f"The line for {line.sku} has {line.quantity}; you cannot remove {quantity}."
        )
    return [ItemRemoved(line.sku, quantity)]


def _place(command: PlaceOrder, state: Order) -> list[Event]:
    _require_draft(state, "be placed")
    if not state.lines:
        raise EmptyOrder("An order needs at least one item before it can be placed.")
    return [OrderPlaced(total_cents=state.total_cents, ship_to=command.ship_to)]


def _cancel(command: CancelOrder, state: Order) -> list[Event]:
    if state.status == "cancelled":
        raise OrderAlreadyCancelled("This order is already cancelled.")
    check_cancel_reason(command.reason)
    return [OrderCancelled(command.reason)]


def _require_draft(state: Order, action: str) -> None:
    if state.status != "draft":
        raise OrderNotDraft(f"This order is {state.status}; only a draft order can {action}.")


# ------------------------------------------------------------------ evolve


def evolve(state: Order, event: Event) -> Order:
    version = state.version + 1
    match event:  # items first: most events are
        case ItemAdded():
            line = state.line(event.sku)
            if line is None:
                line = Line(event.sku, event.name, event.unit_price_cents, event.quantity, event.note)
                lines = (*state.lines, line)
            else:
                merged = structs.replace(line, quantity=line.quantity + event.quantity)
                lines = tuple([merged if x.sku == event.sku else x for x in state.lines])
            return _with_lines(state, lines, version)
        case ItemRemoved():
            lines = tuple(
                structs.replace(x, quantity=x.quantity - event.quantity) if x.sku == event.sku else x
                for x in state.lines
            )
            lines = tuple(x for x in lines if x.quantity > 0)
            return _with_lines(state, lines, version)
        case OrderCreated():
            return Order(event.order_id, event.customer_id, event.currency, "draft", (), version)
        case OrderPlaced():
            return structs.replace(state, status="placed", ship_to=event.ship_to, version=version)
        case OrderCancelled():
            return structs.replace(state, status="cancelled", cancel_reason=event.reason, version=version)
        case _:
            assert_never(event)


def _with_lines(state: Order, lines: tuple[Line, ...], version: int) -> Order:
    """structs.replace(state, lines=lines, version=version) spelt out: most events folded are items."""
    return Order(
        state.order_id,
        state.customer_id,
        state.currency,
        state.status,
        lines,
        version,
        state.cancel_reason,
        state.ship_to,
    )


def fold(events: Iterable[Event], state: Order = initial_state) -> Order:
    """The state after `events`: `evolve` applied to each in turn.

    The same result as that loop, without making an Order and a tuple of
    lines for every event: the lines are kept by SKU on the way (a dict keeps
    the order they were added in) and the Order is made once, at the end.
    """
    lines = {line.sku: line for line in state.lines}
    if len(lines) != len(state.lines):  # two lines of one SKU: no state evolve makes has them
        for event in events:
            state = evolve(state, event)
        return state
    order_id, customer_id, currency, status = state.order_id, state.customer_id, state.currency, state.status
    version, cancel_reason, ship_to = state.version, state.cancel_reason, state.ship_to
    for event in events:
        version += 1
        if isinstance(event, ItemAdded):
            line = lines.get(event.sku)
            if line is None:
                line = Line(event.sku, event.name, event.unit_price_cents, event.quantity, event.note)
            else:
                quantity = line.quantity + event.quantity
                line = Line(line.sku, line.name, line.unit_price_cents, quantity, line.note)
            lines[event.sku] = line
        elif isinstance(event, OrderCreated):
            order_id, customer_id, currency = event.order_id, event.customer_id, event.currency
            status, lines, cancel_reason, ship_to = "draft", {}, None, ""
        elif isinstance(event, ItemRemoved):
            line = lines.get(event.sku)
            if line is not None:
                lines[event.sku] = structs.replace(line, quantity=line.quantity - event.quantity)
            lines = {sku: line for sku, line in lines.items() if line.quantity > 0}
        elif isinstance(event, OrderPlaced):
            status, ship_to = "placed", event.ship_to
        elif isinstance(event, OrderCancelled):
            status, cancel_reason = "cancelled", event.reason
        else:
            assert_never(event)
    if version == state.version:
        return state
    return Order(
        order_id, customer_id, currency, status, tuple(lines.values()), version, cancel_reason, ship_to
    )


def state_at(events: Iterable[Event], version: int) -> Order:
    """The order as it was after its first `version` events."""
    state = initial_state
    for event in events:
        if state.version >= version:
            break
        state = evolve(state, event)
    return state
