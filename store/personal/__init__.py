"""Customers' personal data at rest: one AES-256-GCM key per customer, wrapped by a master key.

A personal field is stored as `pii:1:<customer id>:<base64url(nonce | ciphertext | tag)>`
(domain/personal.py), sealed with its customer's key and that customer's id as
associated data, so a sealed value copied onto another customer does not open.
Each customer key is kept in `customer_keys`, itself encrypted (wrapped) with
the master key, which never enters the database (store/personal/master.py).
Forgetting a customer deletes their row: from then on nothing sealed with their
key opens anywhere, in the log, the read models, the outbox, exports or backups
whose master key was destroyed (README, "Personal data").
"""

from __future__ import annotations

import base64
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import TypeVar

import asyncpg
import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.personal import ERASED, PERSONAL_FIELDS, SEALED_PREFIX, is_sealed, sealed_owner
from store.personal.master import MasterKey, MasterKeyError

__all__ = ["KEYS_LOCK", "WRONG_MASTER", "Keyring", "MasterKey", "TamperedValue"]

T = TypeVar("T")
log = logging.getLogger("orders.personal")

_NONCE = 12
# How long a key (or its absence) is trusted without asking the database again. Forgetting a
# customer drops the key at once in the instance that does it and, through the notification of
# its CustomerForgotten event, in every other (web/app.py); this bounds the rest.
KEY_SECONDS = 30.0

# What a field reads whose customer's key is wrapped by another master key than the one configured
# (a backup restored after a rotation destroyed the old one; the wrong key file): not erased by a
# forget, but just as closed.
WRONG_MASTER = "[sealed: wrapped by another master key]"
# Taken shared by each new key's insert and exclusively by `orders keys rotate` (store/personal/
# rotation.py) until the new master key file is in place, so no key is wrapped by a master key
# that is about to be destroyed.
KEYS_LOCK = 0x0_C0FFEE_CEE5

_KEYS = "SELECT customer_id, wrapped, master_key_id FROM customer_keys WHERE customer_id = ANY($1::text[])"
_CREATE = """
INSERT INTO customer_keys (customer_id, wrapped, master_key_id) VALUES ($1, $2, $3)
ON CONFLICT (customer_id) DO NOTHING
"""


class TamperedValue(Exception):
    """A sealed value that its customer's key does not open: changed by hand, or copied from another."""


class _WrongMaster:
    """A key that exists, wrapped by a master key this process does not have."""


_WRONG = _WrongMaster()


