"""Tampering as an operator finds it: `orders verify` reports it, exits non-zero; the admin page shows it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from store.log.event_store import EventStore
from tests.support.accounts import session_for
from tests.support.app import make_app
from tests.support.servers import ROOT
from tests.support.tampering import behind_the_apps_back, change, orders
from web.access import SESSION_COOKIE

ORDERS = Path(sys.executable).parent / "orders"


def run_verify(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [str(ORDERS), "verify"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def test_orders_verify_prints_a_report_exits_non_zero_on_a_difference_and_the_admin_page_shows_it(
    database_url: str, pool: asyncpg.Pool, store: EventStore
) -> None:
    _draft, _placed, cancelled = await orders(store)
    clean = run_verify(database_url)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    lines = clean.stdout.splitlines()
    assert lines[0].startswith("orders verify: checked 3 streams, 11 events and 3 order_read_model rows")
    assert "orders verify: no differences" in lines

    async with behind_the_apps_back(pool) as conn:
        await change(conn, cancelled, 4, """data = jsonb_set(data, '{reason}', '"Fraud"')""")
    found = run_verify(database_url)
    assert found.returncode == 1
    assert f"{cancelled}: version 4: the stored hash does not match" in found.stdout
    assert found.stdout.splitlines()[-1] == "orders verify: 1 difference found"

    app = make_app(database_url, csrf_secret="s", pool_size=2, subscriptions=False)
    client: AsyncTestClient[Any]
    async with AsyncTestClient(app=app) as client:
        client.cookies.set(SESSION_COOKIE, await session_for(pool, "ada", "admin"))
        page = (await client.get("/admin/projections")).text
    assert "Integrity of the log" in page
    assert "1 difference found" in page
    assert cancelled in page
    assert "version 4: the stored hash does not match" in page
