"""Read replicas: streaming standbys of the primary that serve the pages' and the API's reads.

Only queries come here (store/application.py chooses, once per request): a
standby cannot assign transaction ids or LISTEN, so commands, subscriptions,
leader locks, workflows and sessions stay on the primary.

A background loop looks at every replica each `check_every` seconds: is it
reachable, still a standby, and how far behind. Lag is measured without
comparing two servers' clocks: the loop remembers the primary's WAL position
at each look, and a replica is as far behind as the oldest look whose
position it has not replayed yet. One that is down, promoted, or more than
`max_lag` seconds behind is skipped; with none left, reads go to the primary.

Read-your-writes: a client that wrote carries the primary's WAL position
after its commit (web/read_your_writes.py). A read carrying one waits, up to
`wait` seconds, for a replica to replay that far, and otherwise reads from
the primary, so nobody reads a state older than their own last write.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field

import asyncpg
from prometheus_client.core import Metric

from domain.order import Order
from store import metrics
from store.database import UNAVAILABLE, DatabaseUnavailable, SessionLimits, connect_pool, redact
from store.log.event_store import EventStore
from store.log.snapshots import Snapshots
from store.read.read_model import ReadModel, Summaries
from store.workflows.outbox import Outbox

# asyncpg reads and writes pg_lsn as an integer: the WAL byte position.
_PRIMARY_POSITION = "SELECT pg_current_wal_lsn()"
# After a commit returned, the insert position is at or past its commit record whatever
# synchronous_commit says; the write position is only once that record is written out.
COMMIT_POSITION = "SELECT pg_current_wal_insert_lsn()"
_STANDING = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()"
_REPLAYED = "SELECT pg_last_wal_replay_lsn()"
CHECK_TIMEOUT = 2.0
log = logging.getLogger("orders.replicas")
# What a read on a replica may meet that the primary would not fail: the replica gone, or a
# query cancelled by a conflict with recovery (SQLSTATE 40001). The read is made again on the primary.
REPLICA_FAILURES = (*UNAVAILABLE, DatabaseUnavailable, asyncpg.SerializationError)
_LSN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")


def lsn_text(position: int) -> str:
    """A WAL position as PostgreSQL spells it: 0/16B3748."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int | None:
    """The WAL position `text` spells (as `lsn_text` writes it), or None."""
    if _LSN.fullmatch(text.strip()) is None:
        return None
    high, _, low = text.strip().partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def _lost(replica: Replica, problem: str) -> None:
    """`replica` is not there as a standby: skipped, and how far behind it is, unknown."""
    replica.answering, replica.usable, replica.problem, replica.lag_seconds = False, False, problem, None


class _ReplicaSnapshots(Snapshots):
    """Snapshots read on a replica; one worth taking is written to the primary (a cache either way)."""

    def __init__(self, pool: asyncpg.Pool, primary: asyncpg.Pool, every: int) -> None:
        super().__init__(pool, every=every)
        self.primary = primary

    async def take(self, stream_id: str, order: Order) -> None:
        with contextlib.suppress(*UNAVAILABLE):  # the primary is down: a later read takes it
            await Snapshots(self.primary, every=self.every).take(stream_id, order)


@dataclass(frozen=True)
class ReadSide:
    """What the queries read through, all on one server."""

    pool: asyncpg.Pool
    store: EventStore
    snapshots: Snapshots
    read_model: ReadModel
    summaries: Summaries
    outbox: Outbox

    @classmethod
    def on_replica(cls, pool: asyncpg.Pool, primary: asyncpg.Pool, snapshot_every: int) -> ReadSide:
        return cls(
            pool,
            EventStore(pool),
            _ReplicaSnapshots(pool, primary, snapshot_every),
            ReadModel(pool),
            Summaries(pool),
            Outbox(pool),
        )


@dataclass
class Replica:
    """One replica as the last look found it (the admin page shows these)."""

    url: str
    pool: asyncpg.Pool | None = None
    side: ReadSide | None = None
    answering: bool = False  # the last look reached it, and it was a standby
    usable: bool = False
    problem: str = "not looked at yet"
    replayed: int = 0  # WAL position replayed
    lag_seconds: float | None = None  # None: unknown (it or the primary is not answering)
    reads: int = 0  # requests whose reads it served

    @property
    def name(self) -> str:
        return redact(self.url)

    @property
    def replayed_text(self) -> str:
        return lsn_text(self.replayed)


