"""What a person types into the price and quantity fields, read as cents and counts."""

from __future__ import annotations

import pytest

from domain.errors import InvalidQuantity, InvalidUnitPrice, UnitPriceTooPrecise
from domain.money import format_amount, parse_amount
from domain.rules import parse_quantity


@pytest.mark.parametrize(
    ("text", "cents"),
    [("3.50", 350), ("3", 300), ("3.5", 350), ("0.01", 1), (" 3.50 ", 350), ("1000000.00", 100_000_000)],
)
def test_a_decimal_amount_is_read_as_cents(text: str, cents: int) -> None:
    assert parse_amount(text) == cents


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "-1",
        "+1",
        "abc",
        "NaN",
        "Infinity",
        "1e9",
        "1,50",
        "3.",
        ".5",
        "3.50 EUR",
        "1" * 33,
        "١٢",
        "３.５０",
    ],
)
def test_anything_but_digits_and_an_optional_point_is_refused(text: str) -> None:
    with pytest.raises(InvalidUnitPrice) as raised:
        parse_amount(text)
    assert type(raised.value) is InvalidUnitPrice
    assert "such as 3.50" in raised.value.message
    assert raised.value.field == "unit_price"


def test_more_than_two_decimals_is_refused() -> None:
    with pytest.raises(UnitPriceTooPrecise, match="has 3 decimals; a price has at most 2"):
        parse_amount("1.234")


@pytest.mark.parametrize(
    ("cents", "text"), [(350, "3.50"), (1, "0.01"), (100_000_000, "1,000,000.00"), (-5, "-0.05")]
)
def test_cents_are_shown_with_two_decimals(cents: int, text: str) -> None:
    assert format_amount(cents) == text


@pytest.mark.parametrize(("text", "quantity"), [("2", 2), (" 7 ", 7), ("999", 999), ("0", 0)])
def test_a_whole_number_is_read_as_a_quantity(text: str, quantity: int) -> None:
    assert parse_quantity(text) == quantity


@pytest.mark.parametrize("text", ["abc", "2.5", "", " ", "-1", "+1", "²", "١٢", "1e3", "1" * 7])
def test_anything_but_a_whole_number_is_refused_as_a_quantity(text: str) -> None:
    with pytest.raises(InvalidQuantity, match="whole number from 1 to 999") as raised:
        parse_quantity(text)
    assert raised.value.field == "quantity"
