"""CreateOrder and AddItem, as scenarios: given past events, when a command, then events or an error."""

from __future__ import annotations

import pytest

from domain.errors import (
    DomainError,
    InvalidCurrency,
    InvalidCustomerId,
    InvalidItemName,
    InvalidQuantity,
    InvalidSku,
    LineQuantityTooLarge,
    OrderAlreadyExists,
    OrderNotFound,
    PriceMismatch,
    TooManyLines,
    UnitPriceNotPositive,
    UnitPriceTooHigh,
)
from domain.order import (
    AddItem,
    CancelOrder,
    Command,
    CreateOrder,
    Event,
    ItemAdded,
    Line,
    OrderCreated,
    PlaceOrder,
    RemoveItem,
    decide,
    fold,
)
from tests.support.decider import CREATED, ORDER, given, refused


def add(sku: str = "TEA-1", name: str = "Green tea", price: int = 350, quantity: int = 1) -> AddItem:
    return AddItem(ORDER, sku, name, price, quantity)


def added(sku: str = "TEA-1", name: str = "Green tea", price: int = 350, quantity: int = 1) -> ItemAdded:
    return ItemAdded(sku, name, price, quantity)


def lines(count: int) -> list[Event]:
    return [added(sku=f"SKU-{i}") for i in range(count)]


# ---------------------------------------------------------------- CreateOrder


def test_a_new_order_is_created() -> None:
    assert decide(CreateOrder(ORDER, "customer-7", "EUR"), given()) == [CREATED]


def test_an_existing_order_cannot_be_created_again() -> None:
    refused(CreateOrder(ORDER, "customer-8", "USD"), given(CREATED), OrderAlreadyExists, "already exists")


@pytest.mark.parametrize(
    "customer_id",
    ["", "c" * 65, "cust\x00omer", "cust\nomer", "\x1b[31m", "cust\x85omer"],
    ids=["empty", "65-chars", "nul", "newline", "escape", "c1-control"],
)
def test_a_customer_id_must_be_1_to_64_printable_characters(customer_id: str) -> None:
    error = refused(CreateOrder(ORDER, customer_id, "EUR"), given(), InvalidCustomerId, "customer id")
    assert error.field == "customer_id"


def test_a_64_character_customer_id_is_accepted() -> None:
    customer = "c" * 64
    assert decide(CreateOrder(ORDER, customer, "EUR"), given()) == [OrderCreated(ORDER, customer, "EUR")]


@pytest.mark.parametrize("currency", ["XYZ", "eur", "", "EURO", "€"])
def test_the_currency_must_be_a_known_iso_4217_code(currency: str) -> None:
    error = refused(CreateOrder(ORDER, "customer-7", currency), given(), InvalidCurrency, "ISO 4217")
    assert "EUR" in error.message
    assert error.field == "currency"


@pytest.mark.parametrize(
    "command",
    [add(), RemoveItem(ORDER, "TEA-1"), PlaceOrder(ORDER), CancelOrder(ORDER, "changed my mind")],
    ids=["add", "remove", "place", "cancel"],
)
def test_commands_on_an_order_that_does_not_exist_are_refused(command: Command) -> None:
    refused(command, given(), OrderNotFound, f"no order {ORDER}")


# -------------------------------------------------------------------- AddItem


def test_an_item_is_added_to_a_draft() -> None:
    events = decide(add(quantity=2), given(CREATED))
    assert events == [added(quantity=2)]
    assert given(CREATED, *events).lines == (Line("TEA-1", "Green tea", 350, 2),)


@pytest.mark.parametrize(
    "sku",
    ["", "S" * 65, "TEA/1", "TEA 1", "tée", "TEA-1\n"],
    ids=["empty", "65", "slash", "space", "accent", "newline"],
)
def test_a_sku_must_be_1_to_64_letters_digits_dashes_underscores_or_dots(sku: str) -> None:
    error = refused(add(sku=sku), given(CREATED), InvalidSku, "1 to 64 characters")
    assert error.field == "sku"


