"""The bench's PostgreSQL and its clock: a fresh database per trial, CHECKPOINT, fixed-time runs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import asyncpg

from bench import workload
from bench.profiles import DatabaseWaits, InProcessProfile, join
from domain.access import Role
from store.access.accounts import Accounts
from store.access.sessions import Sessions
from store.application import Orders
from store.database import connect_pool
from store.log.event_store import EventStore
from store.log.notifier import Notifier
from store.migrations import migrate
from store.personal import MasterKey


@dataclass
class Sample:
    """One timed run: its figure, figures shown beside it, and a profile when one was asked for."""

    value: float
    extra: dict[str, float] = field(default_factory=dict)
    profile: str = ""


# One timed run on a fresh database; True asks for a profile of the run as well.
Trial = Callable[[bool], Awaitable[Sample]]
# Several timed runs on one set-up (pages read from one seeded database): a sample per name.
TrialGroup = Callable[[bool], Awaitable[dict[str, Sample]]]


@dataclass(frozen=True)
class Settings:
    seconds: float
    warmup: float
    rounds: int
    profile_seconds: float
    quick: bool


def with_database(url: str, name: str) -> str:
    """The same server URL, naming another database."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def libpq_params(url: str) -> dict[str, str]:
    """host, port, user, password and dbname of a postgresql:// URL (for psycopg)."""
    parts = urlsplit(url)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return {
        "host": query.get("host") or parts.hostname or "localhost",
        "port": str(query.get("port") or parts.port or 5432),
        "user": unquote(query.get("user") or parts.username or "postgres"),
        "password": unquote(query.get("password") or parts.password or ""),
        "dbname": unquote(parts.path.lstrip("/")) or "postgres",
    }


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Release a connection to the pool as it is: no reset query, so no second round trip."""


async def raw_pool(url: str, size: int) -> asyncpg.Pool:
    """The raw baselines' pool. asyncpg's default pool sends `SELECT pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL` on every release, a second round trip per statement;
    a baseline that stands for the physical limit does without it."""
    pool = await asyncpg.create_pool(url, min_size=size, max_size=size, reset=_keep_session)
    assert pool is not None
    return pool


@asynccontextmanager
async def app_store(
    url: str, size: int, *, notifier: bool = True, default_reset: bool = False
) -> AsyncIterator[EventStore]:
    """The event store as web/app.py builds it: the app's pool, and a Notifier that wakes
    listeners after each commit (without one, the append NOTIFYs inside its statement).
    `default_reset=True` swaps in a pool with asyncpg's default reset query on release, as
    store.database.connect_pool had before, for comparison."""
    if default_reset:
        pool = await asyncpg.create_pool(url, min_size=size, max_size=size)
        assert pool is not None
    else:
        pool = await connect_pool(url, min_size=size, max_size=size)
    waker = Notifier(pool) if notifier else None
    task = asyncio.create_task(waker.run()) if waker else None
    try:
        yield EventStore(pool, notifier=waker)
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await pool.close()


async def clerk_session(url: str, role: Role = "clerk") -> str:
    """A clerk's (or `role`'s) signed-in session on the database at `url`: the load signs in as people do."""
    pool = await connect_pool(url, min_size=1, max_size=1)
    try:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        account = await Accounts(pool).add(name, role, "a bench password, long enough")
        sessions = Sessions(pool, idle=timedelta(hours=1), absolute=timedelta(hours=2))
        return await sessions.begin(str(account.account_id))
    finally:
        await pool.close()


@asynccontextmanager
async def app_orders(url: str, size: int, *, master: MasterKey | None = None) -> AsyncIterator[Orders]:
    """The application layer as web/app.py builds it, over `app_store`'s pool and Notifier, with the
    workload's customer registered. `master`: the master key of a server that will read the
    database (by default one of this process alone)."""
    async with app_store(url, size) as store:
        orders = Orders(store.pool, notifier=store.notifier, master=master)
        await workload.register_customers(orders)
        yield orders


class Lab:
    """One PostgreSQL server; every trial gets its own database, created here and dropped after."""

    def __init__(self, server_url: str, settings: Settings) -> None:
        self.server_url = server_url
        self.settings = settings
        self.template = f"bench_template_{uuid.uuid4().hex[:8]}"
        self._admin: asyncpg.Connection | None = None
        self._profiled: set[str] = set()

    async def __aenter__(self) -> Lab:
        self._admin = await asyncpg.connect(self.server_url)
        await self._admin.execute(f'CREATE DATABASE "{self.template}"')
        conn = await asyncpg.connect(with_database(self.server_url, self.template))
        try:
            await migrate(conn)
        finally:
            await conn.close()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.admin.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        await self.admin.close()

    @property
    def admin(self) -> asyncpg.Connection:
        assert self._admin is not None, "use the lab as an async context manager"
        return self._admin

    async def server_facts(self) -> dict[str, str]:
        facts = {}
        for name in ("server_version", "synchronous_commit", "shared_buffers", "max_connections"):
            facts[name] = str(await self.admin.fetchval(f"SHOW {name}"))
        return facts

    @asynccontextmanager
    async def database(self, *, migrated: bool = True) -> AsyncIterator[str]:
        """A new database (migrated from the template, or empty), dropped afterwards; yields its URL."""
        name = f"bench_{uuid.uuid4().hex[:16]}"
        template = f' TEMPLATE "{self.template}"' if migrated else ""
        await self.admin.execute(f'CREATE DATABASE "{name}"{template}')
        try:
            yield with_database(self.server_url, name)
        finally:
            await self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def checkpoint(self) -> None:
        """Flush dirty pages now, so no checkpoint started by an earlier test lands in this one."""
        await self.admin.execute("CHECKPOINT")

    def wants_profile(self, kind: str) -> bool:
        """Profile every miss; a quick run profiles only its first miss of each kind, to stay quick."""
        wanted = not self.settings.quick or kind not in self._profiled
        self._profiled.add(kind)
        return wanted

    async def alternate(self, trials: Mapping[str, Trial | TrialGroup]) -> dict[str, list[Sample]]:
        """Every trial once per round, the order rotating, so drift in the machine hits them alike."""
        samples: dict[str, list[Sample]] = {}
        names = list(trials)
        for round_number in range(self.settings.rounds):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                result = await trials[name](False)
                for label, sample in result.items() if isinstance(result, dict) else [(name, result)]:
                    samples.setdefault(label, []).append(sample)
                    extra = "".join(f", {key} {value:,.1f}" for key, value in sample.extra.items())
                    print(f"    round {round_number + 1}: {label}: {sample.value:,.2f}{extra}", flush=True)
        return samples

    async def rate(
        self, operation: Callable[[], Awaitable[int]], tasks: int, *, profile: bool = False
    ) -> Sample:
        """Units per second: `tasks` coroutines repeat `operation` (it returns the units it did)."""
        await self.checkpoint()
        await _drive(operation, tasks, self.settings.warmup)
        seconds = self.settings.profile_seconds if profile else self.settings.seconds
        async with DatabaseWaits(self.admin, profile) as waits:
            with InProcessProfile(profile) as profiler:
                done, elapsed = await _drive(operation, tasks, seconds)
        return Sample(done / elapsed, profile=join(waits.text, profiler.text))

    async def rate_in_threads(self, operation: Callable[[], int], threads: int) -> Sample:
        """Units per second of a blocking `operation` repeated by `threads` threads."""
        await self.checkpoint()
        loop = asyncio.get_running_loop()
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            await loop.run_in_executor(None, _drive_threads, pool, operation, threads, self.settings.warmup)
            done, elapsed = await loop.run_in_executor(
                None, _drive_threads, pool, operation, threads, self.settings.seconds
            )
        return Sample(done / elapsed)


async def _drive(operation: Callable[[], Awaitable[int]], tasks: int, seconds: float) -> tuple[int, float]:
    deadline = time.perf_counter() + seconds
    counts = [0] * tasks

    async def worker(index: int) -> None:
        while time.perf_counter() < deadline:
            counts[index] += await operation()

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(tasks)))
    return sum(counts), time.perf_counter() - start


def _drive_threads(
    pool: concurrent.futures.ThreadPoolExecutor, operation: Callable[[], int], threads: int, seconds: float
) -> tuple[int, float]:
    deadline = time.perf_counter() + seconds
    start_together = threading.Barrier(threads)

    def worker() -> int:
        start_together.wait()
        count = 0
        while time.perf_counter() < deadline:
            count += operation()
        return count

    start = time.perf_counter()
    futures = [pool.submit(worker) for _ in range(threads)]
    done = sum(future.result() for future in futures)
    return done, time.perf_counter() - start
