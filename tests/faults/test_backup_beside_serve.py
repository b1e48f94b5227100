"""`orders backup` of the embedded data folder `orders serve` is using, then a restore into a new folder."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.embedded_serving import (
    assert_postgres_stopped,
    orders_serve,
    own_data_dir,
    postgres_processes,
    postmaster,
    run_orders,
    users_listed,
)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with own_data_dir() as folder:
        yield folder


@pytest.fixture
def backup_dir() -> Iterator[Path]:
    with own_data_dir() as folder:
        yield folder / "backup"


@pytest.fixture
def restored_dir() -> Iterator[Path]:
    with own_data_dir() as folder:
        yield folder


def test_a_backup_beside_serve_leaves_its_database_running_and_restores_into_a_new_folder_that_verifies(
    data_dir: Path, backup_dir: Path, restored_dir: Path
) -> None:
    with orders_serve(data_dir) as serving:
        running = postmaster(serving.folder)
        assert running is not None
        seeded = run_orders(data_dir, "seed", "--orders", "20")
        assert seeded.returncode == 0, seeded.stderr

        backed_up = run_orders(data_dir, "backup", str(backup_dir))

        assert backed_up.returncode == 0, backed_up.stderr
        manifest = json.loads((backup_dir / "manifest.json").read_text())
        assert backed_up.stdout.startswith(
            f"orders backup: {manifest['events']:,} events of {len(manifest['streams']):,} orders"
        ), backed_up.stdout
        assert len(manifest["streams"]) >= 20
        assert postmaster(serving.folder) == running, "`orders backup` stopped the server's database"
        assert users_listed(serving.folder) == [serving.process.pid]
        assert httpx.get(serving.url + "/healthz", timeout=10).status_code == 200
        # The server still writes: another command's orders reach its log.
        again = run_orders(data_dir, "seed", "--orders", "1")
        assert again.returncode == 0, again.stderr
        assert httpx.get(serving.url + "/healthz", timeout=10).status_code == 200
        assert serving.stop() < 60
        assert serving.process.returncode == 0
    assert_postgres_stopped(serving.folder, running[1])

    # An operator keeps the master key apart from the backup and brings it along.
    shutil.copy(data_dir / "master.key", restored_dir / "master.key")
    restored = run_orders(restored_dir, "restore", str(backup_dir))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert restored.stdout.splitlines()[-1] == "orders restore: no differences"

    verified = run_orders(restored_dir, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    lines = verified.stdout.splitlines()
    assert lines[-1] == "orders verify: no differences"
    assert (
        f"orders verify: checked {len(manifest['streams']):,} streams, {manifest['events']:,} events"
        in lines[0]
    ), lines
    assert "not the configured" not in verified.stdout
    assert postgres_processes(restored_dir / "postgres") == set(), (
        "a command left the restored server running"
    )
