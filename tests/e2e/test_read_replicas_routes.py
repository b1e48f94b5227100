"""Every read page and read API goes to the replica, time travel included, and after a write reads it.

The same servers as tests/e2e/test_read_replicas.py (a primary of this
module's own, a prompt standby and one two seconds late). To show that a
page's content came from the replica and not only that the replica was
chosen, the prompt standby's replay is paused: the primary then has a change
the replica has not, and every read shows the order without it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from tests.e2e.test_read_replicas import (
    TEA,
    Servers,
    Site,
    primary_and_standbys,
    replay_paused,
    site,
    table_scans,
)
from tests.support.databases import database_name
from tests.support.waiting import eventually
from web.read_your_writes import LSN_COOKIE

BLACK_TEA = {"sku": "TEA-2", "name": "Black tea", "unit_price": "4.00", "quantity": "1"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with primary_and_standbys(tmp_path_factory.mktemp("replica-routes")) as started:
        yield started


async def add(here: Site, order_id: str, item: dict[str, str]) -> None:
    form = {**item, "command_id": str(uuid4())}
    response = await here.http.post(f"/orders/{order_id}/items", data=form, headers=here.csrf)
    assert response.status_code == 303, response.text


async def replayed_to(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        position: int = await conn.fetchval("SELECT pg_last_wal_replay_lsn()")
        return position
    finally:
        await conn.close()


async def caught_up(here: Site, replica_url: str) -> None:
    """Wait until the replica has replayed everything the primary has committed so far."""
    primary_at = await here.replicas.commit_position()
    assert primary_at is not None

    async def there() -> bool:
        return await replayed_to(replica_url) >= primary_at

    await eventually(there, timeout=30)


async def test_time_travel_the_timeline_diffs_the_event_log_and_exports_read_the_replica(
    servers: Servers,
) -> None:
    # No lag bound to speak of: the paused replica stays in use however long the reads take.
    async with site(servers, servers.prompt, replica_max_lag_seconds=3600) as here:
        order_id = await here.create_order()
        await add(here, order_id, TEA)  # version 2
        replica_url = servers.prompt.url(database_name(here.database_url))
        await caught_up(here, replica_url)
        async with replay_paused(servers.prompt):
            await add(here, order_id, BLACK_TEA)  # version 3: on the primary, not on the replica
            moment = datetime.now(UTC).isoformat()
            here.http.cookies.delete(LSN_COOKIE)  # a reader who did not write: no reason to wait
            replica = here.replicas.replicas[0]
            reads, primary_reads = replica.reads, here.replicas.primary_reads
            scans = await table_scans(replica_url)

            async def read(path: str) -> str:
                response = await here.http.get(path)
                assert response.status_code == 200, (path, response.text)
                return response.text

            pages = {
                "history": await read(f"/orders/{order_id}/history?version=2"),
                "history at a moment": await read(f"/orders/{order_id}/history?at={moment}"),
                "diff": await read(f"/orders/{order_id}/diff?from_version=1"),
                "timeline": await read(f"/orders/{order_id}/timeline"),
                "event": await read(f"/orders/{order_id}/events/2"),
                "event log": await read(f"/events?order={order_id}"),
            }
            for name, text in pages.items():
                assert "Green tea" in text, name
                assert "Black tea" not in text, name  # the primary would show it
            # The replica does not have version 3 yet.
            assert (await here.http.get(f"/orders/{order_id}/events/3")).status_code == 404

            api_log = (await here.http.get("/api/events?limit=500")).json()
            assert [e["version"] for e in api_log["events"] if e["stream_id"] == order_id] == [1, 2]
            api_events = (await here.http.get(f"/api/orders/{order_id}/events")).json()
            assert [e["type"] for e in api_events["events"]] == ["OrderCreated", "ItemAdded"]

            exported = await read(f"/orders/{order_id}/export?format=ndjson")
            assert [json.loads(line)["version"] for line in exported.splitlines()] == [1, 2]
            log_export = await read("/events/export?format=csv")
            rows = [r for r in csv.DictReader(io.StringIO(log_export)) if r["stream_id"] == order_id]
            assert [int(r["version"]) for r in rows] == [1, 2]

            # 11 requests, each served by the replica (the app's count), none by the primary.
            assert replica.reads - reads == 11
            assert here.replicas.primary_reads == primary_reads
            # The standby's own statistics say it read the tables.
            await eventually(lambda: _more(table_scans(replica_url), scans + 11))
        # Replay resumed: the replica catches up, and the same read shows version 3.
        await caught_up(here, replica_url)
        assert "Black tea" in await read(f"/orders/{order_id}/timeline")


async def _more(count: Any, than: int) -> bool:
    return bool(await count >= than)


async def test_time_travel_right_after_a_command_shows_it_though_the_replica_is_two_seconds_late(
    servers: Servers,
) -> None:
    async with site(servers, servers.delayed, replica_wait_seconds=10.0) as here:
        order_id = await here.create_order()
        replica = here.replicas.replicas[0]

        # The first read after the command: the version it made, by number.
        await add(here, order_id, TEA)
        reads, primary_reads = replica.reads, here.replicas.primary_reads
        history = await here.http.get(f"/orders/{order_id}/history?version=2")
        assert history.status_code == 200, history.text
        assert "Green tea" in history.text

        # And by a moment just after the command.
        await add(here, order_id, BLACK_TEA)
        moment = datetime.now(UTC).isoformat()
        history = await here.http.get(f"/orders/{order_id}/history?at={moment}")
        assert history.status_code == 200, history.text
        assert "Black tea" in history.text

        # Both served by the replica, once it had replayed the command (the cookie said how far).
        assert replica.reads - reads == 2
        assert here.replicas.primary_reads == primary_reads


async def test_the_live_event_log_goes_on_from_where_the_replicas_page_ends(servers: Servers) -> None:
    async with site(servers, servers.prompt, replica_max_lag_seconds=3600) as here:
        order_id = await here.create_order()
        replica_url = servers.prompt.url(database_name(here.database_url))
        await caught_up(here, replica_url)
        async with replay_paused(servers.prompt):
            await add(here, order_id, BLACK_TEA)  # on the primary, not on the replica
            here.http.cookies.delete(LSN_COOKIE)
            page = await here.http.get(f"/events?order={order_id}")
            assert page.status_code == 200
            assert "Black tea" not in page.text  # the page is the replica's
            # Its live stream (from the primary) starts at the page's horizon: the event the
            # replica has not replayed comes through it, not lost between the two servers.
            found = re.search(r"/events/live\?horizon=([0-9]+)", page.text)
            assert found is not None
            async with asyncio.timeout(60), here.http.stream("GET", found[0].replace("&amp;", "&")) as live:
                async for line in live.aiter_lines():
                    if "Black tea" in line:
                        break
