"""The domain's words for a value the schema refused.

A field that fails its declared limits is checked again by the domain, on a
probe order where every other field is good, so the API answers with the same
sentence the pages show (DESIGN.md: one rule, one message).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.errors import DomainError, InvalidUnitPrice
from domain.money import check_currency, parse_amount
from domain.order import (
    AddItem,
    CancelOrder,
    CreateOrder,
    Line,
    Order,
    RemoveItem,
    decide,
    initial_state,
)
from domain.rules import MAX_QUANTITY, parse_quantity
from web import forms
from web.api.schemas import AddItemBody, CancelOrderBody, CreateOrderBody
from web.forms import FormError

PROBE_ID = "00000000-0000-0000-0000-000000000000"
_PROBE_LINE = Line("PROBE-1", "Probe", 100, MAX_QUANTITY)
_DRAFT = Order(PROBE_ID, "probe", "EUR", "draft", (_PROBE_LINE,), 2)

# Where the API's body puts what the domain calls a field.
API_FIELDS = {"unit_price": "unit_price.amount"}


class _NotExplained(Exception):
    """The value is not even of the right JSON type: the schema's own message says it best."""


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _NotExplained
    return value


def _quantity(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return parse_quantity(value if isinstance(value, str) else "")


def _cents(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise InvalidUnitPrice('Send the amount as a decimal string such as "3.50", never as a number.')
    return parse_amount(_text(value))


def order_id(raw: str) -> str:
    """The order id named in a URL, in its one written form (the pages' words when it is none)."""
    canonical = forms.order_id(raw)
    if canonical != raw.lower():
        raise FormError(f"“{raw[:80]}” is not an order id as the API writes them; use {canonical}.")
    return canonical


def quantity(raw: str) -> None:
    """A quantity to remove, as the query string gives it."""
    decide(RemoveItem(PROBE_ID, _PROBE_LINE.sku, parse_quantity(raw)), _DRAFT)


def sku(raw: str) -> None:
    """A SKU named in a URL."""
    _add_item("sku", raw)


def _create(field: str, value: Any) -> None:
    fields = {"customer_id": "probe", "currency": "EUR"}
    if field not in fields:
        return
    fields[field] = _text(value)
    decide(CreateOrder(PROBE_ID, **fields), initial_state)


def _add_item(field: str, value: Any) -> None:
    if field == "unit_price.currency":
        check_currency(_text(value))
        return
    sku, name, cents, count, note = "OTHER-1", "Probe", 100, 1, ""
    if field == "note":
        note = _text(value)
    elif field == "sku":
        sku = _text(value)
    elif field == "name":
        name = _text(value)
    elif field == "unit_price.amount":
        cents = _cents(value)
    elif field == "quantity":
        count = _quantity(value)
    decide(AddItem(PROBE_ID, sku, name, cents, count, note), _DRAFT)


def _cancel(field: str, value: Any) -> None:
    if field == "reason":
        decide(CancelOrder(PROBE_ID, _text(value)), _DRAFT)


_PROBES: dict[type, Callable[[str, Any], None]] = {
    CreateOrderBody: _create,
    AddItemBody: _add_item,
    CancelOrderBody: _cancel,
}


def body_field(body_type: type, field: str, value: Any) -> DomainError | None:
    """The domain's refusal of `value` as the body's `field`, if the domain has a rule for it."""
    probe = _PROBES.get(body_type)
    if probe is None:
        return None
    try:
        probe(field, value)
    except DomainError as error:
        named = error.field or ""
        return error if field in (API_FIELDS.get(named, named), f"unit_price.{named}") else None
    except _NotExplained:
        return None
    return None
