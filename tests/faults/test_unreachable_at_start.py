"""A database that cannot be reached at start: one clear line on stderr and a non-zero exit, never a hang."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.figures import record
from tests.support.servers import ROOT, free_port, with_database

pytestmark = pytest.mark.reliability

ORDERS = Path(sys.executable).parent / "orders"
COMMANDS = ("serve", "migrate", "replay", "verify")


def unreachable(server_url: str) -> dict[str, str]:
    """Databases that are not there, each in its own way."""
    return {
        "nothing listens on the port": f"postgresql://orders:s3cret@127.0.0.1:{free_port()}/orders",
        "no server at the socket": "postgresql://postgres@/orders?host=/nonexistent-socket-dir",
        "no such database": with_database(server_url, "orders_no_such_database"),
    }


def test_every_command_fails_with_one_clear_line_when_the_database_is_unreachable(server_url: str) -> None:
    started = time.monotonic()
    runs = {
        (why, command): subprocess.Popen(
            [str(ORDERS), command],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": url},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for why, url in unreachable(server_url).items()
        for command in (COMMANDS if why == "nothing listens on the port" else ("serve",))
    }
    for (why, command), process in runs.items():
        _, stderr = process.communicate(timeout=60)
        lines = stderr.strip().splitlines()
        assert process.returncode == 2, (why, command, stderr)
        assert len(lines) == 1, (why, command, stderr)
        assert lines[0].startswith("orders: cannot reach PostgreSQL at "), (why, command, stderr)
        assert "s3cret" not in stderr, "the password was printed"
    elapsed = time.monotonic() - started
    record("unreachable at start: runs (command, cause), each one line and exit 2", len(runs))
    record("unreachable at start: all of them answered within (s)", f"{elapsed:.1f}")


def test_uvicorn_started_on_an_unreachable_database_exits_instead_of_serving(server_url: str) -> None:
    """Started without `orders serve` (uvicorn --factory, as in a container), start-up fails and it exits."""
    env = {**os.environ, "DATABASE_URL": with_database(server_url, "orders_no_such_database")}
    env["ORDERS_SECRET"] = "s"
    command = [sys.executable, "-m", "uvicorn", "web.cli:app_factory", "--factory", "--port", "0"]
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "cannot reach PostgreSQL at" in result.stderr
    assert "AttributeError" not in result.stderr, "the shutdown after the failed start-up broke"
