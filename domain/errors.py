"""Every broken business rule is its own error, with a sentence a person can act on.

Each error says what kind of refusal it is, which is what a client can do about it:

- `InvalidInput`: a value breaks a rule whatever the order's state (a blank name,
  a quantity of 0); the request must change.
- `StateConflict`: the request is fine but the order's current state refuses it
  (it is no longer a draft, the line is not on it); look at the order again.
- `NotFound`: there is no such order, or no such version of it.

`field` names the form field the message belongs next to (None: the whole form).
"""

from __future__ import annotations


class DomainError(Exception):
    field: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """A value that breaks a rule whatever state the order is in."""


class StateConflict(DomainError):
    """A request the order's current state refuses."""


class NotFound(DomainError):
    """No such order, or no such version of it."""


# ------------------------------------------------------------- not found


class OrderNotFound(NotFound):
    pass


class VersionNotFound(NotFound):
    """The order exists but has no such version (or did not exist yet at that moment)."""

    field = "version"


# -------------------------------------------------------- invalid input


class InvalidCustomerId(InvalidInput):
    field = "customer_id"


class InvalidCurrency(InvalidInput):
    field = "currency"


class InvalidSku(InvalidInput):
    field = "sku"


class InvalidItemName(InvalidInput):
    field = "name"


class InvalidItemNote(InvalidInput):
    field = "note"


class InvalidUnitPrice(InvalidInput):
    """The text is not an amount such as 3.50."""

    field = "unit_price"


class UnitPriceNotPositive(InvalidUnitPrice):
    pass


class UnitPriceTooHigh(InvalidUnitPrice):
    pass


class UnitPriceTooPrecise(InvalidUnitPrice):
    pass


class InvalidQuantity(InvalidInput):
    field = "quantity"


class InvalidCancelReason(InvalidInput):
    field = "reason"


# ------------------------------------------------------- state conflicts


class OrderAlreadyExists(StateConflict):
    pass


class OrderNotDraft(StateConflict):
    pass


class OrderAlreadyCancelled(StateConflict):
    pass


class EmptyOrder(StateConflict):
    pass


class TooManyLines(StateConflict):
    pass


class PriceMismatch(StateConflict):
    field = "unit_price"


class ItemNotOnOrder(StateConflict):
    field = "sku"


class LineQuantityTooLarge(StateConflict):
    """The line already holds so many that this many more would pass 999."""

    field = "quantity"


class RemoveQuantityTooLarge(StateConflict):
    """The line holds fewer than the quantity to remove."""

    field = "quantity"


class CurrencyMismatch(StateConflict):
    """A price in another currency than the order's (the order's currency is fixed at its creation)."""

    field = "currency"


# ------------------------------------------------------------- customers


class CustomerNotFound(NotFound):
    field = "customer_id"


class InvalidPersonName(InvalidInput):
    field = "name"


class InvalidEmail(InvalidInput):
    field = "email"


class InvalidAddress(InvalidInput):
    field = "address"


class InvalidForgetReason(InvalidInput):
    field = "reason"


class CustomerNotRegistered(StateConflict):
    """An order is for a registered customer: the customer id names none (yet). A conflict, not
    invalid input: the same request succeeds once the customer is registered."""

    field = "customer_id"


class CustomerAlreadyRegistered(StateConflict):
    field = "customer_id"


class CustomerForgottenError(StateConflict):
    """The customer was forgotten: their details are gone and cannot change, nor can they order."""
