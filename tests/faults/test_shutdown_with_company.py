"""`orders serve` in company: the other commands on the same embedded folder, and writers at the stop."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from store.database import embedded_postgres
from tests.support.accounts import token_on
from tests.support.customers import register_on
from tests.support.embedded_serving import (
    Serving,
    assert_postgres_stopped,
    orders_serve,
    own_data_dir,
    postmaster,
    run_orders,
    users_listed,
)
from tests.support.figures import record

# (the command's arguments, standard input, a line its output must hold)
COMMANDS = [
    (("seed", "--orders", "3"), "", ""),
    (("verify",), "", ""),
    (("export", "--format", "csv"), "", "stream_id"),
    (("replay",), "", ""),
    (("users", "add", "ada", "--role", "admin", "--password-stdin"), "a long enough password\n", ""),
    (("users", "list"), "", "ada"),
    (("tokens", "add", "robot", "--role", "viewer"), "", "orders_"),
    (("tokens", "list"), "", "robot"),
]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with own_data_dir() as folder:
        yield folder


@pytest.mark.reliability
def test_every_command_runs_beside_serve_and_leaves_its_database_running(data_dir: Path) -> None:
    with orders_serve(data_dir) as serving:
        running = postmaster(serving.folder)
        assert running is not None
        for args, stdin, shown in COMMANDS:
            result = run_orders(data_dir, *args, stdin=stdin)
            assert result.returncode == 0, (args, result.stderr)
            assert shown in result.stdout, (args, result.stdout)
            assert postmaster(serving.folder) == running, f"`orders {' '.join(args)}` stopped the database"
            assert users_listed(serving.folder) == [serving.process.pid], args
            assert httpx.get(serving.url + "/healthz", timeout=10).status_code == 200, args
        serving.stop(signal.SIGTERM)
        assert serving.process.returncode == 0
    assert_postgres_stopped(serving.folder, running[1])


def test_a_command_beside_serve_works_and_the_server_answers_after_it(data_dir: Path) -> None:
    """The fast part of the one above, run with every test: `verify` beside a serving instance."""
    with orders_serve(data_dir) as serving:
        running = postmaster(serving.folder)
        result = run_orders(data_dir, "verify")
        assert result.returncode == 0, result.stderr
        assert postmaster(serving.folder) == running
        assert httpx.get(serving.url + "/healthz", timeout=10).status_code == 200


# -- a stop under load


@dataclass
class Acknowledged:
    """What the server answered as done: orders created (201) and items added (200), by order."""

    orders: set[str] = field(default_factory=set)
    items: set[tuple[str, str]] = field(default_factory=set)
    refused: list[int] = field(default_factory=list)  # other statuses seen before the stop


async def _writer(url: str, token: str, name: str, done: Acknowledged) -> None:
    """Create orders and add items to them until the server stops answering."""
    bearer = {"authorization": f"Bearer {token}"}
    price = {"amount": "2.50", "currency": "EUR"}
    async with httpx.AsyncClient(base_url=url, headers=bearer, timeout=30) as client:
        try:
            for n in range(10_000):
                created = await client.post("/api/orders", json={"customer_id": name, "currency": "EUR"})
                if created.status_code != 201:
                    done.refused.append(created.status_code)
                    continue
                order_id = created.json()["order"]["order_id"]
                done.orders.add(order_id)
                for line in range(3):
                    sku = f"{name}-{n}-{line}"
                    item = {"sku": sku, "name": "Tea", "unit_price": price, "quantity": 1}
                    added = await client.post(f"/api/orders/{order_id}/items", json=item)
                    if added.status_code == 200:
                        done.items.add((order_id, sku))
                    else:
                        done.refused.append(added.status_code)
        except httpx.TransportError:
            return  # the server stopped: connection refused or closed


async def _load_then_stop(
    serving: Serving, token: str, clients: int, load_seconds: float
) -> tuple[Acknowledged, float]:
    done = Acknowledged()
    writers = [asyncio.create_task(_writer(serving.url, token, f"w{i}", done)) for i in range(clients)]
    await asyncio.sleep(load_seconds)
    assert done.items, "the writers wrote nothing before the stop"
    started = time.monotonic()
    serving.process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(serving.process.wait, 60)
    took = time.monotonic() - started
    await asyncio.wait_for(asyncio.gather(*writers), 60)
    return done, took


async def _the_log(folder: Path) -> tuple[set[str], set[tuple[str, str]]]:
    """Orders created and (order, sku) of items added, read from the folder's log after a restart."""
    with embedded_postgres(folder) as url:
        conn = await asyncpg.connect(url)
        try:
            created = await conn.fetch("SELECT stream_id FROM events WHERE type = 'OrderCreated'")
            added = await conn.fetch(
                "SELECT stream_id, data->>'sku' AS sku FROM events WHERE type = 'ItemAdded'"
            )
        finally:
            await conn.close()
    return {row["stream_id"] for row in created}, {(row["stream_id"], row["sku"]) for row in added}


@pytest.mark.reliability
@pytest.mark.parametrize(("clients", "workers"), [(8, 1), (32, 2)])
def test_a_stop_under_load_loses_no_acknowledged_command(data_dir: Path, clients: int, workers: int) -> None:
    grace = 10.0
    with orders_serve(data_dir, "--workers", str(workers), "--grace", str(grace)) as serving:
        running = postmaster(serving.folder)
        assert running is not None
        token = token_on(running[1], "loader", "clerk")
        register_on(
            running[1], *(f"w{i}" for i in range(clients)), master=serving.master
        )  # the writers' customers
        done, took = asyncio.run(_load_then_stop(serving, token, clients, load_seconds=3.0))
        assert serving.process.returncode == 0
    assert_postgres_stopped(serving.folder, running[1])
    assert done.refused == [], "a write was refused while the server stopped"
    orders, items = asyncio.run(_the_log(serving.folder))
    lost = len(done.orders - orders) + len(done.items - items)
    assert lost == 0, f"acknowledged but not in the log: {done.orders - orders}, {done.items - items}"
    assert took < grace, f"the stop took {took:.1f} s"
    acknowledged = len(done.orders) + len(done.items)
    record(f"stop under load: {clients} writers, {workers} worker(s): stop took (s)", f"{took:.2f}")
    record(f"stop under load: {clients} writers, {workers} worker(s): commands acknowledged", acknowledged)
    record(f"stop under load: {clients} writers, {workers} worker(s): acknowledged commands lost", lost)
