"""A per-client limit on writes (429 with Retry-After past it), and the allowed Host headers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.support.accounts import session_at, token_at
from tests.support.app import make_app
from tests.support.customers import register_in
from tests.support.figures import record
from web.access import SESSION_COOKIE
from web.cli import app_factory
from web.ratelimit import RateLimit, WriteLimiter, parse_limit


@pytest.fixture
async def limited(database_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = make_app(
        database_url, csrf_secret="s", pool_size=2, subscriptions=False, write_limit=RateLimit(5, 60)
    )
    async with AsyncTestClient(app=app) as client:
        # Signed in (an admin's session for the pages, a clerk's token for the API): the limit is
        # what refuses, not the access rules.
        client.cookies.set(SESSION_COOKIE, await session_at(database_url, "ada", "admin"))
        client.headers["Authorization"] = "Bearer " + await token_at(database_url, "till", "clerk")
        assert (await client.get("/orders")).status_code == 200
        yield client


async def test_writes_past_the_limit_get_429_with_retry_after_and_change_nothing(
    limited: AsyncTestClient[Any], database_url: str
) -> None:
    register_in(limited, "eager")  # in the app's own layer: no request, nothing from the limit
    csrf = {"x-csrftoken": limited.cookies["csrftoken"]}
    form = {"customer_id": "eager", "currency": "EUR"}
    answers = [
        (await limited.post("/orders", data=form, headers=csrf, follow_redirects=False)).status_code
        for _ in range(5)
    ]
    assert answers == [303] * 5
    refused = await limited.post("/orders", data=form, headers=csrf, follow_redirects=False)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 12
    assert "Too many changes from your address" in refused.text
    assert "<html" in refused.text
    htmx = await limited.post("/orders", data=form, headers={**csrf, "HX-Request": "true"})
    assert htmx.status_code == 429
    assert "<html" not in htmx.text
    api = await limited.post("/api/orders", json=form)
    assert api.status_code == 429
    assert api.headers["content-type"] == "application/problem+json"
    assert api.headers["retry-after"].isdigit()
    # Reads are not limited.
    assert (await limited.get("/orders")).status_code == 200
    orders = (await limited.get("/api/orders?customer=eager")).json()["orders"]
    assert len(orders) == 5


def test_each_client_has_its_own_bucket_that_refills_with_time() -> None:
    now = [0.0]
    limiter = WriteLimiter(RateLimit(3, 60), clock=lambda: now[0])
    assert [limiter.wait("10.0.0.1") for _ in range(3)] == [0, 0, 0]
    assert limiter.wait("10.0.0.1") == pytest.approx(20)
    assert limiter.wait("10.0.0.2") == 0  # another client is not held back
    now[0] = 20.0
    assert limiter.wait("10.0.0.1") == 0  # one write a 20 s
    assert limiter.wait("10.0.0.1") == pytest.approx(20)
    now[0] = 1000.0
    assert [limiter.wait("10.0.0.1") for _ in range(3)] == [0, 0, 0]  # a full bucket, no more


def test_idle_clients_are_forgotten_so_memory_stays_bounded() -> None:
    now = [0.0]
    limiter = WriteLimiter(RateLimit(2, 1), clock=lambda: now[0], max_clients=100)
    for client in range(100):
        limiter.wait(f"10.0.{client // 256}.{client % 256}")
    now[0] = 5.0
    limiter.wait("192.168.0.1")
    assert len(limiter.buckets) == 1
    for client in range(1000):
        limiter.wait(f"client-{client}")
    assert len(limiter.buckets) <= 100


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("120/minute", RateLimit(120, 60)),
        ("10/s", RateLimit(10, 1)),
        ("500/10m", RateLimit(500, 600)),
        (" 30 / hour ", RateLimit(30, 3600)),
        ("off", None),
        ("", None),
        (None, None),
    ],
)
def test_the_limit_is_written_as_writes_per_period(text: str | None, limit: RateLimit | None) -> None:
    assert parse_limit(text) == limit


@pytest.mark.parametrize("text", ["120", "0/minute", "10/0s", "ten/minute", "10/fortnight", "-1/s"])
def test_a_limit_that_makes_no_sense_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="a write limit looks like"):
        parse_limit(text)


async def test_only_the_allowed_hosts_are_answered(database_url: str) -> None:
    app = make_app(
        database_url, csrf_secret="s", pool_size=2, subscriptions=False, allowed_hosts=["orders.example.com"]
    )
    async with AsyncTestClient(app=app) as client:
        client.cookies.set(SESSION_COOKIE, await session_at(database_url, "ada", "admin"))
        client.headers["Authorization"] = "Bearer " + await token_at(database_url, "till", "clerk")
        assert (await client.get("/orders", headers={"Host": "orders.example.com"})).status_code == 200
        for host in ("evil.example", "orders.example.com.evil.example", "www.orders.example.com"):
            response = await client.get("/orders", headers={"Host": host})
            assert response.status_code == 400, host
        api = await client.post(
            "/api/orders", json={"customer_id": "a", "currency": "EUR"}, headers={"Host": "x"}
        )
        assert api.status_code == 400
    record(
        "write limit and hosts: refusals checked", "429 page, htmx partial and API problem; 3 foreign hosts"
    )


def write_limiters(guards: list[Any]) -> list[WriteLimiter]:
    """The write limits among the app's guards (the access rules' `authorize` is always there)."""
    return [guard for guard in guards if isinstance(guard, WriteLimiter)]


def test_the_environment_configures_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nowhere/orders")
    monkeypatch.setenv("ORDERS_SECRET", "s")
    monkeypatch.setenv("ORDERS_WRITE_LIMIT", "60/minute")
    monkeypatch.setenv("ORDERS_ALLOWED_HOSTS", "orders.example.com, localhost:8000")
    app = app_factory()
    assert [limiter.limit for limiter in write_limiters(app.guards)] == [RateLimit(60, 60)]
    assert app.allowed_hosts is not None
    assert app.allowed_hosts.allowed_hosts == ["orders.example.com", "localhost:8000"]
    monkeypatch.delenv("ORDERS_WRITE_LIMIT")
    monkeypatch.delenv("ORDERS_ALLOWED_HOSTS")
    app = app_factory()
    assert not write_limiters(app.guards)
    assert not app.allowed_hosts
    assert "ORDERS_WRITE_LIMIT" not in os.environ
