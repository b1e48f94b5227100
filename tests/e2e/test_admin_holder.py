"""The admin page names the instance that holds each job now, from PostgreSQL's lock table.

Every job under a leader lock: the projections' and workflows' subscriptions
and the leader loops. Two app instances on one database; the holder is killed
with SIGKILL. The survivor takes the locks over, and its page names itself for
every job before any new event is written, while `subscriptions.leader` (the
last writer) still names the dead one.
"""

from __future__ import annotations

import re
import socket
import subprocess
from typing import Any

import asyncpg
import httpx
from litestar.testing import AsyncTestClient

from store.read.status import JOBS
from tests.e2e.test_live_instances import create_and_add, settled
from tests.support.accounts import session_for
from tests.support.customers import register_with
from tests.support.waiting import eventually
from web.access import SESSION_COOKIE

HELD = re.compile(r'id="holder-(\w+)">held now by ([^<]+)<')
EVERY_JOB = {name for name, _, _ in JOBS}


async def test_the_page_says_no_instance_holds_a_job_while_none_runs(client: AsyncTestClient[Any]) -> None:
    page = await client.get("/admin/projections")  # an app with its subscriptions and loops left off
    assert page.status_code == 200
    idle = re.findall(r'id="holder-(\w+)">held by no instance now<', page.text)
    assert sorted(idle) == sorted(EVERY_JOB)


async def holders(url: str, admin: str) -> dict[str, str]:
    """Each job's holder as the instance at `url` shows it on /admin/projections."""
    async with httpx.AsyncClient(base_url=url, cookies={SESSION_COOKIE: admin}) as client:
        page = await client.get("/admin/projections")
    assert page.status_code == 200
    return dict(HELD.findall(page.text))


async def test_the_page_names_the_holder_and_the_survivor_once_the_holder_is_killed(
    servers: list[tuple[str, subprocess.Popen[bytes]]], pool: asyncpg.Pool
) -> None:
    admin = await session_for(pool, "ada", "admin")
    clerk = {SESSION_COOKIE: await session_for(pool, "till", "clerk")}
    await register_with(pool, "customer-0")
    async with httpx.AsyncClient(base_url=servers[0][0], cookies=clerk) as client:
        await create_and_add(client, "customer-0")
    last_writer = await settled(pool)
    instances = {f"{socket.gethostname()}:{process.pid}": (url, process) for url, process in servers}

    async def both_agree() -> dict[str, str] | None:
        shown = [await holders(url, admin) for url, _ in servers]
        whole = shown[0].keys() == EVERY_JOB and set(shown[0].values()) <= instances.keys()
        return shown[0] if whole and shown[0] == shown[1] else None

    before = await eventually(both_agree)
    holder = before["customer_summaries"]
    # The first instance up took every lock: its death leaves every job to the survivor.
    assert set(before.values()) == {holder}
    assert holder == last_writer  # it wrote the last batch, and holds the lock still
    ((survivor, (survivor_url, _)),) = [(i, v) for i, v in instances.items() if i != holder]
    events = await pool.fetchval("SELECT count(*) FROM events")

    instances[holder][1].kill()  # SIGKILL: no clean shutdown, its connections just drop
    instances[holder][1].wait(10)

    async def taken_over() -> dict[str, str] | None:
        shown = await holders(survivor_url, admin)
        return shown if shown == dict.fromkeys(EVERY_JOB, survivor) else None

    assert await eventually(taken_over, timeout=20)
    assert await pool.fetchval("SELECT count(*) FROM events") == events, "no event was written meanwhile"
    leader = await pool.fetchval("SELECT leader FROM subscriptions WHERE name = 'customer_summaries'")
    assert leader == holder, "the last writer is still the dead instance: the page did not read it"