@dataclass
class Replicas:
    """The replicas of one app instance, and the choice of one for each request's reads."""

    urls: tuple[str, ...]
    primary: asyncpg.Pool
    snapshot_every: int
    max_lag: float = 30.0  # seconds behind past which a replica is skipped
    wait: float = 1.0  # seconds a read waits for a replica to replay its client's write
    pool_size: int = 5
    limits: SessionLimits = field(default_factory=SessionLimits)
    check_every: float = 1.0
    replicas: list[Replica] = field(init=False)
    primary_reads: int = 0  # requests whose reads went to the primary instead
    _looks: deque[tuple[float, int]] = field(init=False)  # (monotonic time, primary's position)
    _turn: itertools.count[int] = field(init=False, default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.replicas = [Replica(url) for url in self.urls]
        self._looks = deque(maxlen=max(60, int(self.max_lag / self.check_every) + 10))

    async def run(self) -> None:
        """Look at every replica every `check_every` seconds, until cancelled."""
        while True:
            try:
                await self.check()
            except Exception:  # a look that failed in a way not foreseen must not end the looking
                log.exception("looking at the replicas failed")
            await asyncio.sleep(self.check_every)

    async def check(self) -> None:
        try:
            position: int | None = await self.primary.fetchval(_PRIMARY_POSITION, timeout=CHECK_TIMEOUT)
        except (TimeoutError, asyncpg.PostgresError, *UNAVAILABLE):
            position = None
        now = time.monotonic()
        if position is not None:
            self._looks.append((now, position))
        await asyncio.gather(*(self._look_at(replica, position, now) for replica in self.replicas))

    async def _look_at(self, replica: Replica, primary_at: int | None, now: float) -> None:
        try:
            if replica.pool is None:
                replica.pool = await connect_pool(
                    replica.url, min_size=1, max_size=self.pool_size, role="replica", limits=self.limits
                )
                replica.side = ReadSide.on_replica(replica.pool, self.primary, self.snapshot_every)
            row = await replica.pool.fetchrow(_STANDING, timeout=CHECK_TIMEOUT)
        except (TimeoutError, DatabaseUnavailable, *UNAVAILABLE, asyncpg.PostgresError) as error:
            _lost(replica, f"not answering: {error or type(error).__name__}")
            return
        assert row is not None
        standby, replayed = row
        if not standby:
            _lost(replica, "not a standby (promoted?): skipped")
            return
        replica.answering = True
        replica.replayed = replayed or 0
        replica.lag_seconds = None if primary_at is None else self._lag(replica.replayed, now)
        if replica.lag_seconds is not None and replica.lag_seconds > self.max_lag:
            replica.usable, replica.problem = False, f"more than {self.max_lag:g} s behind: skipped"
        else:
            replica.usable = True
            replica.problem = "" if primary_at is not None else "the primary is not answering: lag unknown"

    def _lag(self, replayed: int, now: float) -> float:
        """Seconds since the oldest look at the primary whose position `replayed` has not reached."""
        behind = [at for at, position in self._looks if position > replayed]
        return now - behind[0] if behind else 0.0

    async def choose(self, after: int | None) -> ReadSide | None:
        """The replica to read from, one that has replayed `after` if given; None: read from the primary."""
        usable = [r for r in self.replicas if r.usable and r.side is not None]
        if usable:
            start = next(self._turn) % len(usable)
            usable = usable[start:] + usable[:start]
            if after is not None:
                wanted = after
                usable.sort(key=lambda r: r.replayed < wanted)  # those known to be there first
            replica = usable[0]
            if after is not None and replica.replayed < after and not await self._written(after):
                after = None  # no write of this primary's: nothing to wait for, nor a wait to cause
            if after is None or replica.replayed >= after or await self._wait_for(replica, after):
                replica.reads += 1
                assert replica.side is not None
                return replica.side
        self.primary_reads += 1
        return None

    async def _written(self, after: int) -> bool:
        """Whether the primary has reached WAL position `after` (else a client made it up)."""
        now = await self.commit_position()
        return now is None or after <= now

    def failed(self, side: ReadSide, error: BaseException) -> None:
        """A read on `side` failed: skip its replica until the next look finds it well."""
        for replica in self.replicas:
            if replica.side is side:
                replica.usable, replica.problem = False, f"a read failed: {error or type(error).__name__}"

    def any_usable(self) -> asyncpg.Pool | None:
        """A usable replica's pool, for what must be read somewhere while the primary is down."""
        return next((r.pool for r in self.replicas if r.usable and r.pool is not None), None)

    async def _wait_for(self, replica: Replica, after: int) -> bool:
        """Wait up to `wait` seconds for `replica` to replay WAL position `after`."""
        assert replica.pool is not None
        deadline = time.monotonic() + self.wait
        pause = 0.005
        while True:
            try:
                replica.replayed = max(replica.replayed, await replica.pool.fetchval(_REPLAYED) or 0)
            except UNAVAILABLE:
                _lost(replica, "stopped answering")
                return False
            if replica.replayed >= after:
                return True
            if time.monotonic() + pause > deadline:
                return False
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    def figures(self) -> list[Metric]:
        """Each replica as the last look found it, for a scrape of /metrics (store/metrics.py)."""
        return metrics.replica_figures(self.replicas)

    async def commit_position(self) -> int | None:
        """The primary's WAL position now: past every commit that has returned. None if it is down."""
        try:
            position: int = await self.primary.fetchval(COMMIT_POSITION, timeout=CHECK_TIMEOUT)
        except (TimeoutError, *UNAVAILABLE):
            return None
        return position

    async def close(self) -> None:
        for replica in self.replicas:
            if replica.pool is not None:
                await replica.pool.close()
