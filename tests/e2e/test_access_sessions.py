"""Sessions, sign-in and its throttle, secrets at rest, the actors the log names, the set-up link."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from store.access.accounts import Accounts
from store.access.setup import SetupLinks
from store.application import Orders
from store.seed import seed
from tests.support.accounts import PASSWORD, add_account, session_at, token_at
from tests.support.app import make_app
from tests.support.customers import register_in
from tests.support.waiting import eventually
from web.access import SESSION_COOKIE
from web.signin import WRONG


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    """The app with nobody signed in."""
    app = make_app(database_url, csrf_secret="test-secret", pool_size=4, subscriptions=False)
    async with AsyncTestClient(app=app) as client:
        yield client


async def sign_in(client: AsyncTestClient[Any], name: str, password: str = PASSWORD) -> httpx.Response:
    await client.get("/login")
    form = {"username": name, "password": password, "_csrf_token": client.cookies["csrftoken"]}
    return await client.post("/login", data=form, follow_redirects=False)


async def may_see_orders(client: AsyncTestClient[Any], session: str) -> bool:
    client.cookies.clear()
    response = await client.get(
        "/orders", headers={"Cookie": f"{SESSION_COOKIE}={session}"}, follow_redirects=False
    )
    assert response.status_code in (200, 303), response.status_code
    return response.status_code == 200


async def create_order_as(client: AsyncTestClient[Any], session: str, customer_id: str) -> str:
    """A new order of `customer_id`, created through the page's form by `session`; its page's path."""
    client.cookies.clear()
    await client.get("/login")
    csrf = client.cookies["csrftoken"]
    client.cookies.clear()
    response = await client.post(
        "/orders",
        data={"customer_id": customer_id, "currency": "EUR"},
        headers={"Cookie": f"{SESSION_COOKIE}={session}; csrftoken={csrf}", "x-csrftoken": csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    location: str = response.headers["location"]
    return location


def set_cookie(response: httpx.Response) -> str:
    return next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{SESSION_COOKIE}="))


async def test_signing_in_makes_a_new_session_id_and_ends_the_planted_one(
    site: AsyncTestClient[Any], database_url: str
) -> None:
    planted = await session_at(database_url, "mallory", "viewer")
    await add_account_at(database_url, "vera", "viewer")
    site.cookies.set(SESSION_COOKIE, planted)
    signed_in = await sign_in(site, "vera")
    assert signed_in.status_code == 303
    fresh = set_cookie(signed_in).split(";")[0].split("=", 1)[1]
    assert fresh != planted
    assert await may_see_orders(site, fresh)
    assert not await may_see_orders(site, planted)


async def test_the_session_cookie_is_httponly_samesite_lax_for_the_whole_site(
    site: AsyncTestClient[Any], database_url: str
) -> None:
    await add_account_at(database_url, "vera", "viewer")
    flags = [part.strip().lower() for part in set_cookie(await sign_in(site, "vera")).split(";")]
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "path=/" in flags
    assert "secure" not in flags  # plain HTTP here; over HTTPS the cookie is Secure


async def test_signing_out_ends_the_session_and_signing_out_everywhere_ends_the_others(
    site: AsyncTestClient[Any], database_url: str
) -> None:
    await add_account_at(database_url, "vera", "viewer")
    sessions = []
    for _ in range(3):
        site.cookies.clear()
        await sign_in(site, "vera")
        sessions.append(site.cookies[SESSION_COOKIE])
    first, second, third = sessions
    token = site.cookies["csrftoken"]
    site.cookies.clear()
    headers = {"Cookie": f"{SESSION_COOKIE}={first}; csrftoken={token}", "x-csrftoken": token}
    out = await site.post("/logout", headers=headers, follow_redirects=False)
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert not await may_see_orders(site, first)
    assert await may_see_orders(site, second)
    assert await may_see_orders(site, third)
    site.cookies.clear()
    headers = {"Cookie": f"{SESSION_COOKIE}={second}; csrftoken={token}", "x-csrftoken": token}
    everywhere = await site.post("/logout", data={"everywhere": "1"}, headers=headers, follow_redirects=False)
    assert everywhere.status_code == 303
    assert not await may_see_orders(site, second)
    assert not await may_see_orders(site, third)


async def test_disabling_an_account_ends_its_sessions_on_another_instance_at_once(
    site: AsyncTestClient[Any], database_url: str, pool: asyncpg.Pool
) -> None:
    other = make_app(database_url, csrf_secret="test-secret", pool_size=2, subscriptions=False)
    async with AsyncTestClient(app=other) as second:
        session = await session_at(database_url, "vera", "viewer")
        assert await may_see_orders(site, session)
        assert await may_see_orders(second, session)
        assert await Accounts(pool).disable("vera") is not None
        assert not await may_see_orders(second, session)
        assert not await may_see_orders(site, session)
    assert (await sign_in(site, "vera")).status_code == 401, "a disabled account cannot sign in again"


async def test_an_idle_session_ends(
    site: AsyncTestClient[Any], database_url: str, pool: asyncpg.Pool
) -> None:
    session = await session_at(database_url, "vera", "viewer")
    assert await may_see_orders(site, session)
    await pool.execute("UPDATE sessions SET last_seen_at = now() - interval '121 minutes'")
    assert not await may_see_orders(site, session)


async def test_a_wrong_password_and_an_unknown_name_look_alike_and_take_about_as_long(
    site: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    # Hashed as the app hashes (not the tests' cheap hash), so that both checks cost the same.
    await Accounts(pool).add("vera", "viewer", PASSWORD)
    timings: dict[str, list[float]] = {"wrong password": [], "unknown name": []}
    answers = {}
    for attempt in range(4):  # under the throttle's five per name
        for case, name in (("wrong password", "vera"), ("unknown name", f"nobody-{attempt}")):
            started = time.perf_counter()
            response = await sign_in(site, name, "not the password at all")
            timings[case].append(time.perf_counter() - started)
            answers[case] = (response.status_code, WRONG in response.text)
    assert answers["wrong password"] == answers["unknown name"] == (401, True)
    wrong, unknown = min(timings["wrong password"]), min(timings["unknown name"])
    assert wrong < 3 * unknown, timings
    assert unknown < 3 * wrong, timings


async def test_after_five_failures_for_a_name_even_the_right_password_waits(
    site: AsyncTestClient[Any], database_url: str, pool: asyncpg.Pool
) -> None:
    await add_account_at(database_url, "vera", "viewer")
    for _ in range(5):
        assert (await sign_in(site, "vera", "wrong password")).status_code == 401
    refused = await sign_in(site, "vera")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in refused.text
    assert SESSION_COOKIE not in site.cookies
    log = await pool.fetch("SELECT kind, subject, client FROM access_log ORDER BY entry_id")
    assert [(r["kind"], r["subject"]) for r in log] == [("sign-in failed", "vera")] * 5 + [
        ("sign-in refused", "vera")
    ]
    assert all(r["client"] for r in log)
    assert (await sign_in(site, "someone-else")).status_code == 401, "another name is not held up"


async def test_a_name_that_is_no_accounts_is_not_logged_when_its_sign_in_fails_or_is_refused(
    site: AsyncTestClient[Any], database_url: str, pool: asyncpg.Pool
) -> None:
    # People type their password into the name field; the log is append-only and forever.
    await add_account_at(database_url, "vera", "viewer")
    assert (await sign_in(site, "vera", "hunter2-typo")).status_code == 401
    for _ in range(6):
        await sign_in(site, "Correct-Horse-Battery")
    log = await pool.fetch("SELECT kind, subject, detail, client FROM access_log ORDER BY entry_id")
    assert [(r["kind"], r["subject"], r["detail"]) for r in log] == [
        ("sign-in failed", "vera", ""),
        *[("sign-in failed", None, "no account by that name")] * 5,
        ("sign-in refused", None, "throttled, no account by that name"),
    ]
    assert all(r["client"] for r in log)
    throttled = "SELECT count(*) FROM sign_in_failures WHERE username = 'Correct-Horse-Battery'"
    assert await pool.fetchval(throttled) == 5  # the throttle counts what was typed, for a day


async def test_tokens_and_session_ids_are_nowhere_in_the_database_as_text(
    site: AsyncTestClient[Any], database_url: str, pool: asyncpg.Pool
) -> None:
    token = await token_at(database_url, "till", "clerk")
    register_in(site, "alice")
    created = await site.post(
        "/api/orders",
        json={"customer_id": "alice", "currency": "EUR"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k-1"},
    )
    assert created.status_code == 201, created.text
    await add_account_at(database_url, "vera", "clerk")
    await sign_in(site, "vera")
    session = site.cookies[SESSION_COOKIE]
    assert await may_see_orders(site, session)
    columns = await pool.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'public'"
        " AND data_type IN ('text', 'bytea', 'jsonb', 'json', 'character varying')"
    )
    assert {"api_tokens", "sessions"} <= {c["table_name"] for c in columns}
    for secret in (token, token.removeprefix("orders_"), session):
        for column in columns:
            table, name = column["table_name"], column["column_name"]
            found = (
                f'SELECT count(*) FROM "{table}" WHERE position(convert_to($1, \'UTF8\') in "{name}") > 0'
                if column["data_type"] == "bytea"
                else f'SELECT count(*) FROM "{table}" WHERE position($1 in "{name}"::text) > 0'
            )
            assert await pool.fetchval(found, secret) == 0, f"{table}.{name} holds a secret as it was given"


async def test_events_name_who_wrote_them(database_url: str, pool: asyncpg.Pool) -> None:
    app = make_app(database_url, csrf_secret="test-secret", pool_size=6, draft_expiry=1.5)
    async with AsyncTestClient(app=app) as client:
        register_in(client, "alice")
        ada = await session_at(database_url, "ada", "admin")
        carl = await session_at(database_url, "carl", "clerk")
        till = await token_at(database_url, "till", "clerk")
        made = {}
        for name, session in (("ada", ada), ("carl", carl)):
            made[name] = (await create_order_as(client, session, "alice")).rsplit("/", 1)[1]
        client.cookies.clear()
        by_api = await client.post(
            "/api/orders",
            json={"customer_id": "alice", "currency": "EUR"},
            headers={"Authorization": f"Bearer {till}"},
        )
        assert by_api.status_code == 201
        made["till"] = by_api.json()["order"]["order_id"]

        async def expired() -> asyncpg.Record | None:
            return await pool.fetchrow(
                "SELECT metadata->>'actor' AS actor, metadata->>'actor_id' AS actor_id FROM events"
                " WHERE stream_id = $1 AND type = 'OrderCancelled'",
                made["ada"],
            )

        expiry = await eventually(expired, timeout=20)
    accounts = {
        r["name"]: str(r["account_id"]) for r in await pool.fetch("SELECT name, account_id FROM accounts")
    }
    token_id = await pool.fetchval("SELECT token_id::text FROM api_tokens WHERE name = 'till'")
    actors = {
        name: tuple(
            await pool.fetchrow(
                "SELECT metadata->>'actor', metadata->>'actor_id' FROM events"
                " WHERE stream_id = $1 AND version = 1",
                order_id,
            )
            or ()
        )
        for name, order_id in made.items()
    }
    assert actors == {
        "ada": ("ada", accounts["ada"]),
        "carl": ("carl", accounts["carl"]),
        "till": ("till", f"token:{token_id}"),
    }
    assert (expiry["actor"], expiry["actor_id"]) == ("system", "system:draft-expiry")

    async def progress(done: int, total: int) -> None:
        pass

    before = await pool.fetchval("SELECT max(position) FROM events")
    await seed(Orders(pool), 2, progress, concurrency=1)
    seeded = await pool.fetch("SELECT DISTINCT metadata->>'actor' FROM events WHERE position > $1", before)
    assert [r[0] for r in seeded] == ["seed"]


async def test_the_set_up_link_makes_the_first_admin_once(
    site: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    assert (await site.get("/setup", follow_redirects=False)).status_code == 404
    link = await SetupLinks(pool).make_if_needed()
    assert link is not None
    assert (await site.get("/setup?token=not-the-link")).status_code == 404
    form_page = await site.get(f"/setup?token={link}")
    assert form_page.status_code == 200
    form = {
        "token": link,
        "username": "root",
        "password": "a long enough password",
        "password_again": "a long enough password",
        "_csrf_token": site.cookies["csrftoken"],
    }
    made = await site.post("/setup", data=form, follow_redirects=False)
    assert made.status_code == 303, made.text
    assert made.headers["location"] == "/orders"
    assert await may_see_orders(site, site.cookies[SESSION_COOKIE])
    assert [(r["name"], r["role"]) for r in await pool.fetch("SELECT name, role FROM accounts")] == [
        ("root", "admin")
    ]
    site.cookies.clear()
    assert (await site.get(f"/setup?token={link}")).status_code == 404
    await site.get("/login")
    again = await site.post(
        "/setup",
        data={**form, "username": "second", "_csrf_token": site.cookies["csrftoken"]},
        follow_redirects=False,
    )
    assert again.status_code == 404
    assert await pool.fetchval("SELECT count(*) FROM accounts") == 1
    assert await SetupLinks(pool).make_if_needed() is None, "no new link once an admin exists"


async def add_account_at(database_url: str, name: str, role: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await add_account(conn, name, role)
    finally:
        await conn.close()


async def test_a_name_with_a_nul_is_a_wrong_name_not_an_error(client: AsyncTestClient[Any]) -> None:
    await client.get("/login")
    token = client.cookies["csrftoken"]
    for name in ("ada\x00", "\x00"):
        answer = await client.post(
            "/login", data={"username": name, "password": "whatever it is", "_csrf_token": token}
        )
        assert answer.status_code == 401, name
        assert "The name or the password is wrong." in answer.text


async def test_an_order_s_pages_check_the_session_in_the_statement_that_reads_its_version(
    site: AsyncTestClient[Any], database_url: str, pool: asyncpg.Pool
) -> None:
    """An order's pages ask for the session and the order's version in one statement
    (web/access.ORDER_PAGE): a session that ended or an account disabled gets no page there
    either, and another customer's order is as missing as one that does not exist."""
    register_in(site, "alice", "bob")
    order = await create_order_as(site, await session_at(database_url, "carl", "clerk"), "alice")
    pages = [order, f"{order}/history?version=1", f"{order}/timeline", f"{order}/events/1"]

    async def status(session: str, path: str) -> int:
        site.cookies.clear()
        answer = await site.get(
            path, headers={"Cookie": f"{SESSION_COOKIE}={session}"}, follow_redirects=False
        )
        return answer.status_code

    vera = await session_at(database_url, "vera", "viewer")
    alice = await session_at(database_url, "alice-account", "customer", "alice")
    bob = await session_at(database_url, "bob-account", "customer", "bob")
    for path in pages:
        assert await status(vera, path) == 200, path
        assert await status(alice, path) == 200, path
        assert await status(bob, path) == 404, path  # alice's order, not bob's
        assert await status("no-such-session", path) == 303, path  # to the sign-in page
    missing = "/orders/00000000-0000-4000-8000-000000000000"
    assert await status(vera, missing) == 404
    assert await status(vera, "/orders/not-an-order-id") == 400
    assert await Accounts(pool).disable("vera") is not None
    for path in pages:
        assert await status(vera, path) == 303, path
