"""Reads on streaming standbys: served there, never older than the reader's own write, skipped when down.

One primary of this module's own, with two real standbys of it
(tests/support/standby.py): one prompt, one applying WAL two seconds late.
Each test makes its own database on the primary (the standbys follow) and
serves the app on it over loopback, so its state (the replicas' counters) is
at hand.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest

from store.replicas import Replicas
from tests.support.accounts import session_at, token_at
from tests.support.app import make_app
from tests.support.customers import ensure_customer
from tests.support.databases import create_database, database_name
from tests.support.metrics import Sample, key, samples
from tests.support.serving import served
from tests.support.standby import Primary, Standby, primary_with_standby
from tests.support.waiting import eventually
from web.access import SESSION_COOKIE
from web.read_your_writes import LSN_COOKIE, LSN_HEADER

DELAY_MS = 2000
TEA = {"sku": "TEA-1", "name": "Green tea", "unit_price": "3.50", "quantity": "1"}


class Servers:
    def __init__(self, primary: Primary, prompt: Standby, delayed: Standby) -> None:
        self.primary, self.prompt, self.delayed = primary, prompt, delayed


@contextmanager
def primary_and_standbys(folder: Path) -> Iterator[Servers]:
    """A primary of its own in `folder`, a prompt standby and one DELAY_MS late; all gone afterwards."""
    with primary_with_standby(folder) as (primary, prompt):
        delayed = Standby(primary, apply_delay_ms=DELAY_MS)
        try:
            yield Servers(primary, prompt, delayed)
        finally:
            delayed.cleanup()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with primary_and_standbys(tmp_path_factory.mktemp("replicas")) as started:
        yield started


@asynccontextmanager
async def replay_paused(standby: Standby) -> AsyncIterator[None]:
    """The standby applies no WAL past what it has (`pg_wal_replay_pause()`) until the block ends.

    The pause takes effect before the next WAL record is applied, so nothing written after it
    is applied until `pg_wal_replay_resume()`.
    """
    conn = await asyncpg.connect(standby.url())
    try:
        await conn.execute("SELECT pg_wal_replay_pause()")
        yield
    finally:
        await conn.execute("SELECT pg_wal_replay_resume()")
        await conn.close()


class Site:
    """The app on a database of its own, read from a standby; an admin signed in, a clerk's API token."""

    def __init__(self, app: Any, http: httpx.AsyncClient, database_url: str, admin_token: str) -> None:
        self.app, self.http, self.database_url = app, http, database_url
        self.admin_token = admin_token

    @property
    def replicas(self) -> Replicas:
        replicas: Replicas = self.app.state.replicas
        return replicas

    async def create_order(self) -> str:
        form = {"customer_id": "ada", "currency": "EUR", "command_id": str(uuid4())}
        response = await self.http.post("/orders", data=form, headers=self.csrf)
        assert response.status_code == 303, response.text
        return str(response.headers["location"]).rsplit("/", 1)[1]

    @property
    def csrf(self) -> dict[str, str]:
        return {"x-csrftoken": self.http.cookies["csrftoken"]}

    async def scrape(self) -> dict[Sample, float]:
        """GET /metrics as Prometheus does, with an admin's token."""
        response = await self.http.get("/metrics", headers={"Authorization": f"Bearer {self.admin_token}"})
        assert response.status_code == 200, response.text
        return samples(response.text)

    async def replica_row(self) -> str:
        """The replica's row on the admin page, as text."""
        admin = await self.http.get("/admin/projections")
        assert admin.status_code == 200
        row = re.search(r'<tr class="replica">(.*?)</tr>', admin.text, re.DOTALL)
        assert row is not None, admin.text
        return " ".join(re.sub(r"<[^>]+>", " ", row[1]).split())


def replica_figures(scraped: dict[Sample, float], replica: str) -> dict[str, float]:
    """The orders_replica_* samples of one replica, by name."""
    return {name: value for (name, labels), value in scraped.items() if ("replica", replica) in labels}


