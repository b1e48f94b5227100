"""Each field's rule on its own: given a value, when its check reads it, it passes or says exactly why not.

The API's schema states the same limits and patterns; the last tests hold them to the rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from domain import rules
from domain.errors import (
    DomainError,
    InvalidCancelReason,
    InvalidCurrency,
    InvalidCustomerId,
    InvalidItemName,
    InvalidItemNote,
    InvalidQuantity,
    InvalidSku,
    InvalidUnitPrice,
    TooManyLines,
    UnitPriceNotPositive,
    UnitPriceTooHigh,
)
from domain.money import parse_amount
from web.api import schemas

Check = Callable[[Any], None]


def refused(check: Check, value: object, error: type[DomainError], says: str) -> None:
    with pytest.raises(DomainError) as raised:
        check(value)
    assert type(raised.value) is error
    assert raised.value.message == says


# ---------------------------------------------------------------- customer id

BLANK_CUSTOMER = "Give a customer id (1 to 64 printable characters); it cannot be blank."
UNPRINTABLE_CUSTOMER = "The customer id must be printable characters, with no control characters."


@pytest.mark.parametrize("customer_id", ["c", "c" * 64, "customer 7", "Zoë"])
def test_a_customer_id_of_1_to_64_printable_characters_passes(customer_id: str) -> None:
    rules.check_customer_id(customer_id)


@pytest.mark.parametrize(
    ("customer_id", "says"),
    [
        ("", BLANK_CUSTOMER),
        ("   ", BLANK_CUSTOMER),
        ("c" * 65, "The customer id must be at most 64 characters (this one has 65)."),
        ("cust\x00omer", UNPRINTABLE_CUSTOMER),
        ("cust\nomer", UNPRINTABLE_CUSTOMER),
        ("cust\x85omer", UNPRINTABLE_CUSTOMER),
    ],
    ids=["empty", "blank", "65", "nul", "newline", "c1"],
)
def test_a_customer_id_is_refused_in_words(customer_id: str, says: str) -> None:
    refused(rules.check_customer_id, customer_id, InvalidCustomerId, says)


# ------------------------------------------------------------------- currency


def test_a_known_currency_passes_and_another_is_refused() -> None:
    rules.check_currency("EUR")
    says = (
        "“eur” is not a currency code we know: use a three-letter "
        "ISO 4217 code in capitals, such as EUR, USD or GBP."
    )
    refused(rules.check_currency, "eur", InvalidCurrency, says)


def test_every_known_currency_fits_the_currency_pattern() -> None:
    assert all(re.fullmatch(rules.CURRENCY_PATTERN, code) for code in rules.CURRENCIES)


# ------------------------------------------------------------------------ SKU


@pytest.mark.parametrize("sku", ["S", "S" * 64, "TEA-1", "a.b_c-D9"])
def test_a_sku_of_1_to_64_letters_digits_dashes_underscores_or_dots_passes(sku: str) -> None:
    rules.check_sku(sku)


@pytest.mark.parametrize(
    ("sku", "length"),
    [("", 0), ("S" * 65, 65), ("TEA 1", 5), ("TEA/1", 5), ("tée", 3), ("TEA-1\n", 6)],
    ids=["empty", "65", "space", "slash", "accent", "trailing-newline"],
)
def test_a_sku_is_refused_with_its_length(sku: str, length: int) -> None:
    says = (
        f"A SKU is 1 to 64 characters: letters, digits, '-', '_' or '.' (this one has {length} characters)."
    )
    refused(rules.check_sku, sku, InvalidSku, says)


# ------------------------------------------------------------------ item name

BLANK_NAME = "Give the item a name (1 to 200 characters); it cannot be blank."
CONTROL_NAME = "The item name must not contain control characters."


@pytest.mark.parametrize("name", ["n", "n" * 200, '<b>Tea</b> & "cups"', "Thé\xa0vert"])
def test_an_item_name_of_1_to_200_characters_passes(name: str) -> None:
    rules.check_item_name(name)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", BLANK_NAME),
        (" \u3000 ", BLANK_NAME),
        ("n" * 201, "The item name must be at most 200 characters (this one has 201)."),
        ("Green\x00tea", CONTROL_NAME),
        ("Green\ttea", CONTROL_NAME),
        ("Green\x7ftea", CONTROL_NAME),
        ("Green\x9ftea", CONTROL_NAME),
    ],
    ids=["empty", "blank", "201", "nul", "tab", "del", "c1"],
)
def test_an_item_name_is_refused_in_words(name: str, says: str) -> None:
    refused(rules.check_item_name, name, InvalidItemName, says)


# ----------------------------------------------------------------- unit price


@pytest.mark.parametrize("cents", [1, 350, 100_000_000])
def test_a_unit_price_from_0_01_to_a_million_passes(cents: int) -> None:
    rules.check_unit_price(cents)


@pytest.mark.parametrize(
    ("cents", "error", "says"),
    [
        (0, UnitPriceNotPositive, "The unit price must be more than 0.00."),
        (-1, UnitPriceNotPositive, "The unit price must be more than 0.00."),
        (
            100_000_001,
            UnitPriceTooHigh,
            "The unit price must be at most 1,000,000.00 (this one is 1,000,000.01).",
        ),
    ],
)
def test_a_unit_price_is_refused_in_words(cents: int, error: type[DomainError], says: str) -> None:
    refused(rules.check_unit_price, cents, error, says)


def price_passes(text: str) -> bool:
    try:
        rules.check_unit_price(parse_amount(text))
    except InvalidUnitPrice:
        return False
    return True


@pytest.mark.parametrize(
    "text",
    ["0.01", "0.1", "0.10", "1", "3.50", "999999.99", "1000000", "1000000.0", "1000000.00",
     "0", "0.00", "0.001", "1.234", "1000000.01", "1000001", "9999999", "-1", "1e3", "3."],
)  # fmt: skip
def test_the_amount_pattern_takes_what_the_price_rule_takes(text: str) -> None:
    assert bool(re.fullmatch(rules.AMOUNT_PATTERN, text)) == price_passes(text)


# ------------------------------------------------------------------- quantity

QUANTITY = "The quantity must be a whole number from 1 to 999."


@pytest.mark.parametrize("quantity", [1, 2, 999])
def test_a_quantity_from_1_to_999_passes(quantity: int) -> None:
    rules.check_quantity(quantity)


@pytest.mark.parametrize("quantity", [0, -1, 1000])
def test_a_quantity_outside_1_to_999_is_refused(quantity: int) -> None:
    refused(rules.check_quantity, quantity, InvalidQuantity, QUANTITY)


def test_a_typed_quantity_is_read_then_checked() -> None:
    assert rules.parse_quantity(" 12 ") == 12
    refused(rules.parse_quantity, "2.5", InvalidQuantity, QUANTITY)


# ------------------------------------------------------------------ line note


@pytest.mark.parametrize("note", ["", "For Ada", "n" * 200])
def test_a_note_of_up_to_200_characters_passes(note: str) -> None:
    rules.check_note(note)


@pytest.mark.parametrize(("note", "length"), [("n" * 201, 201), ("For\x07Ada", 7), ("For\nAda", 7)])
def test_a_note_is_refused_with_its_length(note: str, length: int) -> None:
    says = f"A line note is at most 200 characters, without control characters (this one has {length})."
    refused(rules.check_note, note, InvalidItemNote, says)


# -------------------------------------------------------------- cancel reason


@pytest.mark.parametrize("reason", ["x", "x" * 500, "Changed\r\ntheir mind,\tsadly"])
def test_a_reason_of_1_to_500_characters_with_line_breaks_and_tabs_passes(reason: str) -> None:
    rules.check_cancel_reason(reason)


@pytest.mark.parametrize(
    ("reason", "says"),
    [
        ("", "Give a reason for the cancellation, 1 to 500 characters (this one has 0)."),
        (" \n\t ", "Give a reason for the cancellation, 1 to 500 characters (this one has 0)."),
        ("x" * 501, "Give a reason for the cancellation, 1 to 500 characters (this one has 501)."),
        ("No\x00", "The reason must not contain control characters."),
        ("No\x0b", "The reason must not contain control characters."),
        ("No\x85", "The reason must not contain control characters."),
    ],
    ids=["empty", "blank", "501", "nul", "vertical-tab", "c1"],
)
def test_a_reason_is_refused_in_words(reason: str, says: str) -> None:
    refused(rules.check_cancel_reason, reason, InvalidCancelReason, says)


# --------------------------------------------------------------- lines per order


def test_an_order_with_99_lines_has_room_for_one_more_and_one_with_100_has_none() -> None:
    rules.check_room_for_line(99)
    refused(rules.check_room_for_line, 100, TooManyLines, "An order has at most 100 lines; this one is full.")


# ------------------------------------------------------------ the patterns agree

# Every character that str.strip() or the control rule treats specially is below U+3001.
CHARACTERS = [chr(code) for code in range(0x3001)]


def test_a_character_is_a_control_for_the_pattern_exactly_when_it_is_for_the_check() -> None:
    for ch in CHARACTERS:
        assert rules.has_control(ch) == (re.fullmatch(rules.NO_CONTROL, ch) is None), hex(ord(ch))


def test_a_character_is_visible_for_the_pattern_exactly_when_it_is_neither_blank_nor_a_control() -> None:
    for ch in CHARACTERS:
        visible = bool(ch.strip()) and not rules.has_control(ch)
        assert (re.fullmatch(rules.VISIBLE, ch) is not None) == visible, hex(ord(ch))


def test_a_reason_pattern_allows_of_the_controls_only_tab_line_feed_and_carriage_return() -> None:
    allowed = {
        ch for ch in CHARACTERS if rules.has_control(ch) and re.fullmatch(rules.REASON_PATTERN, f"x{ch}")
    }
    assert allowed == {"\t", "\n", "\r"}


# ------------------------------------------------------------- the API's schema


def body_properties(body: type[msgspec.Struct]) -> dict[str, Any]:
    _, components = msgspec.json.schema_components([body])
    properties: dict[str, Any] = components[body.__name__]["properties"]
    return properties


def test_the_api_schema_states_the_rules_limits_and_patterns() -> None:
    create = body_properties(schemas.CreateOrderBody)
    assert create["customer_id"]["maxLength"] == rules.MAX_CUSTOMER_ID
    assert create["customer_id"]["pattern"] == rules.CUSTOMER_ID_PATTERN
    assert create["currency"]["pattern"] == rules.CURRENCY_PATTERN
    assert create["currency"]["extra"]["enum"] == sorted(rules.CURRENCIES)  # Litestar reads "extra"

    item = body_properties(schemas.AddItemBody)
    assert (item["sku"]["maxLength"], item["sku"]["pattern"]) == (rules.MAX_SKU, rules.SKU_PATTERN)
    assert (item["name"]["maxLength"], item["name"]["pattern"]) == (rules.MAX_ITEM_NAME, rules.TEXT_PATTERN)
    assert (item["quantity"]["minimum"], item["quantity"]["maximum"]) == (1, rules.MAX_QUANTITY)
    assert (item["note"]["maxLength"], item["note"]["pattern"]) == (rules.MAX_NOTE, rules.NOTE_PATTERN)
    assert body_properties(schemas.MoneyIn)["amount"]["pattern"] == rules.AMOUNT_PATTERN

    reason = body_properties(schemas.CancelOrderBody)["reason"]
    assert (reason["maxLength"], reason["pattern"]) == (rules.MAX_REASON, rules.REASON_PATTERN)


def test_the_rules_are_the_limits_the_issue_names() -> None:
    assert (rules.MAX_CUSTOMER_ID, rules.MAX_SKU, rules.MAX_ITEM_NAME, rules.MAX_NOTE) == (64, 64, 200, 200)
    assert (rules.MAX_REASON, rules.MAX_QUANTITY, rules.MAX_LINES) == (500, 999, 100)
    assert rules.MAX_UNIT_PRICE_CENTS == 100_000_000
    assert rules.SKU_PATTERN == "^[A-Za-z0-9._-]{1,64}$"
