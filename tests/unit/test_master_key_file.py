"""The master key file made on first use: processes starting together (uvicorn's workers) share one key."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from store.personal.master import MasterKey, configured

STARTING_TOGETHER = 8


def test_workers_making_the_key_file_at_once_all_get_the_one_written(tmp_path: Path) -> None:
    for attempt in range(20):
        key_file = tmp_path / f"data-{attempt}" / "master.key"
        start = threading.Barrier(STARTING_TOGETHER)

        def worker(key_file: Path = key_file, start: threading.Barrier = start) -> str:
            start.wait()
            master = configured(str(key_file), "")
            assert master is not None
            return master.id

        with ThreadPoolExecutor(STARTING_TOGETHER) as pool:
            ids = {future.result() for future in [pool.submit(worker) for _ in range(STARTING_TOGETHER)]}
        assert ids == {MasterKey.from_file(key_file).id}
        assert [p.name for p in key_file.parent.iterdir()] == ["master.key"]  # no draft left behind
        assert key_file.stat().st_mode & 0o777 == 0o600