@asynccontextmanager
async def site(servers: Servers, standby: Standby, **settings: Any) -> AsyncIterator[Site]:
    database_url = await create_database(servers.primary.url(), f"orders_{uuid4().hex[:12]}")
    replica_url = standby.url(database_name(database_url))
    app = make_app(
        database_url, csrf_secret="replicas", subscriptions=False, replica_urls=(replica_url,), **settings
    )
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        http.cookies.set(SESSION_COOKIE, await session_at(database_url, "boss", "admin"))
        http.headers["Authorization"] = "Bearer " + await token_at(database_url, "clerk", "clerk")
        await http.get("/orders")  # the CSRF cookie
        here = Site(app, http, database_url, await token_at(database_url, "prometheus", "admin"))
        await ensure_customer(app.state.services.orders, "ada")  # whom the site's orders are for
        await eventually(lambda: _async(here.replicas.replicas[0].usable), timeout=30)
        yield here


async def table_scans(url: str) -> int:
    """How often this server has read the events and the orders' read model (its own statistics)."""
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval(
            "SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0) FROM pg_stat_user_tables "
            "WHERE relname IN ('events', 'order_read_model')"
        )
        return count
    finally:
        await conn.close()


async def test_pages_and_the_api_read_from_the_replica(servers: Servers) -> None:
    async with site(servers, servers.prompt) as here:
        order_id = await here.create_order()
        replica = here.replicas.replicas[0]
        reads_before, primary_before = replica.reads, here.replicas.primary_reads
        replica_url = servers.prompt.url(database_name(here.database_url))
        scans_before = await table_scans(replica_url)
        for _ in range(5):
            assert (await here.http.get(f"/orders/{order_id}")).status_code == 200
            assert (await here.http.get("/orders")).status_code == 200
            assert (await here.http.get(f"/api/orders/{order_id}")).status_code == 200
        # A position no write of this primary gave is not waited for.
        made_up = await here.http.get(f"/api/orders/{order_id}", headers={LSN_HEADER: "FFFFFFFF/FFFFFFFF"})
        assert made_up.status_code == 200  # and read on the replica, as the counts below say
        assert replica.reads - reads_before == 16
        assert here.replicas.primary_reads == primary_before
        # The standby's own statistics say it read the tables (they reach the view within a second or so).
        await eventually(lambda: _more(table_scans(replica_url), scans_before + 15))
        admin = await here.http.get("/admin/projections")
        assert "Read replicas" in admin.text
        assert "in use" in admin.text


async def _more(count: Any, than: int) -> bool:
    return bool(await count >= than)


async def test_a_page_after_a_command_shows_it_though_the_replica_is_two_seconds_late(
    servers: Servers,
) -> None:
    async with site(servers, servers.delayed, replica_wait_seconds=5.0) as here:
        order_id = await here.create_order()
        # The redirect after the command carries where the primary was; the page waits for the replica.
        form = {**TEA, "command_id": str(uuid4())}
        response = await here.http.post(f"/orders/{order_id}/items", data=form, headers=here.csrf)
        assert response.status_code == 303
        assert LSN_COOKIE in response.headers["set-cookie"]
        assert "HttpOnly" in response.headers["set-cookie"]
        assert "SameSite=lax" in response.headers["set-cookie"]
        reads = here.replicas.replicas[0].reads
        page = await here.http.get(f"/orders/{order_id}")
        assert "Green tea" in page.text
        assert here.replicas.replicas[0].reads == reads + 1  # served by the replica, once it had replayed
        # Time travel too: the version the command made is there.
        history = await here.http.get(f"/orders/{order_id}/history?version=2")
        assert history.status_code == 200
        assert "Green tea" in history.text

        # The API: the header goes back with the next read.
        created = await here.http.post("/api/orders", json={"customer_id": "ada", "currency": "EUR"})
        assert created.status_code == 201
        written_at = created.headers[LSN_HEADER]
        new_id = created.headers["location"].rsplit("/", 1)[1]
        read = await here.http.get(f"/api/orders/{new_id}", headers={LSN_HEADER: written_at})
        assert read.status_code == 200
        bad = await here.http.get(f"/api/orders/{new_id}", headers={LSN_HEADER: "yesterday"})
        assert bad.status_code == 400
        assert "x-orders-lsn: 'yesterday' is not a WAL position" in bad.json()["detail"]


