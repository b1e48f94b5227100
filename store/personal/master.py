"""The master key: it wraps every customer key, and it never enters the database.

It comes from a key file (`ORDERS_MASTER_KEY_FILE`, by default `master.key` in
the data folder, made on first use, readable by its owner only) or is derived
from the configured secret (`ORDERS_SECRET`). Its id, a digest that reveals
nothing of it, is stored beside each wrapped key, so a wrong master key is named
as such instead of reading as tampered data. `orders keys rotate` rewraps every
customer key under a new one (store/personal/rotation.py).
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE = 12


class MasterKeyError(Exception):
    """The master key is missing, unreadable, or not the one the customer keys were wrapped with."""


class MasterKey:
    def __init__(self, secret: bytes, source: Path | None = None) -> None:
        if len(secret) != 32:
            raise MasterKeyError("a master key is 32 bytes")
        self._aead = AESGCM(secret)
        self.id = hashlib.sha256(b"orders master key id\x00" + secret).hexdigest()[:16]
        self._secret = secret
        # The key file it was read from: `reloaded` reads it again after an `orders keys rotate`.
        self.source = source

    def reloaded(self) -> MasterKey:
        """The key its file holds now (itself when it came from no file, or the file is unreadable)."""
        if self.source is None:
            return self
        try:
            return MasterKey.from_file(self.source)
        except MasterKeyError:
            return self

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(AESGCM.generate_key(256))

    @classmethod
    def from_secret(cls, secret: str) -> MasterKey:
        """Derived from the configured secret (HKDF-SHA256), so the secret is all there is to keep."""
        if not secret:
            raise MasterKeyError("no secret to derive the master key from")
        derive = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"orders master key v1")
        return cls(derive.derive(secret.encode()))

    @classmethod
    def from_file(cls, path: Path, *, create: bool = False) -> MasterKey:
        """Read the key file (base64 of 32 bytes); with `create`, make one where there is none."""
        if create and not path.exists():
            key = cls(AESGCM.generate_key(256), path)
            key.write(path)
            return key
        try:
            text = path.read_text().strip()
        except OSError as error:
            raise MasterKeyError(f"cannot read the master key file {path}: {error.strerror}") from None
        try:
            secret = base64.b64decode(text, validate=True)
        except ValueError:
            raise MasterKeyError(f"{path} does not hold a master key (base64 of 32 bytes)") from None
        if len(secret) != 32:
            raise MasterKeyError(f"{path} does not hold a master key (base64 of 32 bytes)")
        return cls(secret, path)

    def write(self, path: Path) -> None:
        """Write the key to a new file, readable by its owner only, flushed to disk
        (FileExistsError if there is one).

        Written whole under a name of its own, then linked to `path`: the link fails if the
        file exists, so two processes making the key at once (uvicorn's workers) never both
        write it, and neither ever reads a file the other has only begun.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(base64.b64encode(self._secret).decode() + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.link(draft, path)
        finally:
            draft.unlink()

    def wrap(self, customer_id: str, key: bytes) -> tuple[bytes, str]:
        """The customer's key encrypted with this master key, and this key's id."""
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, key, _associated(customer_id)), self.id

    def unwrap(self, customer_id: str, wrapped: bytes, master_key_id: str) -> bytes:
        if master_key_id != self.id:
            raise MasterKeyError(
                f"customer {customer_id}'s key is wrapped by master key {master_key_id}; "
                f"the configured master key is {self.id} (see README, 'Personal data')"
            )
        try:
            return self._aead.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], _associated(customer_id))
        except InvalidTag:
            raise MasterKeyError(
                f"customer {customer_id}'s wrapped key does not open: changed by hand"
            ) from None


def configured(key_file: str, secret: str) -> MasterKey | None:
    """The master key the settings name: the key file (made if missing), else derived from the
    secret; None when they name neither."""
    if key_file:
        try:
            return MasterKey.from_file(Path(key_file), create=True)
        except FileExistsError:  # another process (uvicorn's next worker) made it first: theirs
            return MasterKey.from_file(Path(key_file))
    if secret:
        return MasterKey.from_secret(secret)
    return None


def _associated(customer_id: str) -> bytes:
    return b"orders customer key\x00" + customer_id.encode()
