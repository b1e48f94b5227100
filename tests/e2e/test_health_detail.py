"""Who may read /healthz?detail: only an admin, by session or API token; plain /healthz stays open to all.

The detail names database sessions, users and their queries. Asked by anyone
else, it answers 401 (nobody known) or 403 (known, not an admin) and says
nothing of the database; it never falls back to the plain answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from tests.support.app import make_app
from tests.support.visitors import ROLES, visitors
from web.access import SESSION_COOKIE

# Role → the answer to /healthz?detail, by session cookie and by API token alike.
DETAIL: dict[str, int] = {"anonymous": 401, "customer": 403, "viewer": 403, "clerk": 403, "admin": 200}


@pytest.fixture
async def health_client(database_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = make_app(database_url, csrf_secret="test-secret", pool_size=4, subscriptions=False)
    async with AsyncTestClient(app=app) as client:
        yield client


def credentials(session: str | None, token: str | None) -> list[tuple[str, dict[str, str]]]:
    """Each way a visitor can say who it is: no credentials at all, its session, its token."""
    ways: list[tuple[str, dict[str, str]]] = []
    if session:
        ways.append(("session", {"Cookie": f"{SESSION_COOKIE}={session}"}))
    if token:
        ways.append(("token", {"Authorization": f"Bearer {token}"}))
    return ways or [("nothing", {})]


async def test_only_an_admin_reads_the_detail_and_everyone_gets_the_plain_answer(
    health_client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    client = health_client
    who = await visitors(client, pool, "cust-a", prefix="health")
    checked = 0
    for role in ROLES:
        for way, headers in credentials(who[role].session, who[role].token):
            client.cookies.clear()
            plain = await client.get("/healthz", headers=headers)
            assert (plain.status_code, plain.text) == (200, "ok\n"), (role, way)
            detail = await client.get("/healthz?detail", headers=headers)
            where = (role, way, detail.status_code, detail.text)
            assert detail.status_code == DETAIL[role], where
            if DETAIL[role] == 200:
                assert detail.headers["content-type"].startswith("application/json"), where
                report = detail.json()
                assert report["database"] == "ok"
                assert set(report["horizon"]) >= {"lag_events", "lag_seconds", "held", "holder", "xmin"}
                assert {model["name"] for model in report["read_models"]} >= {"order_read_model"}
            else:
                assert "application/json" not in detail.headers["content-type"], where
                for secret in ("horizon", "pid", "application_name", "lag"):
                    assert secret not in detail.text, where
            if detail.status_code == 401:
                assert detail.headers["www-authenticate"].startswith("Bearer"), where
                assert "sign in as an admin or send an admin's API token" in detail.text
            if detail.status_code == 403:
                assert f"your role is {role}" in detail.text, where
            checked += 1
    assert checked == 1 + 2 * (len(ROLES) - 1)


async def test_an_unknown_or_revoked_token_gets_401_even_with_an_admins_session(
    health_client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    client = health_client
    who = await visitors(client, pool, "cust-a", prefix="health")
    await pool.execute("UPDATE api_tokens SET revoked_at = now() WHERE name = 'health-admin-token'")
    for token in ("orders_not-a-token", who["admin"].token):
        client.cookies.clear()
        answer = await client.get(
            "/healthz?detail",
            headers={
                "Authorization": f"Bearer {token}",
                "Cookie": f"{SESSION_COOKIE}={who['admin'].session}",
            },
        )
        assert answer.status_code == 401, token
