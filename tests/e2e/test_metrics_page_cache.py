"""/metrics shows how much rendered HTML this process keeps (the page cache fills as pages are opened,
up to its bound) and how many blocks Python's allocator holds: what a soak reads memory against."""

from __future__ import annotations

import httpx

from tests.support.accounts import session_at, token_at
from tests.support.app import make_app
from tests.support.customers import app_master, register_at
from tests.support.metrics import key, samples
from tests.support.serving import served
from web.access import SESSION_COOKIE

CACHE = key("orders_page_cache_bytes")


async def test_the_page_cache_size_grows_as_pages_are_rendered_and_stays_within_its_bound(
    database_url: str,
) -> None:
    await register_at(database_url, "cust-pc", master=app_master())
    app = make_app(database_url, csrf_secret="test-secret", pool_size=4, subscriptions=False, page_cache_mb=1)
    token = await token_at(database_url, "prometheus-pc", "admin")
    async with (
        served(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as clerk,
        httpx.AsyncClient(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as scraper,
    ):
        clerk.cookies.set(SESSION_COOKIE, await session_at(database_url, "pc-clerk", "clerk"))
        await clerk.get("/login")
        clerk.headers["x-csrftoken"] = clerk.cookies["csrftoken"]

        async def cached() -> float:
            response = await scraper.get("/metrics")
            assert response.status_code == 200
            scraped = samples(response.text)
            assert scraped[key("orders_python_allocated_blocks")] > 10_000  # an app holds that many at least
            return scraped[CACHE]

        created = await clerk.post("/orders", data={"customer_id": "cust-pc", "currency": "EUR"})
        assert created.status_code == 303
        order = created.headers["location"]
        before = await cached()
        assert (await clerk.get(order)).status_code == 200
        after_one = await cached()
        assert after_one > before  # the order's page is kept

        for n in range(40):  # each line a new version, each version a page of its own
            item = {"sku": f"SKU-{n}", "name": "Thing " * 30, "unit_price": "2.50", "quantity": "1"}
            assert (await clerk.post(f"{order}/items", data=item)).status_code == 303
            assert (await clerk.get(order)).status_code == 200
        assert after_one < await cached() <= 2**20  # bounded by ORDERS_PAGE_CACHE_MB (here 1)