def test_a_64_character_sku_is_accepted() -> None:
    sku = "S" * 64
    assert decide(add(sku=sku), given(CREATED)) == [added(sku=sku)]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "1 to 200"),
        ("   ", "name"),
        ("n" * 201, "this one has 201"),
        ("n" * 10_000, "this one has 10000"),
        ("Green\x00tea", "control characters"),
        ("\x1b[31mGreen tea", "control characters"),
        ("Green\x85tea", "control characters"),
        ("Green\ttea", "control characters"),
    ],
    ids=["empty", "whitespace", "201", "10000", "nul", "escape", "nel", "tab"],
)
def test_an_item_name_must_be_1_to_200_characters_without_control_characters(name: str, says: str) -> None:
    error = refused(add(name=name), given(CREATED), InvalidItemName, says)
    assert error.field == "name"


def test_a_200_character_name_is_accepted() -> None:
    assert decide(add(name="n" * 200), given(CREATED)) == [added(name="n" * 200)]


def test_html_in_a_name_is_recorded_as_typed() -> None:
    name = '<script>alert("hi")</script> & <b>Tea</b>'
    assert decide(add(name=name), given(CREATED)) == [added(name=name)]


@pytest.mark.parametrize(
    ("price", "error", "says"),
    [
        (0, UnitPriceNotPositive, "more than 0.00"),
        (-1, UnitPriceNotPositive, "more than 0.00"),
        (100_000_001, UnitPriceTooHigh, "at most 1,000,000.00 (this one is 1,000,000.01)"),
    ],
)
def test_a_unit_price_must_be_positive_and_at_most_a_million(
    price: int, error: type[DomainError], says: str
) -> None:
    assert refused(add(price=price), given(CREATED), error, says).field == "unit_price"


def test_a_unit_price_of_exactly_a_million_is_accepted() -> None:
    assert decide(add(price=100_000_000), given(CREATED)) == [added(price=100_000_000)]


@pytest.mark.parametrize("quantity", [0, -1, 1000])
def test_a_quantity_must_be_1_to_999(quantity: int) -> None:
    error = refused(add(quantity=quantity), given(CREATED), InvalidQuantity, "from 1 to 999")
    assert error.field == "quantity"


def test_a_quantity_of_999_is_accepted() -> None:
    assert decide(add(quantity=999), given(CREATED)) == [added(quantity=999)]


def test_the_same_sku_again_adds_to_the_line() -> None:
    state = given(CREATED, added(quantity=2))
    events = decide(add(quantity=3), state)
    assert events == [added(quantity=3)]
    after = fold(events, state)
    assert after.lines == (Line("TEA-1", "Green tea", 350, 5),)


def test_the_same_sku_at_another_price_is_refused() -> None:
    error = refused(add(price=400), given(CREATED, added(price=350)), PriceMismatch, "at 3.50 EUR")
    assert error.field == "unit_price"


def test_the_same_sku_cannot_push_the_line_past_999() -> None:
    state = given(CREATED, added(quantity=990))
    refused(add(quantity=10), state, LineQuantityTooLarge, "at most 9 more")
    assert fold(decide(add(quantity=9), state), state).lines[0].quantity == 999


def test_an_order_holds_at_most_100_lines() -> None:
    refused(add(sku="SKU-100"), given(CREATED, *lines(100)), TooManyLines, "at most 100 lines")


def test_the_100th_line_is_accepted() -> None:
    state = given(CREATED, *lines(99))
    assert len(fold(decide(add(sku="SKU-99"), state), state).lines) == 100


def test_a_full_order_still_takes_more_of_an_existing_line() -> None:
    state = given(CREATED, *lines(100))
    after = fold(decide(add(sku="SKU-42", quantity=4), state), state)
    assert len(after.lines) == 100
    assert after.lines[42].quantity == 5
