"""Who may do what: roles, the actor behind every command and query, and the rules that bind them.

Pure: the web says who is asking (from a session or a token), the
application layer asks `may` before it reads or writes, and customers see
their own orders only.
"""

from __future__ import annotations

import re
from typing import Literal

from msgspec import Struct

from domain.errors import DomainError, InvalidInput

Role = Literal["viewer", "clerk", "admin", "customer", "system", "nobody"]
# The roles an account or a token can have; "system" is for the service's own workflows.
ROLES: tuple[Role, ...] = ("viewer", "clerk", "admin", "customer")

# What a request does, as the rules below name it.
Action = Literal["read_orders", "write_orders", "read_log", "administer"]

_MAY: dict[Action, frozenset[Role]] = {
    # A customer reads and changes only their own orders (`sees`).
    "read_orders": frozenset({"viewer", "clerk", "admin", "customer", "system"}),
    "write_orders": frozenset({"clerk", "admin", "customer", "system"}),
    # The whole log, sales, notifications, every customer: staff only.
    "read_log": frozenset({"viewer", "clerk", "admin", "system"}),
    "administer": frozenset({"admin", "system"}),
}


class Actor(Struct, frozen=True, gc=False):
    """Who is acting: an account (by its id and name), a token's account, or a named system actor."""

    id: str
    name: str
    role: Role
    customer_id: str | None = None

    @property
    def is_customer(self) -> bool:
        return self.role == "customer"


# Nobody signed in: may do nothing (only public routes, which ask the store for nothing, see them).
NOBODY = Actor("nobody", "nobody", "nobody")


def system_actor(name: str) -> Actor:
    """The service itself acting, under a name the log shows (the draft expiry, the seed …)."""
    return Actor(f"system:{name}", name, "system")


class Forbidden(DomainError):
    """The actor's role may not do this (403); for another customer's order, OrderNotFound is said instead."""


class CustomerIdRequired(InvalidInput):
    """A customer account or token is bound to one customer id."""

    field = "customer_id"


def may(actor: Actor, action: Action) -> bool:
    return actor.role in _MAY[action]


def require(actor: Actor, action: Action) -> None:
    if not may(actor, action):
        raise Forbidden(f"Your role ({actor.role}) may not do this.")


def sees(actor: Actor, customer_id: str) -> bool:
    """Whether the actor may know of the orders of `customer_id` at all."""
    return not actor.is_customer or actor.customer_id == customer_id


def check_binding(role: Role, customer_id: str | None) -> None:
    """A customer account is bound to exactly one customer id; staff accounts to none."""
    if role == "customer" and not customer_id:
        raise CustomerIdRequired("A customer account needs the customer id it acts for.")
    if role != "customer" and customer_id:
        raise CustomerIdRequired("Only a customer account is bound to a customer id.")


class InvalidAccountName(InvalidInput):
    field = "username"


class WeakPassword(InvalidInput):
    field = "password"


MAX_ACCOUNT_NAME = 64
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


def check_account_name(name: str) -> None:
    if not _ACCOUNT_NAME.fullmatch(name):
        raise InvalidAccountName(
            f"An account name is 1 to {MAX_ACCOUNT_NAME} letters, digits, '.', '_', '@' or '-'."
        )


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise WeakPassword(f"A password has {MIN_PASSWORD} to {MAX_PASSWORD} characters.")
