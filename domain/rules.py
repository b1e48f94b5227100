"""Each field's rule, stated once: its limits, its pattern and the sentence that refuses it.

`decide` calls these checks; the API's schema shows the same limits and
patterns, and explains a value its schema refused with the same check, so the
pages and the API say the same thing (docs/architecture.md, "Refusals").
Patterns are JSON Schema patterns: anchored, and read the same by Python's re.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable

from domain.errors import (
    InvalidAddress,
    InvalidCancelReason,
    InvalidCustomerId,
    InvalidEmail,
    InvalidForgetReason,
    InvalidInput,
    InvalidItemName,
    InvalidItemNote,
    InvalidPersonName,
    InvalidQuantity,
    InvalidSku,
    TooManyLines,
    UnitPriceNotPositive,
    UnitPriceTooHigh,
)
from domain.money import CURRENCIES as CURRENCIES
from domain.money import check_currency as check_currency
from domain.money import format_amount

MAX_CUSTOMER_ID = 64
MAX_SKU = 64
MAX_ITEM_NAME = 200
MAX_UNIT_PRICE_CENTS = 100_000_000
MAX_QUANTITY = 999
MAX_NOTE = 200
MAX_REASON = 500
MAX_LINES = 100
MAX_PERSON_NAME = 200
MAX_EMAIL = 254
MAX_ADDRESS = 500

# ------------------------------------------------------------ characters

# Control characters are C0, DEL and C1; a cancel reason may still break lines and tab.
_CONTROL = r"\x00-\x1f\x7f-\x9f"
_CONTROL_BUT_LAYOUT = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"

NO_CONTROL = f"[^{_CONTROL}]"
# A character that is neither a control nor white space (as str.strip() sees it):
# what makes a text not blank.
VISIBLE = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
TEXT_PATTERN = f"^{NO_CONTROL}*{VISIBLE}{NO_CONTROL}*$"
NOTE_PATTERN = f"^{NO_CONTROL}*$"
REASON_PATTERN = f"^[^{_CONTROL_BUT_LAYOUT}]*{VISIBLE}[^{_CONTROL_BUT_LAYOUT}]*$"
CURRENCY_PATTERN = "^[A-Z]{3}$"
# A mailbox as people type it: a local part without spaces, controls or '@', '@', and a domain
# of dot-separated labels ending in a top-level one of letters. Not all of RFC 5322 (no quoted
# local parts, no address literals), which no shop's customer needs.
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = f'^[^@\\s\\x00-\\x1f\\x7f-\\x9f"<>(),;:\\[\\]]{{1,64}}@(?:{_LABEL}\\.)+[A-Za-z]{{2,63}}$'


def _character_class(codes: Iterable[int]) -> str:
    """A class of these code points, written as literal ranges, so JSON Schema reads it as Python does."""
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    literal = {ord(c): f"\\{c}" for c in "\\]^-["}

    def char(code: int) -> str:
        return chr(code).translate(literal)

    return (
        "[" + "".join(char(low) if low == high else f"{char(low)}-{char(high)}" for low, high in ranges) + "]"
    )


# What check_customer_id accepts, as it reads it: characters str.isprintable() accepts, one of them
# kept by str.strip(). Built from those methods, so it is exact for the running Python's Unicode.
_PRINTABLE_CODES = [code for code in range(sys.maxunicode + 1) if chr(code).isprintable()]
CUSTOMER_ID_PATTERN = (
    f"^{_character_class(_PRINTABLE_CODES)}*"
    f"{_character_class(code for code in _PRINTABLE_CODES if not chr(code).isspace())}"
    f"{_character_class(_PRINTABLE_CODES)}*$"
)
del _PRINTABLE_CODES
SKU_PATTERN = f"^[A-Za-z0-9._-]{{1,{MAX_SKU}}}$"

# 0.01 to the highest price, at most two decimals, no sign, exponent or leading
# zeros. It reads the highest price as a power of ten, as 1000000.00 is.
_HIGHEST = MAX_UNIT_PRICE_CENTS // 100
AMOUNT_PATTERN = (
    f"^(?:[1-9][0-9]{{0,{len(str(_HIGHEST)) - 2}}}(?:\\.[0-9]{{1,2}})?"
    f"|{_HIGHEST}(?:\\.0{{1,2}})?"
    "|0\\.(?:[1-9][0-9]?|0[1-9]))$"
)

_HAS_CONTROL = re.compile(f"[{_CONTROL}]")
_HAS_CONTROL_BUT_LAYOUT = re.compile(f"[{_CONTROL_BUT_LAYOUT}]")
_SKU = re.compile(SKU_PATTERN)
_EMAIL = re.compile(EMAIL_PATTERN)


def has_control(text: str) -> bool:
    return _HAS_CONTROL.search(text) is not None


# ---------------------------------------------------------------- checks


def check_customer_id(customer_id: str) -> None:
    if not customer_id.strip():
        raise InvalidCustomerId(
            f"Give a customer id (1 to {MAX_CUSTOMER_ID} printable characters); it cannot be blank."
        )
    if len(customer_id) > MAX_CUSTOMER_ID:
        raise InvalidCustomerId(
            f"The customer id must be at most {MAX_CUSTOMER_ID} characters (this one has {len(customer_id)})."
        )
    if not customer_id.isprintable():
        raise InvalidCustomerId("The customer id must be printable characters, with no control characters.")


def check_sku(sku: str) -> None:
    if not _SKU.fullmatch(sku):
        raise InvalidSku(
            f"A SKU is 1 to {MAX_SKU} characters: letters, digits, '-', '_' or '.' "
            f"(this one has {len(sku)} characters)."
        )


def check_item_name(name: str) -> None:
    if not name.strip():
        raise InvalidItemName(f"Give the item a name (1 to {MAX_ITEM_NAME} characters); it cannot be blank.")
    if len(name) > MAX_ITEM_NAME:
        raise InvalidItemName(
            f"The item name must be at most {MAX_ITEM_NAME} characters (this one has {len(name)})."
        )
    if has_control(name):
        raise InvalidItemName("The item name must not contain control characters.")


def check_unit_price(cents: int) -> None:
    """The price in cents; reading it from text is domain/money.py's parse_amount."""
    if cents <= 0:
        raise UnitPriceNotPositive("The unit price must be more than 0.00.")
    if cents > MAX_UNIT_PRICE_CENTS:
        raise UnitPriceTooHigh(
            f"The unit price must be at most {format_amount(MAX_UNIT_PRICE_CENTS)} "
            f"(this one is {format_amount(cents)})."
        )


