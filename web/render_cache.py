"""Rendered HTML kept per process: an order at a version never changes, so neither does its page.

What a fragment shows depends on the order's stream up to a version, on the
version that is the latest (the slider, "of N"), on what the signed-in role may
do, and on the template files; every key names all of these. What is per
request (the CSRF token, a fresh command id per form) is rendered as a
placeholder and filled in by `fill` on the way out, so one entry serves every
request and every account of the same permissions.

The cache is bounded by entries and by an estimate of the bytes it holds, and
drops the least recently used entry first. It is a cache, never the truth: a
new event makes a new latest version, so a page is never served from an entry
of an older one.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections import OrderedDict
from collections.abc import Hashable
from pathlib import Path
from uuid import uuid4

import msgspec
from markupsafe import escape

# Placeholders that HTML escaping leaves as they are, and no order text can forge
# in the rendered HTML: every user-supplied value is escaped, but these are plain
# letters, so a line named like one would be replaced too. The random part makes
# that impossible to arrange from outside the process.
_SALT = uuid4().hex
CSRF_PLACEHOLDER = f"csrf-{_SALT}"
COMMAND_ID_PLACEHOLDER = f"command-{_SALT}"
# Where a page's shell (base.html and the page around a fragment) takes the fragment.
FRAGMENT_PLACEHOLDER = f"fragment-{_SALT}"
_PLACEHOLDERS = re.compile(f"({CSRF_PLACEHOLDER}|{COMMAND_ID_PLACEHOLDER}|{FRAGMENT_PLACEHOLDER})")
_CSRF, _COMMAND_ID, _FRAGMENT = (
    p.encode() for p in (CSRF_PLACEHOLDER, COMMAND_ID_PLACEHOLDER, FRAGMENT_PLACEHOLDER)
)
# Every prepared page holds these three objects, not copies: a page has a placeholder per form.
_SHARED = {CSRF_PLACEHOLDER: _CSRF, COMMAND_ID_PLACEHOLDER: _COMMAND_ID, FRAGMENT_PLACEHOLDER: _FRAGMENT}
_ENTRY_OVERHEAD = 240  # bytes of an entry beyond its HTML: key tuple, dict slot, links

# Rendered HTML split at its placeholders, encoded once (UTF-8): the text, then a placeholder and
# the text after it, … A page is filled in and sent as bytes, never encoded per request.
Prepared = tuple[bytes, ...]


class CacheStats(msgspec.Struct, frozen=True):
    hits: int
    misses: int
    entries: int
    bytes: int
    max_entries: int
    max_bytes: int
    by_kind: dict[str, tuple[int, int]]  # hits and misses by the key's first part (its template)

    @property
    def hit_rate(self) -> float:
        asked = self.hits + self.misses
        return self.hits / asked if asked else 0.0


class RenderCache:
    """An LRU of rendered HTML by key, bounded by entries and by bytes; max_bytes 0 turns it off."""

    def __init__(self, max_bytes: int = 32 * 2**20, max_entries: int = 20_000) -> None:
        self.max_bytes, self.max_entries = max_bytes, max_entries
        # A fragment or page as `prepare` keeps it, or (`get_text`) a piece Jinja puts into another.
        self._entries: OrderedDict[Hashable, tuple[Prepared | str, int]] = OrderedDict()
        self._bytes = 0
        self.hits = self.misses = 0
        self._kinds: dict[str, list[int]] = {}
        # Each order's customer (which never changes), so a page knows whose erasure it depends on.
        self._customers: OrderedDict[str, str] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0 and self.max_entries > 0

    def get(self, key: Hashable) -> Prepared | None:
        found = self._get(key)
        return found if isinstance(found, tuple) else None

    def get_text(self, key: Hashable) -> str | None:
        found = self._get(key)
        return found if isinstance(found, str) else None

    def _get(self, key: Hashable) -> Prepared | str | None:
        found = self._entries.get(key)
        kind = self._kinds.setdefault(str(key[0]) if isinstance(key, tuple) else "", [0, 0])
        if found is None:
            self.misses += 1
            kind[1] += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        kind[0] += 1
        return found[0]

    def put(self, key: Hashable, html: Prepared | str) -> None:
        """Keep `html` (prepared, or a piece of text for `get_text`) under `key`."""
        if not self.enabled:
            return
        size = sys.getsizeof(html) + _ENTRY_OVERHEAD
        if isinstance(html, tuple):
            size += sum(map(sys.getsizeof, html[::2]))  # its text; the placeholders between are shared
        if size > self.max_bytes // 4:
            return  # one page must not push out a quarter of the others
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old[1]
        self._entries[key] = (html, size)
        self._bytes += size
        while self._bytes > self.max_bytes or len(self._entries) > self.max_entries:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def customer_of(self, order_id: str) -> str | None:
        return self._customers.get(order_id)

    def remember_customer(self, order_id: str, customer_id: str) -> None:
        self._customers[order_id] = customer_id
        while len(self._customers) > self.max_entries:
            self._customers.popitem(last=False)

    def stats(self) -> CacheStats:
        by_kind = {name: (hits, misses) for name, (hits, misses) in sorted(self._kinds.items())}
        return CacheStats(
            self.hits, self.misses, len(self._entries), self._bytes, self.max_entries, self.max_bytes, by_kind
        )


def prepare(html: str) -> Prepared:
    """Rendered HTML as the cache keeps it: split once at its placeholders and encoded, for `fill`."""
    parts = _PLACEHOLDERS.split(html)  # text, placeholder, text, …
    return tuple(_SHARED[part] if n % 2 else part.encode() for n, part in enumerate(parts))


def fill(prepared: Prepared, csrf_token: str, fragment: Prepared = ()) -> bytes:
    """The cached HTML for one request, as the body sent: its CSRF token, a fresh command id for
    each form, and (in a page's shell) the fragment, filled in the same way."""
    parts = list(prepared)
    if fragment:
        # The fragment's text and placeholders take the place of the shell's, text joined to text.
        at = parts.index(_FRAGMENT)
        inner = list(fragment)
        inner[0] = parts[at - 1] + inner[0]
        inner[-1] += parts[at + 1]
        parts[at - 1 : at + 2] = inner
    token = str(escape(csrf_token)).encode()
    count = parts.count(_COMMAND_ID)
    ids = "".join(command_ids(count)).encode()  # 36 bytes each
    next_id = 0
    for n in range(1, len(parts), 2):
        if parts[n] == _CSRF:
            parts[n] = token
        else:
            parts[n], next_id = ids[next_id : next_id + 36], next_id + 36
    return b"".join(parts)


def command_ids(count: int) -> list[str]:
    """`count` random (version 4) UUIDs as text: what uuid4 makes, from one call for randomness."""
    digits = os.urandom(16 * count).hex()
    ids = []
    for start in range(0, 32 * count, 32):
        x = digits[start : start + 32]
        # The version (4) and the RFC 4122 variant (8, 9, a or b) in place of their digits.
        ids.append(f"{x[:8]}-{x[8:12]}-4{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:]}")
    return ids


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def templates_version(directory: Path) -> str:
    """A digest of every template file: part of each key and ETag, so a new release renders anew."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*.html")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]