class Keyring:
    """The customer keys one process has unwrapped, for `KEY_SECONDS` at most, `capacity` of them."""

    def __init__(self, pool: asyncpg.Pool, master: MasterKey, *, capacity: int = 10_000) -> None:
        self.pool = pool
        self.master = master
        self.capacity = capacity
        self._keys: OrderedDict[str, tuple[AESGCM | _WrongMaster | None, float]] = OrderedDict()

    # ------------------------------------------------------------ keys

    async def load(self, customer_ids: Iterable[str], pool: asyncpg.Pool | None = None) -> None:
        """Have the keys of `customer_ids` at hand (or know they are gone), in one query at most,
        on `pool` (a replica's, for reads: it replays `customer_keys` too), else the primary."""
        now = time.monotonic()
        missing = [c for c in dict.fromkeys(customer_ids) if not self._fresh(c, now)]
        if not missing:
            return
        rows = await (pool or self.pool).fetch(_KEYS, missing)
        if any(row[2] != self.master.id for row in rows):
            self.master = self.master.reloaded()  # rotated by `orders keys rotate` since it was read
        found = {row[0]: self._unwrapped(*row) for row in rows}
        for customer_id in missing:
            key = found.get(customer_id)
            # A key this process cannot unwrap is asked for again within a second: during a rotation,
            # between its commit and the new key file, it is only the file that is late.
            self._remember(customer_id, key, now - KEY_SECONDS + 1.0 if key is _WRONG else now)

    def _unwrapped(self, customer_id: str, wrapped: bytes, master_key_id: str) -> AESGCM | _WrongMaster:
        try:
            return AESGCM(self.master.unwrap(customer_id, wrapped, master_key_id))
        except MasterKeyError as error:
            log.warning("%s", error)  # ids only: the customer's and the master keys'
            return _WRONG

    async def create(self, customer_id: str) -> None:
        """Make the customer's key if they have none (a new customer); keep the one they have."""
        async with self.pool.acquire() as conn, conn.transaction():
            # Not while a rotation replaces the master key; after one, wrapped by the new key.
            await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", KEYS_LOCK)
            self.master = self.master.reloaded()
            await conn.execute(_CREATE, customer_id, *self.master.wrap(customer_id, AESGCM.generate_key(256)))
        self.drop(customer_id)
        await self.load([customer_id])

    def has_key(self, customer_id: str) -> bool:
        """Whether the customer's key exists and opens (as last loaded)."""
        entry = self._keys.get(customer_id)
        return entry is not None and isinstance(entry[0], AESGCM)

    def erased(self, customer_id: str) -> bool:
        """Whether the customer's key is gone (as last loaded): forgotten, or never made."""
        entry = self._keys.get(customer_id)
        return entry is not None and entry[0] is None

    def drop(self, customer_id: str) -> None:
        """Forget what this process knows of the customer's key: the next use asks the database."""
        self._keys.pop(customer_id, None)

    def clear(self) -> None:
        self._keys.clear()

    def _fresh(self, customer_id: str, now: float) -> bool:
        entry = self._keys.get(customer_id)
        if entry is None or now - entry[1] > KEY_SECONDS:
            return False
        self._keys.move_to_end(customer_id)
        return True

    def _remember(self, customer_id: str, key: AESGCM | _WrongMaster | None, now: float) -> None:
        self._keys[customer_id] = (key, now)
        self._keys.move_to_end(customer_id)
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)

    # ----------------------------------------------------- seal, open

    def seal(self, customer_id: str, text: str) -> str:
        """`text` sealed with the customer's key, which must be loaded and exist."""
        entry = self._keys.get(customer_id)
        if entry is None or not isinstance(entry[0], AESGCM):
            raise LookupError(f"customer {customer_id} has no key loaded")
        nonce = os.urandom(_NONCE)
        sealed = entry[0].encrypt(nonce, text.encode(), customer_id.encode())
        return f"{SEALED_PREFIX}{customer_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, value: str) -> str:
        """The text sealed in `value` (loaded first), ERASED when its key is gone, `value` if not sealed."""
        if not is_sealed(value):
            return value
        owner = sealed_owner(value)
        entry = self._keys.get(owner)
        if entry is None:
            raise LookupError(f"customer {owner}'s key was not loaded")
        if entry[0] is None:
            return ERASED
        if isinstance(entry[0], _WrongMaster):
            return WRONG_MASTER
        raw = base64.urlsafe_b64decode(value.rpartition(":")[2])
        try:
            return entry[0].decrypt(raw[:_NONCE], raw[_NONCE:], owner.encode()).decode()
        except InvalidTag:
            raise TamperedValue(
                f"a personal field of customer {owner} does not open with their key"
            ) from None

    def sealed(self, customer_id: str, value: T) -> T:
        """`value` (an event or a state) with its personal fields sealed with the customer's loaded key."""
        fields = PERSONAL_FIELDS.get(type(value).__name__, ())
        changes = {f: self.seal(customer_id, getattr(value, f)) for f in fields if getattr(value, f)}
        return msgspec.structs.replace(value, **changes) if changes else value  # type: ignore[type-var]

    def open_nested(self, value: object) -> object:
        """A JSON-like value (dicts, lists, strings) with every sealed string in it opened; keys loaded."""
        if isinstance(value, str):
            return self.open(value)
        if isinstance(value, list):
            return [self.open_nested(v) for v in value]
        if isinstance(value, dict):
            return {k: self.open_nested(v) for k, v in value.items()}
        return value

    def owners(self, values: Iterable[object]) -> set[str]:
        """The customers whose keys seal the personal fields of these events or states."""
        found: set[str] = set()
        for value in values:
            for field in PERSONAL_FIELDS.get(type(value).__name__, ()):
                text = getattr(value, field)
                if is_sealed(text):
                    found.add(sealed_owner(text))
        return found

    def opened(self, value: T) -> T:
        """`value` (an event or a state) with its personal fields opened; the keys must be loaded."""
        fields = PERSONAL_FIELDS.get(type(value).__name__)
        if not fields:
            return value
        changes = {f: self.open(getattr(value, f)) for f in fields if is_sealed(getattr(value, f))}
        return msgspec.structs.replace(value, **changes) if changes else value  # type: ignore[type-var]


def nested_owners(value: object) -> set[str]:
    """The customers whose keys seal the strings of a JSON-like value (dicts, lists, strings)."""
    if isinstance(value, str):
        return {sealed_owner(value)} if is_sealed(value) else set()
    if isinstance(value, list):
        return set().union(*(nested_owners(v) for v in value))
    if isinstance(value, dict):
        return set().union(*(nested_owners(v) for v in value.values()))
    return set()