def check_quantity(quantity: int) -> None:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidQuantity(f"The quantity must be a whole number from 1 to {MAX_QUANTITY}.")


def parse_quantity(text: str) -> int:
    """Read a quantity typed into a form; anything but a whole number is refused."""
    text = text.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 6:
        raise InvalidQuantity(f"The quantity must be a whole number from 1 to {MAX_QUANTITY}.")
    return int(text)


def check_note(note: str) -> None:
    if len(note) > MAX_NOTE or has_control(note):
        raise InvalidItemNote(
            f"A line note is at most {MAX_NOTE} characters, without control characters "
            f"(this one has {len(note)})."
        )


def check_cancel_reason(reason: str) -> None:
    if not reason.strip() or len(reason) > MAX_REASON:
        raise InvalidCancelReason(
            f"Give a reason for the cancellation, 1 to {MAX_REASON} characters "
            f"(this one has {len(reason.strip())})."
        )
    if _HAS_CONTROL_BUT_LAYOUT.search(reason):
        raise InvalidCancelReason("The reason must not contain control characters.")


class InvalidSetAsideReason(InvalidInput):
    field = "reason"


def check_set_aside_reason(reason: str) -> None:
    """Why an admin skips a parked event or drops a parked message: recorded for good."""
    if not reason.strip() or len(reason) > MAX_REASON:
        raise InvalidSetAsideReason(
            f"Give a reason, 1 to {MAX_REASON} characters (this one has {len(reason.strip())}): "
            "it is recorded with your name."
        )
    if _HAS_CONTROL_BUT_LAYOUT.search(reason):
        raise InvalidSetAsideReason("The reason must not contain control characters.")


def check_room_for_line(line_count: int) -> None:
    """An order with `line_count` lines can take a new one."""
    if line_count >= MAX_LINES:
        raise TooManyLines(f"An order has at most {MAX_LINES} lines; this one is full.")


# ------------------------------------------------------------ customers


def check_person_name(name: str) -> None:
    if not name.strip():
        raise InvalidPersonName(f"Give the customer's name (1 to {MAX_PERSON_NAME} characters).")
    if len(name) > MAX_PERSON_NAME:
        raise InvalidPersonName(
            f"The name must be at most {MAX_PERSON_NAME} characters (this one has {len(name)})."
        )
    if has_control(name):
        raise InvalidPersonName("The name must not contain control characters.")


def check_email(email: str) -> None:
    if len(email) > MAX_EMAIL:
        raise InvalidEmail(f"An email address is at most {MAX_EMAIL} characters (this one has {len(email)}).")
    if not _EMAIL.fullmatch(email):
        raise InvalidEmail("Give an email address such as name@example.com.")


def check_address(address: str) -> None:
    if not address.strip():
        raise InvalidAddress(f"Give the shipping address (1 to {MAX_ADDRESS} characters).")
    if len(address) > MAX_ADDRESS:
        raise InvalidAddress(
            f"The address must be at most {MAX_ADDRESS} characters (this one has {len(address)})."
        )
    if _HAS_CONTROL_BUT_LAYOUT.search(address):
        raise InvalidAddress("The address must not contain control characters (line breaks are fine).")


def check_forget_reason(reason: str) -> None:
    """Why a customer is forgotten: recorded for good, with who did it."""
    if not reason.strip() or len(reason) > MAX_REASON:
        raise InvalidForgetReason(
            f"Give a reason for forgetting the customer, 1 to {MAX_REASON} characters "
            f"(this one has {len(reason.strip())})."
        )
    if _HAS_CONTROL_BUT_LAYOUT.search(reason):
        raise InvalidForgetReason("The reason must not contain control characters.")