async def test_without_its_position_a_read_may_be_older_and_a_short_wait_reads_the_primary(
    servers: Servers,
) -> None:
    async with site(servers, servers.delayed, replica_wait_seconds=0.2) as here:
        created = await here.http.post("/api/orders", json={"customer_id": "ada", "currency": "EUR"})
        new_id = created.headers["location"].rsplit("/", 1)[1]
        # Nothing says where the write was: the replica answers from two seconds ago.
        assert (await here.http.get(f"/api/orders/{new_id}")).status_code == 404
        primary_reads = here.replicas.primary_reads
        read = await here.http.get(f"/api/orders/{new_id}", headers={LSN_HEADER: created.headers[LSN_HEADER]})
        assert read.status_code == 200
        assert here.replicas.primary_reads == primary_reads + 1  # the replica was not there within 0.2 s


async def test_the_what_changed_view_of_a_stale_form_reads_the_primary(servers: Servers) -> None:
    async with site(servers, servers.delayed) as here:
        order_id = await here.create_order()
        form = {**TEA, "command_id": str(uuid4()), "expected_version": "1"}
        assert (
            await here.http.post(f"/orders/{order_id}/items", data=form, headers=here.csrf)
        ).status_code == 303
        price = {"amount": "3.50", "currency": "EUR"}
        change = {"sku": "TEA-1", "name": "Green tea", "unit_price": price, "quantity": 2}
        added = await here.http.post(f"/api/orders/{order_id}/items", json=change)
        assert added.status_code in (200, 201), added.text
        # A form decided on version 2 removes the line the API has changed since.
        stale = {"quantity": "1", "expected_version": "2", "command_id": str(uuid4())}
        headers = {**here.csrf, "HX-Request": "true"}
        response = await here.http.post(f"/orders/{order_id}/items/TEA-1/remove", data=stale, headers=headers)
        assert response.status_code == 409
        assert "Changed since by clerk" in response.text


async def test_a_stopped_replica_is_skipped_and_reads_use_the_primary(servers: Servers) -> None:
    async with site(servers, servers.prompt) as here:
        order_id = await here.create_order()
        replica = here.replicas.replicas[0]
        # What /metrics gives an operator: the replica up, in use, and how far behind.
        figures = replica_figures(await here.scrape(), replica.name)
        assert figures.keys() == {"orders_replica_up", "orders_replica_in_use", "orders_replica_lag_seconds"}
        assert figures["orders_replica_up"] == figures["orders_replica_in_use"] == 1
        assert 0 <= figures["orders_replica_lag_seconds"] < 30
        servers.prompt.stop()
        try:
            # At once, before the next look: a read the replica fails is made again on the primary.
            page = await here.http.get(f"/orders/{order_id}")
            assert page.status_code == 200
            await eventually(lambda: _async(replica.problem.startswith("not answering")), timeout=15)
            primary_reads = here.replicas.primary_reads
            page = await here.http.get(f"/orders/{order_id}")
            assert page.status_code == 200
            assert order_id in page.text
            assert here.replicas.primary_reads == primary_reads + 1
            row = await here.replica_row()
            assert "skipped not answering" in row
            assert "unknown" in row  # how far behind
            # Down, and no lag: not the last one it had.
            figures = replica_figures(await here.scrape(), replica.name)
            assert figures == {"orders_replica_up": 0, "orders_replica_in_use": 0}
        finally:
            servers.prompt.start()
        await eventually(lambda: _async(replica.usable), timeout=30)
        reads = replica.reads
        assert (await here.http.get(f"/orders/{order_id}")).status_code == 200
        assert replica.reads == reads + 1
        figures = replica_figures(await here.scrape(), replica.name)
        assert figures["orders_replica_up"] == figures["orders_replica_in_use"] == 1
        assert "orders_replica_lag_seconds" in figures


async def _async(value: bool) -> bool:
    return value


