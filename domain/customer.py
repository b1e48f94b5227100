"""The customer, as a decider: registered with a name, an email address and a shipping
address; details that change, each change an event; forgotten on request.

Pure, as the order is. The personal fields of the events arrive here in clear
from the commands; the store seals them before they are stored or folded
(domain/personal.py), so a state folded from stored events holds sealed strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Literal, assert_never

from msgspec import Struct, structs

from domain.errors import CustomerAlreadyRegistered, CustomerForgottenError, CustomerNotFound
from domain.rules import (
    check_address,
    check_customer_id,
    check_email,
    check_forget_reason,
    check_person_name,
)

STREAM_PREFIX = "customer:"


def customer_stream(customer_id: str) -> str:
    """The stream of a customer's events (order streams are UUIDs, so the two never meet)."""
    return STREAM_PREFIX + customer_id


def is_customer_stream(stream_id: str) -> bool:
    return stream_id.startswith(STREAM_PREFIX)


# ---------------------------------------------------------------- commands


class RegisterCustomer(Struct, frozen=True, gc=False):
    customer_id: str
    name: str
    email: str
    address: str


class ChangeCustomerDetails(Struct, frozen=True, gc=False):
    customer_id: str
    name: str
    email: str
    address: str


class ForgetCustomer(Struct, frozen=True, gc=False):
    customer_id: str
    reason: str


CustomerCommand = RegisterCustomer | ChangeCustomerDetails | ForgetCustomer

# ------------------------------------------------------------------ events


class CustomerRegistered(Struct, frozen=True, gc=False):
    schema_version: ClassVar[int] = 1
    customer_id: str
    name: str
    email: str
    address: str


class CustomerDetailsChanged(Struct, frozen=True, gc=False):
    """The customer's details as they now are, all three (one event per edit)."""

    schema_version: ClassVar[int] = 1
    name: str
    email: str
    address: str


class CustomerForgotten(Struct, frozen=True, gc=False):
    """Their key was deleted: every personal field sealed with it reads as erased from now on.

    Who and when are the event's own metadata and time; `reason` says why. No personal data.
    """

    schema_version: ClassVar[int] = 1
    reason: str


CustomerEvent = CustomerRegistered | CustomerDetailsChanged | CustomerForgotten
CUSTOMER_EVENT_TYPES: dict[str, type[CustomerEvent]] = {
    cls.__name__: cls for cls in (CustomerRegistered, CustomerDetailsChanged, CustomerForgotten)
}

# ------------------------------------------------------------------- state

CustomerStatus = Literal["none", "registered", "forgotten"]


class Customer(Struct, frozen=True, gc=False):
    customer_id: str = ""
    name: str = ""
    email: str = ""
    address: str = ""
    status: CustomerStatus = "none"
    version: int = 0
    forgotten_reason: str | None = None


initial_customer = Customer()

# ------------------------------------------------------------------ decide


def decide_customer(command: CustomerCommand, state: Customer) -> list[CustomerEvent]:
    """The events a command makes; [] when it changes nothing (a repeated forget, an edit to the same)."""
    check_customer_id(command.customer_id)
    if state.status == "none" and not isinstance(command, RegisterCustomer):
        raise CustomerNotFound(f"There is no customer {command.customer_id}.")
    match command:
        case RegisterCustomer():
            if state.status != "none":
                raise CustomerAlreadyRegistered(f"Customer {command.customer_id} is already registered.")
            _check_details(command.name, command.email, command.address)
            return [CustomerRegistered(command.customer_id, command.name, command.email, command.address)]
        case ChangeCustomerDetails():
            _require_not_forgotten(state)
            _check_details(command.name, command.email, command.address)
            return [CustomerDetailsChanged(command.name, command.email, command.address)]
        case ForgetCustomer():
            check_forget_reason(command.reason)
            if state.status == "forgotten":
                return []
            return [CustomerForgotten(command.reason)]
        case _:
            assert_never(command)


def _check_details(name: str, email: str, address: str) -> None:
    check_person_name(name)
    check_email(email)
    check_address(address)


def _require_not_forgotten(state: Customer) -> None:
    if state.status == "forgotten":
        raise CustomerForgottenError(
            f"Customer {state.customer_id} was forgotten: their details are erased and cannot change."
        )


# ------------------------------------------------------------------ evolve


def evolve_customer(state: Customer, event: CustomerEvent) -> Customer:
    version = state.version + 1
    match event:
        case CustomerRegistered():
            return Customer(event.customer_id, event.name, event.email, event.address, "registered", version)
        case CustomerDetailsChanged():
            return structs.replace(
                state, name=event.name, email=event.email, address=event.address, version=version
            )
        case CustomerForgotten():
            return structs.replace(state, status="forgotten", forgotten_reason=event.reason, version=version)
        case _:
            assert_never(event)


def fold_customer(events: Iterable[CustomerEvent], state: Customer = initial_customer) -> Customer:
    for event in events:
        state = evolve_customer(state, event)
    return state
