"""Waking listeners after appends commit: one NOTIFY for all the appends of a burst."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from store.database import UNAVAILABLE, BurstConnections

EVENTS_CHANNEL = "events"

# A notification's payload must stay under 8000 bytes; longer lists go in several.
_PAYLOAD_BYTES = 7900

# One statement for any number of notifications.
_NOTIFY = "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload"

log = logging.getLogger("orders.events")


class Notifier:
    """Wakes listeners after appends commit, one NOTIFY for all the appends of a burst.

    A NOTIFY inside each append transaction serialises their commits on the
    notification queue's lock: with 16 concurrent writers on a 2-core machine,
    5-event appends ran at 1,500-1,730/s with this notifier against 790-990/s
    with the NOTIFY in the statement (the same for 1 writer). Listeners only take a
    notification as a cue to read from their checkpoints, so a NOTIFY after
    the commit is as good.

    It lingers while the store has other appends in flight, at most `linger`
    seconds, so that a burst's appends share one statement (16 writers: a
    NOTIFY for every 20 appends where it was one for every 7; 4 writers: for
    every 10, where it was one for every 2); when the last append in flight
    ends it sends at once. Each line of a payload is "<stream>
    <version>", as an append that notifies in its own statement sends. A
    NOTIFY that fails is sent again with the next; what is pending when run()
    stops is sent before it returns, and an append that ends after that
    notifies for itself (`send`).
    """

    def __init__(self, pool: asyncpg.Pool, channel: str = EVENTS_CHANNEL, *, linger: float = 0.005) -> None:
        self.pool = pool
        # Shared with the event store's appends (EventStore takes it): a NOTIFY in a burst
        # goes on a connection an append just left, rather than on one more of the pool's.
        self.connections = BurstConnections(pool)
        self.channel = channel
        self.linger = linger
        self.running = False
        self._heads: dict[str, int] = {}  # stream id: the version it was appended to
        self._pending = asyncio.Event()
        self._now = asyncio.Event()

    def appended(self, stream_id: str, version: int) -> None:
        """An append committed: notify within `linger`, or sooner (see `idle`)."""
        heads = self._heads
        if heads.get(stream_id, 0) < version:
            heads[stream_id] = version
        self._pending.set()

    def idle(self) -> None:
        """The store has no append in flight: nothing will join the pending ones, send them now."""
        if self._heads:
            self._now.set()

    async def run(self) -> None:
        self.running = True
        try:
            while True:
                await self._pending.wait()
                if not self._now.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.linger):
                            await self._now.wait()
                self._pending.clear()
                self._now.clear()
                heads, self._heads = self._heads, {}
                sent = False
                try:
                    sent = await self.send(heads)
                finally:
                    if not sent:  # failed or cancelled: again with the next ones (or below)
                        for stream_id, version in heads.items():
                            self.appended(stream_id, version)
                if not sent:
                    await asyncio.sleep(0.5)
        finally:
            # Stopped (the app shutting down): what is pending goes now; later appends send their own.
            self.running = False
            if self._heads:
                heads, self._heads = self._heads, {}
                await self.send(heads)

    async def send(self, heads: dict[str, int]) -> bool:
        """NOTIFY these streams' new heads now; False when the database did not take it."""
        try:
            await self.connections.fetchrow(_NOTIFY, self.channel, payloads(heads))
        except (*UNAVAILABLE, asyncpg.PostgresError) as error:
            log.warning("could not notify listeners (they will poll): %s", error)
            return False
        return True


def payloads(heads: dict[str, int]) -> list[str]:
    """Lines of "<stream> <version>", as few payloads as fit under the size limit."""
    out: list[str] = []
    lines: list[str] = []
    size = 0
    for stream_id, version in heads.items():
        line = f"{stream_id} {version}"
        length = len(line.encode()) + 1
        if lines and size + length > _PAYLOAD_BYTES:
            out.append("\n".join(lines))
            lines, size = [], 0
        lines.append(line)
        size += length
    if lines:
        out.append("\n".join(lines))
    return out
