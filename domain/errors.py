"""Every broken business rule is its own error, with a sentence a person can act on.

`field` names the form field the message belongs next to (None: the whole form).
"""

from __future__ import annotations


class DomainError(Exception):
    field: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OrderAlreadyExists(DomainError):
    pass


class OrderNotFound(DomainError):
    pass


class InvalidCustomerId(DomainError):
    field = "customer_id"


class InvalidCurrency(DomainError):
    field = "currency"


class OrderNotDraft(DomainError):
    pass


class InvalidSku(DomainError):
    field = "sku"


class InvalidItemName(DomainError):
    field = "name"


class InvalidItemNote(DomainError):
    field = "note"


class InvalidUnitPrice(DomainError):
    """The text is not an amount such as 3.50."""

    field = "unit_price"


class UnitPriceNotPositive(InvalidUnitPrice):
    pass


class UnitPriceTooHigh(InvalidUnitPrice):
    pass


class UnitPriceTooPrecise(InvalidUnitPrice):
    pass


class InvalidQuantity(DomainError):
    field = "quantity"


class LineQuantityTooLarge(InvalidQuantity):
    pass


class PriceMismatch(DomainError):
    field = "unit_price"


class TooManyLines(DomainError):
    pass


class ItemNotOnOrder(DomainError):
    field = "sku"


class RemoveQuantityTooLarge(InvalidQuantity):
    pass


class EmptyOrder(DomainError):
    pass


class OrderAlreadyCancelled(DomainError):
    pass


class InvalidCancelReason(DomainError):
    field = "reason"
