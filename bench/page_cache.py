"""The page render cache in use: hit rates of three ways of using the pages, and what it holds.

    uv run --group bench python -m bench.page_cache

In process (the app over ASGI, no server), signed in as a clerk, on an embedded
PostgreSQL: (1) the order page of 20 lines asked again and again (what 4a
measures), (2) a person working on an order with htmx: each add answered with
the order's partial, then the page read twice, (3) the time-travel slider
swept over a 40-event order twice, (4) the list page. Then the cache is
filled with many orders' pages, to compare its byte estimate with what
tracemalloc sees it hold. Counts, not timings: the machine's load does not
change them.
"""

from __future__ import annotations

import asyncio
import tempfile
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from litestar import Litestar

from bench import workload
from bench.lab import clerk_session
from store.database import embedded_postgres
from store.migrations import migrate
from web.access import SESSION_COOKIE
from web.app import create_app
from web.render_cache import RenderCache
from web.settings import Settings

ITEM = {"name": "Item", "unit_price": "3.50", "quantity": "2"}


def cache_of(app: Litestar) -> RenderCache:
    cache: RenderCache = app.state.render_cache
    return cache


async def new_order(http: httpx.AsyncClient, lines: int) -> str:
    """An order of c-1 (registered in `measure`'s set-up) with `lines` lines."""
    created = await http.post("/orders", data={"customer_id": "c-1", "currency": "EUR"})
    order = str(created.headers["location"])
    for n in range(lines):
        await http.post(f"{order}/items", data={**ITEM, "sku": f"SKU-{n:02d}"})
    return order


def report(name: str, app: Litestar, before: Any) -> None:
    after = cache_of(app).stats()
    for kind, (hits, misses) in after.by_kind.items():
        old_hits, old_misses = before.by_kind.get(kind, (0, 0))
        hits, misses = hits - old_hits, misses - old_misses
        if hits + misses:
            print(f"{name}: {kind}: {hits} hits, {misses} misses ({hits / (hits + misses):.1%})")


@asynccontextmanager
async def signed_in(url: str) -> AsyncIterator[tuple[Litestar, httpx.AsyncClient]]:
    """The app over ASGI on the (migrated) database at `url`, no subscriptions, and a client
    signed in as a clerk with its CSRF token, for orders of c-1 (registered)."""
    conn = await asyncpg.connect(url)
    await migrate(conn)
    await conn.close()
    app = create_app(Settings(database_url=url, csrf_secret="bench", subscriptions=False, pool_size=4))
    transport = httpx.ASGITransport(app=app)
    async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://bench.local") as http:
        http.cookies.set(SESSION_COOKIE, await clerk_session(url))
        await http.get("/orders")
        http.headers["x-csrftoken"] = http.cookies["csrftoken"]
        await workload.register_customers(app.state.services.orders, ["c-1"])
        yield app, http


async def measure(url: str) -> None:
    async with signed_in(url) as (app, http):
        cache = cache_of(app)

        order = await new_order(http, 20)
        before = cache.stats()
        for _ in range(1000):
            await http.get(order)
        report("1. the order page, 1,000 times", app, before)

        before = cache.stats()
        work = await new_order(http, 0)
        for n in range(20):
            await http.post(f"{work}/items", data={**ITEM, "sku": f"W-{n}"}, headers={"HX-Request": "true"})
            await http.get(work)
            await http.get(work)
        report("2. 20 htmx adds, each then the page twice", app, before)

        long = await new_order(http, 39)
        before = cache.stats()
        slider = {"HX-Request": "true", "HX-Target": "snapshot"}
        for _ in range(2):
            for version in range(1, 41):
                await http.get(f"{long}/history?version={version}", headers=slider)
        report("3. the slider over 40 versions, twice", app, before)

        before = cache.stats()
        for _ in range(200):
            await http.get("/orders")
        report("4. the list page, 200 times", app, before)

        stats = cache.stats()
        print(f"held: {stats.entries} entries, estimated {stats.bytes / 2**20:.2f} MiB")

        # What the estimate is worth: fill a fresh cache with 200 orders' pages, measured by tracemalloc.
        cache.clear()
        pages = [await new_order(http, 20) for _ in range(40)]
        tracemalloc.start()
        start = tracemalloc.get_traced_memory()[0]
        for page in pages:
            await http.get(page)
        held = tracemalloc.get_traced_memory()[0] - start
        tracemalloc.stop()
        stats = cache.stats()
        print(
            f"40 order pages of 20 lines: estimate {stats.bytes / 2**20:.2f} MiB, "
            f"tracemalloc {held / 2**20:.2f} MiB more held after rendering them "
            f"({stats.entries} entries, {stats.bytes / len(pages) / 1024:.0f} KiB a page)"
        )


def main() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="orders-page-cache-") as folder,
        embedded_postgres(Path(folder) / "pg", delete=True) as url,
    ):
        asyncio.run(measure(url))


if __name__ == "__main__":
    main()
