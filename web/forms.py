"""Form fields (docs/architecture.md, "The URL contract") into domain commands."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from uuid import UUID, uuid4

from domain.customer import ChangeCustomerDetails, ForgetCustomer, RegisterCustomer
from domain.money import parse_amount
from domain.order import AddItem, CancelOrder, CreateOrder, RemoveItem
from domain.rules import parse_quantity


class FormError(Exception):
    """A field that is not even of the right shape (not a business rule)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


Form = Mapping[str, str]

_LOST_PLUS = re.compile(r"(.+[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})")


def text(form: Form, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def filter_text(raw: str | None, most: int) -> str | None:
    """A list's text filter: trimmed, at most `most` characters, none when blank."""
    return (raw or "").strip()[:most] or None


def envelope(form: Form) -> tuple[UUID, int | None]:
    """The command id (made here when the client sent none) and the expected version, if any."""
    raw_id, raw_version = text(form, "command_id"), text(form, "expected_version")
    try:
        command_id = UUID(raw_id) if raw_id else uuid4()
    except ValueError:
        raise FormError("The form's command id is not a UUID; reload the page and try again.") from None
    if not raw_version:
        return command_id, None
    if not raw_version.isdigit() or not raw_version.isascii() or len(raw_version) > 9:
        raise FormError("The form's expected version is not a whole number; reload the page.")
    return command_id, int(raw_version)


def order_id(raw: str) -> str:
    """The canonical stream id of an order id from a URL, or FormError."""
    try:
        return str(UUID(raw))
    except ValueError:
        raise FormError(f"“{raw[:80]}” is not an order id.") from None


def create_order(form: Form, new_order_id: str) -> CreateOrder:
    return CreateOrder(new_order_id, text(form, "customer_id"), text(form, "currency").upper())


def add_item(form: Form, order: str) -> AddItem:
    return AddItem(
        order,
        sku=text(form, "sku"),
        name=text(form, "name"),
        unit_price_cents=parse_amount(text(form, "unit_price")),
        quantity=parse_quantity(text(form, "quantity")),
        note=text(form, "note"),
    )


def remove_item(form: Form, order: str, sku: str) -> RemoveItem:
    quantity = text(form, "quantity")
    return RemoveItem(order, sku, parse_quantity(quantity) if quantity else None)


def cancel_order(form: Form, order: str) -> CancelOrder:
    return CancelOrder(order, text(form, "reason"))


def register_customer(form: Form) -> RegisterCustomer:
    return RegisterCustomer(text(form, "customer_id"), *_details(form))


def change_customer(form: Form, customer_id: str) -> ChangeCustomerDetails:
    return ChangeCustomerDetails(customer_id, *_details(form))


def forget_customer(form: Form, customer_id: str) -> ForgetCustomer:
    return ForgetCustomer(customer_id, text(form, "reason"))


def _details(form: Form) -> tuple[str, str, str]:
    """Name, email and address; a textarea's CR LF line breaks read as LF."""
    address = text(form, "address").replace("\r\n", "\n").replace("\r", "\n")
    return text(form, "name"), text(form, "email"), address


def parse_version(raw: str) -> int:
    if not raw.lstrip("-").isdigit() or not raw.isascii() or len(raw) > 9:
        raise FormError(f"“{raw[:40]}” is not a version: versions are whole numbers from 1.", "version")
    version = int(raw)
    if version < 1:
        raise FormError(f"There is no version {version}: versions start at 1.", "version")
    return version


def parse_moment(raw: str) -> datetime:
    """An ISO 8601 moment; one without a time zone is read as UTC."""
    text = raw.strip()
    # "+01:00" typed into an address bar arrives as " 01:00": read it back as a plus.
    if plus_lost := _LOST_PLUS.fullmatch(text):
        text = f"{plus_lost[1]}+{plus_lost[2]}"
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise FormError(
            f"“{raw[:40]}” is not a moment: use ISO 8601, such as 2026-11-28T09:30:00+01:00.", "at"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