async def test_with_the_primary_stopped_reads_go_on_from_the_replica_and_commands_answer_503(
    tmp_path: Path,
) -> None:
    # A primary of this test's own: stopping the module's would stop the tests after it.
    with primary_with_standby(tmp_path) as (primary, standby):
        async with site(Servers(primary, standby, standby), standby) as here:
            order_id = await here.create_order()
            price = {"amount": "3.50", "currency": "EUR"}
            added = await here.http.post(
                f"/api/orders/{order_id}/items",
                json={"sku": "TEA-1", "name": "Green tea", "unit_price": price, "quantity": 1},
            )
            written_at = added.headers[LSN_HEADER]
            assert (
                await here.http.get(f"/api/orders/{order_id}", headers={LSN_HEADER: written_at})
            ).is_success

            await asyncio.to_thread(primary.stop)
            reads = here.replicas.replicas[0].reads
            page = await here.http.get(f"/orders/{order_id}")
            assert page.status_code == 200
            assert "Green tea" in page.text
            assert (await here.http.get("/orders")).status_code == 200
            assert (await here.http.get(f"/api/orders/{order_id}")).status_code == 200
            assert here.replicas.replicas[0].reads == reads + 3

            form = {**TEA, "command_id": str(uuid4())}
            refused = await here.http.post(f"/orders/{order_id}/items", data=form, headers=here.csrf)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "5"
            api = await here.http.post("/api/orders", json={"customer_id": "ada", "currency": "EUR"})
            assert api.status_code == 503
            assert api.headers["retry-after"] == "5"
            # The replica stays in use, its lag unknown (the admin page needs the primary itself).
            replica = here.replicas.replicas[0]
            await eventually(lambda: _async(replica.lag_seconds is None))
            assert replica.usable
            scraped = await here.scrape()  # the admin's token is read on the replica
            assert scraped[key("orders_database_up")] == 0
            figures = replica_figures(scraped, replica.name)
            assert figures == {"orders_replica_up": 1, "orders_replica_in_use": 1}


async def test_a_replica_too_far_behind_is_skipped_until_it_catches_up(servers: Servers) -> None:
    async with site(servers, servers.prompt, replica_max_lag_seconds=0.5) as here:
        replica = here.replicas.replicas[0]
        # Its replay paused, the replica falls behind the write for as long as the test looks.
        async with replay_paused(servers.prompt):
            created = await here.http.post("/api/orders", json={"customer_id": "ada", "currency": "EUR"})
            assert created.status_code == 201
            await eventually(lambda: _async(not replica.usable))
            assert replica.problem == "more than 0.5 s behind: skipped"
            primary_reads = here.replicas.primary_reads
            assert (await here.http.get("/orders")).status_code == 200
            assert here.replicas.primary_reads == primary_reads + 1
            row = await here.replica_row()
            assert "skipped more than 0.5 s behind: skipped" in row
            behind = re.search(r"([0-9.]+) s", row.split("skipped", 2)[-1])
            assert behind is not None
            assert float(behind[1]) > 0.5
            figures = replica_figures(await here.scrape(), replica.name)
            assert figures["orders_replica_up"] == 1
            assert figures["orders_replica_in_use"] == 0
            assert figures["orders_replica_lag_seconds"] > 0.5
        await eventually(lambda: _async(replica.usable))
        assert "in use" in await here.replica_row()


async def test_a_live_pages_update_reads_the_primary_that_notified_it(servers: Servers) -> None:
    async with site(servers, servers.delayed) as here:
        order_id = await here.create_order()
        price = {"amount": "3.50", "currency": "EUR"}
        item = {"sku": "TEA-1", "name": "Green tea", "unit_price": price, "quantity": 1}
        assert (await here.http.post(f"/api/orders/{order_id}/items", json=item)).is_success
        # Another browser's open page (no cookie of this write) is told of version 2 and asks at once.
        here.http.cookies.delete(LSN_COOKIE)
        update = await here.http.get(
            f"/orders/{order_id}/live-update?newer_than=1", headers={"HX-Request": "true"}
        )
        assert update.status_code == 200
        assert "Green tea" in update.text
