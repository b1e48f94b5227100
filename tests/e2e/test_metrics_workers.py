"""`orders serve --workers 2`: both workers count into one fresh folder, any of them answers the sum,
and the folder is gone when the server stops."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from store.personal import MasterKey
from tests.support.accounts import token_at
from tests.support.customers import register_on
from tests.support.metrics import key, samples
from tests.support.servers import ROOT, free_port, wait_until_up
from web.metrics import forget_dead_workers

ORDERS = Path(sys.executable).parent / "orders"
CREATED = key("orders_commands_total", command="CreateOrder", outcome="accepted")


def test_two_workers_count_into_one_folder_that_is_removed_at_the_end(
    database_url: str, tmp_path: Path
) -> None:
    clerk = {"Authorization": "Bearer " + asyncio.run(token_at(database_url, "till", "clerk"))}
    admin = {"Authorization": "Bearer " + asyncio.run(token_at(database_url, "prometheus", "admin"))}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    # A data folder of its own: both workers find no master key there and make it as they start.
    env |= {"DATABASE_URL": database_url, "TMPDIR": str(tmp_path), "ORDERS_DATA_DIR": str(tmp_path / "data")}
    command = [str(ORDERS), "serve", "--workers", "2", "--port", str(port)]
    log = tmp_path / "serve.log"  # uvicorn's lines: a worker replaced, say, when it failed its health check
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=log.open("w"))
    try:
        wait_until_up(url, process, timeout=60)
        (folder,) = tmp_path.glob("orders-metrics-*")
        master = MasterKey.from_file(tmp_path / "data" / "master.key")
        register_on(database_url, *(f"c-{n}" for n in range(20)), master=master)
        for n in range(20):
            # A connection of its own each time, so that the workers share the requests.
            with httpx.Client(base_url=url, headers=clerk) as client:
                made = client.post("/api/orders", json={"customer_id": f"c-{n}", "currency": "EUR"})
                assert made.status_code == 201
        scrapes = []
        for _ in range(6):
            with httpx.Client(base_url=url, headers=admin) as scraper:
                scrapes.append(samples(scraper.get("/metrics").text))
        workers = {path.name for path in folder.glob("counter_*.db")}
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0

    # Each worker keeps its counts in a file of its own. On a busy machine uvicorn may find a worker
    # slow to answer its health check and replace it ("Child process [pid] died"): the new worker
    # has a file of its own too, and the old one's counts stay in the sum.
    replaced = log.read_text().count("] died")
    assert len(workers) == 2 + replaced, (workers, log.read_text())
    assert [scrape[CREATED] for scrape in scrapes] == [20.0] * 6  # whichever worker answered
    assert all(scrape[key("orders_database_up")] == 1 for scrape in scrapes)
    assert not folder.exists()
    assert list(tmp_path.glob("orders-metrics-*")) == []


def test_a_killed_workers_open_streams_leave_the_sum_at_the_next_scrape(tmp_path: Path) -> None:
    # A worker that counted two open streams, then died without a clean shutdown.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    died = "import os; from store.metrics import SSE_CLIENTS; SSE_CLIENTS.inc(2); os._exit(9)"
    subprocess.run([sys.executable, "-c", died], cwd=ROOT, env=env, check=False)
    (left,) = tmp_path.glob("gauge_livesum_*.db")
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    assert registry.get_sample_value("orders_sse_clients") == 2

    forget_dead_workers(str(tmp_path))

    assert not left.exists()
    assert registry.get_sample_value("orders_sse_clients") in (None, 0)
