"""The live feed: one LISTEN connection per app instance wakes every open stream.

A notification only wakes readers; each reads the log from its own position,
so a lost notification costs at most one poll interval, and an instance sees
appends made through any other instance (NOTIFY crosses connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from store.database import UNAVAILABLE, connect_one
from store.log.event_store import EVENT_COLUMNS, RecordedEvent, recorded_event
from store.log.notifier import EVENTS_CHANNEL
from store.read.subscriptions import Checkpoint, read_batch

log = logging.getLogger("orders.live")

_HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text"

_CHECKPOINT_OF = "SELECT tx_id::text, position FROM events WHERE position = $1"

_STREAM_AFTER = f"""
SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version LIMIT $3
"""

_VERSION_OF = "SELECT version FROM events WHERE position = $1 AND stream_id = $2"


async def horizon_on(pool: asyncpg.Pool) -> Checkpoint:
    """The horizon of the server `pool` reaches: on a replica, of what it has replayed."""
    xmin = int(await pool.fetchval(_HORIZON))
    return Checkpoint(xmin - 1, 2**63 - 1)


class LiveFeed:
    def __init__(self, url: str, pool: asyncpg.Pool, *, reconnect_delay: float = 1.0) -> None:
        self.url = url
        self.pool = pool
        self.reconnect_delay = reconnect_delay
        self.connected = False
        self._tick = asyncio.Event()
        # Called with the id of each stream appended to, as its notification arrives.
        self.watchers: list[Callable[[str], None]] = []

    def ticket(self) -> asyncio.Event:
        """Take before reading: a notification that arrives after it is never missed."""
        return self._tick

    async def wait(self, ticket: asyncio.Event, timeout: float) -> None:
        # asyncio.timeout rather than wait_for, which can swallow a cancel on 3.11.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await ticket.wait()

    def _notified(self, *notification: object) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()
        if len(notification) == 4 and isinstance(notification[3], str):  # (conn, pid, channel, payload)
            # A line "<stream> <version>" for each stream appended to (store/log/notifier.py).
            for line in notification[3].split("\n"):
                stream_id = line.rpartition(" ")[0]
                for watcher in self.watchers:
                    watcher(stream_id)

    async def run(self) -> None:
        """Keep a LISTEN connection open, reconnecting after the database comes back."""
        while True:
            try:
                conn = await connect_one(self.url, "live feed")
            except (*UNAVAILABLE, asyncpg.PostgresError) as error:
                log.warning("live feed cannot connect: %s", error)
                await asyncio.sleep(self.reconnect_delay)
                continue
            try:
                await conn.add_listener(EVENTS_CHANNEL, self._notified)
                self.connected = True
                self._notified()  # anything written while we were away
                while not conn.is_closed():
                    await asyncio.sleep(self.reconnect_delay)
                    await conn.execute("SELECT 1", timeout=5)
            except (*UNAVAILABLE, asyncpg.PostgresError, TimeoutError) as error:
                log.warning("live feed lost its connection: %s", error)
            finally:
                self.connected = False
                if not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(self.reconnect_delay)

    # -- reading, for the SSE endpoints

    async def horizon(self) -> Checkpoint:
        """Everything committed and below the horizon now; what a page shows is behind it."""
        return await horizon_on(self.pool)

    async def checkpoint_of(self, position: int) -> Checkpoint | None:
        row = await self.pool.fetchrow(_CHECKPOINT_OF, position)
        return None if row is None else Checkpoint(int(row[0]), row[1])

    async def log_after(
        self, checkpoint: Checkpoint, limit: int = 200
    ) -> list[tuple[RecordedEvent, Checkpoint]]:
        async with self.pool.acquire() as conn:
            return await read_batch(conn, checkpoint, limit)

    async def version_of(self, stream_id: str, position: int) -> int | None:
        version: int | None = await self.pool.fetchval(_VERSION_OF, position, stream_id)
        return version

    async def stream_after(self, stream_id: str, version: int, limit: int = 200) -> list[RecordedEvent]:
        """A stream's events after `version`: in one stream, version order is commit order."""
        rows = await self.pool.fetch(_STREAM_AFTER, stream_id, version, limit)
        return [recorded_event(row) for row in rows]
