"""A real app server in a subprocess: uvicorn on a free port, on a database of its own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]


def with_database(url: str, name: str) -> str:
    """The same server URL, naming another database."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextmanager
def uvicorn_process(
    database_url: str, *, workers: int = 1, env: Mapping[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Serve the app with uvicorn, as `orders serve` does, with `env` added to the
    environment (settings such as ORDERS_RETRY_ATTEMPTS); yield its base URL and process."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "ORDERS_SECRET": "browser-test-secret", **(env or {})}
    command = [sys.executable, "-m", "uvicorn", "web.cli:app_factory", "--factory", "--port", str(port)]
    command += ["--host", "127.0.0.1", "--workers", str(workers), "--log-level", "warning"]
    command += ["--timeout-graceful-shutdown", "2"]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process)
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def uvicorn_server(
    database_url: str, *, workers: int = 1, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    with uvicorn_process(database_url, workers=workers, env=env) as (url, _):
        yield url
