"""Personal data: which fields hold it, and how a sealed value looks (pure: no keys, no crypto).

A customer's name, email address and shipping address are personal data. In
every event, snapshot, read model and outbox row they are stored sealed: a
string `pii:1:<customer id>:<ciphertext>` made by store/personal with that
customer's own key (docs/architecture.md, "Personal data"). The domain
carries sealed strings as it carries any other; only the application layer
opens them for whoever may see them, and shows ERASED once the key is gone.
"""

from __future__ import annotations

from collections.abc import Iterator

SEALED_PREFIX = "pii:1:"

# What an opened field reads once its customer is forgotten (their key is deleted).
ERASED = "[erased]"

# The personal fields of each event type and state, by name; every other field holds none.
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "CustomerRegistered": ("name", "email", "address"),
    "CustomerDetailsChanged": ("name", "email", "address"),
    "OrderPlaced": ("ship_to",),
    "Customer": ("name", "email", "address"),
    "Order": ("ship_to",),
}


def is_sealed(value: str) -> bool:
    return value.startswith(SEALED_PREFIX)


def sealed_owner(value: str) -> str:
    """The customer id whose key seals `value` (which is_sealed)."""
    return value[len(SEALED_PREFIX) :].rpartition(":")[0]


def personal_values(value: object) -> Iterator[tuple[str, str]]:
    """(field, text) for each non-empty personal field of an event or state."""
    for field in PERSONAL_FIELDS.get(type(value).__name__, ()):
        text = getattr(value, field)
        if text:
            yield field, text
