"""Master key rotation: every customer key rewrapped under a new master key, in one transaction.

No event changes: the events hold personal fields sealed with the customers' own
keys, which stay the same; only their wrapping in `customer_keys` does. With a
key file, the order makes a crash at any point recoverable:

1. it takes the lock new keys take (KEYS_LOCK), so none is wrapped meanwhile
   by the key about to go, and `settle` in another process waits;
2. the new key is written beside the file, as `<file>.new` (flushed to disk);
3. one transaction rewraps every key (`rewrap`);
4. `<file>.new` replaces the file (the old key is gone), and only then is the
   lock released.

A crash leaves `<file>.new` behind: `settle` (run as every `orders` command
starts) keeps whichever of the two keys the customer keys are wrapped by now.
Destroying the old key is what makes erasures reach older backups: their
forgotten customers' keys were wrapped by it (README, "Personal data").
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from store.personal import KEYS_LOCK
from store.personal.master import MasterKey, MasterKeyError

_ALL_KEYS = "SELECT customer_id, wrapped, master_key_id FROM customer_keys ORDER BY customer_id FOR UPDATE"
_REWRAP = """
UPDATE customer_keys k SET wrapped = u.wrapped, master_key_id = u.master_key_id
FROM unnest($1::text[], $2::bytea[], $3::text[]) AS u(customer_id, wrapped, master_key_id)
WHERE k.customer_id = u.customer_id
"""
_IN_USE = "SELECT DISTINCT master_key_id FROM customer_keys"


def pending_file(key_file: Path) -> Path:
    """Where a rotation writes the new key before it commits."""
    return key_file.with_name(key_file.name + ".new")


async def rewrap(conn: asyncpg.Connection | PoolConnectionProxy, old: MasterKey, new: MasterKey) -> int:
    """Rewrap every customer key from `old` to `new` in the caller's transaction; how many."""
    rows = await conn.fetch(_ALL_KEYS)
    ids, wrapped, key_ids = [], [], []
    for customer_id, sealed, master_key_id in rows:
        if master_key_id == new.id:
            continue  # rewrapped already (a rotation run again after a crash)
        key = old.unwrap(customer_id, sealed, master_key_id)  # MasterKeyError: not the old key's
        rewrapped, key_id = new.wrap(customer_id, key)
        ids.append(customer_id)
        wrapped.append(rewrapped)
        key_ids.append(key_id)
    await conn.execute(_REWRAP, ids, wrapped, key_ids)
    return len(ids)


async def rotate(pool: asyncpg.Pool, old: MasterKey, new: MasterKey, new_file: Path | None = None) -> int:
    """Rewrap every key under `new`; with a key file (`old.source`), put `new` in it, destroying `old`.

    `new_file` is where the new key goes when `old` came from no file (derived from the secret);
    it must not exist. Returns how many keys were rewrapped.
    """
    target = old.source or new_file
    if target is None:
        raise MasterKeyError("the master key comes from the secret: name a --new-key-file for the new one")
    staged = pending_file(target) if old.source else target
    async with pool.acquire() as conn:
        # Session-level, from before the new key is written until it replaces the old file: new
        # keys wait, and so does `settle` in another process, which would otherwise judge a
        # rotation still under way as one that never committed.
        await conn.execute("SELECT pg_advisory_lock($1)", KEYS_LOCK)
        try:
            new.write(staged)  # refuses to overwrite: a leftover is settled first
            committed = False
            try:
                async with conn.transaction():
                    count = await rewrap(conn, old, new)
                committed = True
                if old.source is not None:
                    _replace(staged, old.source)
            finally:
                if not committed:  # nothing changed: the new key must not be mistaken for the one in use
                    staged.unlink(missing_ok=True)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", KEYS_LOCK)
    return count


def _replace(staged: Path, key_file: Path) -> None:
    """`staged` becomes `key_file` atomically; the directory is flushed so the rename survives a crash."""
    os.replace(staged, key_file)
    folder = os.open(key_file.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


async def settle(pool: asyncpg.Pool, key_file: Path) -> str | None:
    """Finish or undo a rotation a crash interrupted; what was done, or None when there was nothing.

    A `<file>.new` beside the key file means a rotation did not finish: if the customer keys are
    wrapped by the new key, it committed and the new key replaces the file; else it did not, and
    the new key is deleted.
    """
    staged = pending_file(key_file)
    async with pool.acquire() as conn:
        # A rotation running now holds this lock until it is done: wait for it, then look.
        await conn.execute("SELECT pg_advisory_lock($1)", KEYS_LOCK)
        try:
            if not staged.exists():
                return None
            new = MasterKey.from_file(staged)
            in_use = {row[0] for row in await conn.fetch(_IN_USE)}
            if new.id in in_use:
                _replace(staged, key_file)
                return f"finished an interrupted key rotation: {key_file} now holds master key {new.id}"
            staged.unlink()
            return f"undid an interrupted key rotation that had not committed: {staged} deleted"
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", KEYS_LOCK)
