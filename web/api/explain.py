"""The domain's words for a value the schema refused.

A body field that breaks its declared limits is checked again by its own rule
in domain/rules.py, so the API answers with the same sentence the pages show
(docs/architecture.md, "Refusals": one rule, one message).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain import rules
from domain.errors import DomainError, InvalidUnitPrice
from domain.money import parse_amount
from web import forms
from web.api.schemas import (
    AddItemBody,
    CancelOrderBody,
    CreateOrderBody,
    CustomerDetailsBody,
    ForgetCustomerBody,
    RegisterCustomerBody,
)
from web.forms import FormError

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
    return rules.parse_quantity(value if isinstance(value, str) else "")


def _cents(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise InvalidUnitPrice('Send the amount as a decimal string such as "3.50", never as a number.')
    return parse_amount(_text(value))


_DETAILS: dict[str, Callable[[Any], None]] = {
    "name": lambda value: rules.check_person_name(_text(value)),
    "email": lambda value: rules.check_email(_text(value)),
    "address": lambda value: rules.check_address(_text(value)),
}

# Each body's fields, as the API names them, with the rule that checks the value sent.
_RULES: dict[type, dict[str, Callable[[Any], None]]] = {
    CreateOrderBody: {
        "customer_id": lambda value: rules.check_customer_id(_text(value)),
        "currency": lambda value: rules.check_currency(_text(value)),
    },
    AddItemBody: {
        "sku": lambda value: rules.check_sku(_text(value)),
        "name": lambda value: rules.check_item_name(_text(value)),
        "unit_price.amount": lambda value: rules.check_unit_price(_cents(value)),
        "unit_price.currency": lambda value: rules.check_currency(_text(value)),
        "quantity": lambda value: rules.check_quantity(_quantity(value)),
        "note": lambda value: rules.check_note(_text(value)),
    },
    CancelOrderBody: {
        "reason": lambda value: rules.check_cancel_reason(_text(value)),
    },
    RegisterCustomerBody: {
        "customer_id": lambda value: rules.check_customer_id(_text(value)),
        **_DETAILS,
    },
    CustomerDetailsBody: _DETAILS,
    ForgetCustomerBody: {
        "reason": lambda value: rules.check_forget_reason(_text(value)),
    },
}


def order_id(raw: str) -> str:
    """The order id named in a URL, in its one written form (the pages' words when it is none)."""
    canonical = forms.order_id(raw)
    if canonical != raw.lower():
        raise FormError(f"“{raw[:80]}” is not an order id as the API writes them; use {canonical}.")
    return canonical


def quantity(raw: str) -> None:
    """A quantity to remove, as the query string gives it."""
    rules.check_quantity(rules.parse_quantity(raw))


def sku(raw: str) -> None:
    """A SKU named in a URL."""
    rules.check_sku(raw)


def body_field(body_type: type, field: str, value: Any) -> DomainError | None:
    """The domain's refusal of `value` as the body's `field`, if the domain has a rule for it."""
    check = _RULES.get(body_type, {}).get(field)
    if check is None:
        return None
    try:
        check(value)
    except DomainError as error:
        return error
    except _NotExplained:
        return None
    return None
