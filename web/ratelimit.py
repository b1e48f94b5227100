"""A per-client limit on writes: a token bucket per client address; past it, 429 with Retry-After.

Each app instance keeps its buckets in memory, so behind a load balancer over
N instances a client gets up to N times the limit. Behind a reverse proxy,
run uvicorn with --proxy-headers so that the address is the client's own.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.exceptions import TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PERIODS = {"s": 1, "second": 1, "m": 60, "minute": 60, "h": 3600, "hour": 3600}
_LIMIT = re.compile(r"\s*(\d{1,9})\s*/\s*(\d{0,9})\s*([a-z]+)\s*")


class RateLimit(msgspec.Struct, frozen=True):
    """At most `writes` in any `seconds`, on average; a burst may spend them all at once."""

    writes: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.writes} writes every {self.seconds:g} s"


def parse_limit(text: str | None) -> RateLimit | None:
    """'120/minute', '10/s' or '500/10m' into a limit; None for '', 'off' or 'none'."""
    if text is None or text.strip().lower() in {"", "off", "none"}:
        return None
    match = _LIMIT.fullmatch(text.lower())
    if match is None or match[3] not in PERIODS or int(match[1]) < 1 or match[2] == "0":
        raise ValueError(f"a write limit looks like 120/minute, 10/s or 500/10m, not {text!r}")
    return RateLimit(int(match[1]), int(match[2] or 1) * PERIODS[match[3]])


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens, self.updated = tokens, updated


class WriteLimiter:
    """A guard: writes (POST, PUT, PATCH, DELETE) beyond the limit get 429 and a Retry-After."""

    def __init__(
        self, limit: RateLimit, *, clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000
    ) -> None:
        self.limit = limit
        self.rate = limit.writes / limit.seconds
        self.clock = clock
        self.max_clients = max_clients
        self.buckets: dict[str, _Bucket] = {}

    def wait(self, client: str) -> float:
        """Take one write for `client`: 0 when allowed, or the seconds until one is."""
        now = self.clock()
        bucket = self.buckets.get(client)
        if bucket is None:
            if len(self.buckets) >= self.max_clients:
                self._forget_idle(now)
            bucket = self.buckets[client] = _Bucket(self.limit.writes, now)
        bucket.tokens = min(self.limit.writes, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        """Drop the clients whose buckets have refilled: they would start full anyway."""
        full = now - self.limit.seconds
        self.buckets = {client: b for client, b in self.buckets.items() if b.updated > full}
        if len(self.buckets) >= self.max_clients:  # every one of them busy: forget the quietest half
            by_age = sorted(self.buckets.items(), key=lambda item: item[1].updated)
            self.buckets = dict(by_age[len(by_age) // 2 :])

    def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if connection.scope.get("method") not in UNSAFE_METHODS:
            return
        client = connection.client.host if connection.client else "unknown"
        wait = self.wait(client)
        if wait:
            seconds = max(1, math.ceil(wait))
            raise TooManyRequestsException(
                detail=f"Too many changes from your address: at most {self.limit}. "
                f"Nothing was changed; try again in {seconds} s.",
                headers={"Retry-After": str(seconds)},
            )
