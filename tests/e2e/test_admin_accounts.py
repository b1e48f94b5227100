"""An admin manages accounts and API tokens and reads the access log; nobody else may.

Each change takes effect on the very next request of whoever it concerns, and
the access log says who made it. A refused change says why beside its form and
writes nothing.
"""

from __future__ import annotations

import asyncio
import html
import re
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from store.access.access_log import AccessLog
from store.access.accounts import Accounts, LastAdmin
from tests.support.accounts import PASSWORD, add_account, session_at, token_for
from tests.support.page_client import PageClient
from tests.support.pages import Page
from tests.support.routes import routes
from web.access import SESSION_COOKIE

CHOSEN = "a password of my own choosing"
SECRET = re.compile(r"orders_[A-Za-z0-9_-]{20,}")
ROW = re.compile(r'<tr id="access-(\d+)">(.*?)</tr>', re.DOTALL)
CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.DOTALL)


@pytest.fixture
def person(browser: PageClient) -> PageClient:
    """A second browser on the same running app, signed in as nobody yet."""
    client = AsyncTestClient(app=browser.app)  # not entered: the app is started already
    client.blocking_portal = browser.client.blocking_portal  # the app's event loop, where its pool lives
    return PageClient(client)


async def sign_in(person: PageClient, name: str, password: str = PASSWORD) -> httpx.Response:
    await person.get("/login")
    return await person.post("/login", {"username": name, "password": password, "next": "/orders"})


def log_entries(response: httpx.Response) -> list[tuple[int, str, str, str, str]]:
    """The access log's rows as shown: entry id, kind, who, subject, detail."""
    entries = []
    for entry_id, row in ROW.findall(response.text):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in CELL.findall(row)]
        entries.append((int(entry_id), cells[2], cells[3], cells[4], cells[5]))
    return entries


async def everything(pool: asyncpg.Pool) -> dict[str, Any]:
    """What a refused change must leave as it was: accounts and tokens row by row, the rest counted."""
    return {
        "accounts": [tuple(r) for r in await pool.fetch("SELECT * FROM accounts ORDER BY name")],
        "tokens": [tuple(r) for r in await pool.fetch("SELECT * FROM api_tokens ORDER BY name")],
        "sessions": await pool.fetchval("SELECT count(*) FROM sessions"),
        "access_log": await pool.fetchval("SELECT count(*) FROM access_log"),
    }


async def test_an_admin_adds_an_account_that_then_signs_in(browser: PageClient, person: PageClient) -> None:
    orders = Page(await browser.get("/orders"))
    assert 'href="/admin/accounts"' in orders.html
    page = Page(await browser.get("/admin/accounts"))
    assert page.status == 200
    assert {"/admin/accounts", "/admin/accounts/ada/role", "/admin/accounts/ada/password"} <= set(page.forms)
    assert "/admin/accounts/ada/disable" not in page.forms  # no button to disable yourself
    assert 'href="/admin/tokens"' in page.html
    assert 'href="/admin/access-log"' in page.html

    added = await browser.post(
        "/admin/accounts", {"username": "bea", "role": "clerk", "customer_id": "", "password": CHOSEN}
    )
    assert added.status_code == 303
    assert added.headers["location"] == "/admin/accounts"
    page = Page(await browser.get("/admin/accounts"))
    assert "account-bea" in page.ids
    assert "/admin/accounts/bea/disable" in page.forms

    signed_in = await sign_in(person, "bea", CHOSEN)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/orders"
    assert 'Signed in as <strong id="signed-in-as">bea</strong> (clerk)' in (await person.get("/orders")).text


async def test_an_account_of_a_customer_is_bound_to_its_customer(
    browser: PageClient, person: PageClient
) -> None:
    form = {"username": "cara", "role": "customer", "customer_id": "acme", "password": CHOSEN}
    htmx = await browser.post("/admin/accounts", form, htmx=True)
    assert htmx.status_code == 200
    assert not Page(htmx).is_full_page
    assert "Account cara added (customer of acme)." in htmx.text
    assert (await sign_in(person, "cara", CHOSEN)).status_code == 303
    assert "(customer of acme)" in (await person.get("/orders")).text
    assert (await person.get("/events")).status_code == 403


async def test_a_new_role_takes_effect_on_the_next_request(
    browser: PageClient, person: PageClient, pool: asyncpg.Pool
) -> None:
    await add_account(pool, "cleo", "clerk")
    person.register("alice")
    assert (await sign_in(person, "cleo")).status_code == 303
    assert (await person.post("/orders", {"customer_id": "alice", "currency": "EUR"})).status_code == 303

    changed = await browser.post("/admin/accounts/cleo/role", {"role": "viewer", "customer_id": ""})
    assert changed.status_code == 303
    assert (await person.post("/orders", {"customer_id": "alice", "currency": "EUR"})).status_code == 403
    assert "(viewer)" in (await person.get("/orders")).text

    changed = await browser.post("/admin/accounts/cleo/role", {"role": "customer", "customer_id": "acme"})
    assert changed.status_code == 303
    assert (await person.get("/events")).status_code == 403
    assert "(customer of acme)" in (await person.get("/orders")).text


async def test_disabling_an_account_ends_its_session_at_once(
    browser: PageClient, person: PageClient, pool: asyncpg.Pool
) -> None:
    await add_account(pool, "cleo", "clerk")
    assert (await sign_in(person, "cleo")).status_code == 303
    assert (await person.get("/orders")).status_code == 200

    assert (await browser.post("/admin/accounts/cleo/disable")).status_code == 303
    next_request = await person.get("/orders", follow_redirects=False)
    assert next_request.status_code == 303
    assert next_request.headers["location"] == "/login?next=%2Forders"
    assert (await sign_in(person, "cleo")).status_code == 401
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM sessions s JOIN accounts USING (account_id) WHERE name = 'cleo'"
        )
        == 0
    )
    page = Page(await browser.get("/admin/accounts"))
    assert "/admin/accounts/cleo/disable" not in page.forms


async def test_a_password_set_by_an_admin_replaces_the_old_one_and_ends_its_sessions(
    browser: PageClient, person: PageClient, pool: asyncpg.Pool
) -> None:
    await add_account(pool, "cleo", "clerk")
    assert (await sign_in(person, "cleo")).status_code == 303

    assert (await browser.post("/admin/accounts/cleo/password", {"password": CHOSEN})).status_code == 303
    assert (await person.get("/orders", follow_redirects=False)).status_code == 303
    assert (await sign_in(person, "cleo", PASSWORD)).status_code == 401
    assert (await sign_in(person, "cleo", CHOSEN)).status_code == 303


async def test_a_token_is_shown_once_works_on_the_api_and_stops_when_revoked(
    browser: PageClient, person: PageClient, pool: asyncpg.Pool
) -> None:
    made = await browser.post("/admin/tokens", {"name": "robot", "role": "viewer", "customer_id": ""})
    assert made.status_code == 200
    assert made.headers["cache-control"] == "no-store"
    assert "it will not be shown again" in made.text
    secrets_shown = SECRET.findall(made.text)
    assert len(set(secrets_shown)) == 1
    secret = secrets_shown[0]
    assert secret not in (await browser.get("/admin/tokens")).text
    stored = await pool.fetchrow("SELECT * FROM api_tokens WHERE name = 'robot'")
    assert stored["created_by"] == "ada"
    assert secret.encode() not in b"".join(str(v).encode() for v in stored)

    bearer = {"Authorization": f"Bearer {secret}"}
    assert (await person.client.get("/api/orders", headers=bearer)).status_code == 200
    created = await person.client.post(
        "/api/orders", json={"customer_id": "a", "currency": "EUR"}, headers=bearer
    )
    assert created.status_code == 403  # a viewer's token reads only

    assert (await browser.post("/admin/tokens/robot/revoke")).status_code == 303
    assert (await person.client.get("/api/orders", headers=bearer)).status_code == 401
    assert "/admin/tokens/robot/revoke" not in Page(await browser.get("/admin/tokens")).forms


async def test_the_access_log_lists_every_change_with_who_made_it(
    browser: PageClient, person: PageClient, pool: asyncpg.Pool
) -> None:
    await add_account(pool, "cleo", "clerk")
    form = {"username": "bea", "role": "viewer", "customer_id": "", "password": CHOSEN}
    assert (await browser.post("/admin/accounts", form)).status_code == 303
    assert (await browser.post("/admin/accounts/cleo/role", {"role": "viewer"})).status_code == 303
    assert (await browser.post("/admin/accounts/cleo/password", {"password": CHOSEN})).status_code == 303
    assert (await browser.post("/admin/accounts/cleo/disable")).status_code == 303
    token = {"name": "robot", "role": "customer", "customer_id": "acme"}
    assert (await browser.post("/admin/tokens", token)).status_code == 200
    assert (await browser.post("/admin/tokens/robot/revoke")).status_code == 303
    assert (await sign_in(person, "bea", CHOSEN)).status_code == 303

    page = await browser.get("/admin/access-log")
    assert page.status_code == 200
    shown = [entry[1:] for entry in log_entries(page)]
    assert shown == [
        ("signed in", "bea", "bea", ""),
        ("token revoked", "ada", "robot", ""),
        ("token made", "ada", "robot", "customer of acme"),
        ("account disabled", "ada", "cleo", "its sessions ended"),
        ("password set", "ada", "cleo", "its sessions ended"),
        ("role changed", "ada", "cleo", "clerk → viewer"),
        ("account added", "ada", "bea", "viewer"),
    ]
    ids = [entry[0] for entry in log_entries(page)]
    assert ids == sorted(ids, reverse=True)

    only = await browser.get("/admin/access-log?kind=role+changed")
    assert [entry[1:3] for entry in log_entries(only)] == [("role changed", "ada")]


async def test_the_access_log_pages_newest_first_and_filters_by_kind(
    browser: PageClient, pool: asyncpg.Pool
) -> None:
    log = AccessLog(pool)
    for n in range(70):
        await log.record("sign-in failed" if n % 10 else "signed out", None, f"name-{n}")
    first = await browser.get("/admin/access-log")
    entries = log_entries(first)
    assert [e[3] for e in entries] == [f"name-{n}" for n in range(69, 19, -1)]
    older = re.search(r'href="(/admin/access-log\?kind=&amp;before=\d+)"', first.text)
    assert older is not None
    rest = await browser.get(html.unescape(older.group(1)), target="access-log")
    assert not Page(rest).is_full_page
    assert [e[3] for e in log_entries(rest)] == [f"name-{n}" for n in range(19, -1, -1)]
    assert "Older entries" not in rest.text

    signed_out = await browser.get("/admin/access-log?kind=signed+out")
    assert [e[3] for e in log_entries(signed_out)] == [f"name-{n}" for n in range(60, -1, -10)]
    assert '<option value="signed out" selected>' in signed_out.text
    for odd in ("?before=0", "?before=-5", "?before=99999999999999999999", "?kind=%00", "?kind=nonsense"):
        assert (await browser.get("/admin/access-log" + odd)).status_code == 200, odd


async def test_bad_input_is_refused_beside_its_form_and_changes_nothing(
    browser: PageClient, pool: asyncpg.Pool
) -> None:
    await add_account(pool, "bea", "clerk")
    await token_for(pool, "till", "clerk")
    await browser.get("/admin/accounts")
    before = await everything(pool)
    account = {"username": "new", "role": "viewer", "customer_id": "", "password": CHOSEN}
    token = {"name": "robot", "role": "viewer", "customer_id": ""}
    cases: list[tuple[str, dict[str, str], int, str, str]] = [
        ("/admin/accounts", {**account, "username": "has spaces"}, 422, "add-account", "An account name is"),
        ("/admin/accounts", {**account, "username": ""}, 422, "add-account", "An account name is"),
        ("/admin/accounts", {**account, "username": "x" * 65}, 422, "add-account", "An account name is"),
        ("/admin/accounts", {**account, "password": "too short"}, 422, "add-account", "12 to 1024"),
        ("/admin/accounts", {**account, "role": "root"}, 422, "add-account", "Choose a role"),
        ("/admin/accounts", {**account, "role": "system"}, 422, "add-account", "Choose a role"),
        ("/admin/accounts", {**account, "role": "customer"}, 422, "add-account", "needs the customer id"),
        (
            "/admin/accounts",
            {**account, "customer_id": "acme"},
            422,
            "add-account",
            "Only a customer account",
        ),
        (
            "/admin/accounts",
            {**account, "username": "bea"},
            409,
            "add-account",
            "already an account called bea",
        ),
        ("/admin/accounts/bea/role", {"role": "customer"}, 422, "role-bea", "needs the customer id"),
        (
            "/admin/accounts/bea/role",
            {"role": "customer", "customer_id": "a\x01b"},
            422,
            "role-bea",
            "printable",
        ),
        ("/admin/accounts/bea/role", {"role": "overlord"}, 422, "role-bea", "Choose a role"),
        ("/admin/accounts/ada/role", {"role": "clerk"}, 409, "role-ada", "ada is the last admin"),
        ("/admin/accounts/bea/password", {"password": "short"}, 422, "password-bea", "12 to 1024"),
        ("/admin/accounts/ada/disable", {}, 409, "disable-ada", "cannot disable your own account"),
        ("/admin/tokens", {**token, "name": "two words"}, 422, "make-token", "A token name is"),
        ("/admin/tokens", {**token, "role": "customer"}, 422, "make-token", "needs the customer id"),
        ("/admin/tokens", {**token, "role": "nobody"}, 422, "make-token", "Choose a role"),
        ("/admin/tokens", {**token, "name": "till"}, 409, "make-token", "already a token called till"),
    ]
    for url, form, status, form_name, message in cases:
        for htmx in (False, True):
            response = await browser.post(url, form, htmx=htmx)
            page = Page(response)
            assert page.status == status, (url, form, htmx, response.text[-500:])
            assert message in page.problems.get(form_name, ""), (url, form, page.problems)
            assert page.is_full_page is not htmx
    refused = await browser.post("/admin/accounts", {**account, "username": "bea"})
    assert Page(refused).value("add-account-username") == "bea"
    for missing in (
        "/admin/accounts/nobody/role",
        "/admin/accounts/nobody/disable",
        "/admin/tokens/nobody/revoke",
    ):
        assert (await browser.post(missing, {"role": "viewer", "password": CHOSEN})).status_code == 404
    assert await everything(pool) == before


async def test_the_last_admin_keeps_the_role_even_when_two_admins_race(
    browser: PageClient, person: PageClient, pool: asyncpg.Pool
) -> None:
    form = {"username": "bob", "role": "admin", "customer_id": "", "password": CHOSEN}
    assert (await browser.post("/admin/accounts", form)).status_code == 303
    assert (await sign_in(person, "bob", CHOSEN)).status_code == 303
    await person.get("/admin/accounts")

    ada_demotes_bob = browser.post("/admin/accounts/bob/role", {"role": "viewer"})
    bob_disables_ada = person.post("/admin/accounts/ada/disable")
    answers = sorted(r.status_code for r in await asyncio.gather(ada_demotes_bob, bob_disables_ada))
    # The loser is refused as the last admin, or (if the winner finished first) as no admin at all.
    assert answers in ([303, 403], [303, 409])
    assert (
        await pool.fetchval("SELECT count(*) FROM accounts WHERE role = 'admin' AND disabled_at IS NULL") == 1
    )

    # The same race straight on the store, where the two transactions do overlap.
    accounts = Accounts(pool)
    for round in range(10):
        await pool.execute("UPDATE accounts SET role = 'admin', customer_id = NULL, disabled_at = NULL")
        outcomes = await asyncio.gather(
            accounts.set_role_leaving_an_admin("ada", "clerk"),
            accounts.disable_leaving_an_admin("bob")
            if round % 2
            else accounts.set_role_leaving_an_admin("bob", "viewer"),
            return_exceptions=True,
        )
        assert sum(isinstance(outcome, LastAdmin) for outcome in outcomes) == 1, outcomes
        assert (
            await pool.fetchval("SELECT count(*) FROM accounts WHERE role = 'admin' AND disabled_at IS NULL")
            == 1
        )


@pytest.mark.parametrize("htmx", [False, True])
async def test_an_admin_who_gives_up_the_role_leaves_these_pages(browser: PageClient, htmx: bool) -> None:
    form = {"username": "bob", "role": "admin", "customer_id": "", "password": CHOSEN}
    assert (await browser.post("/admin/accounts", form)).status_code == 303
    demoted = await browser.post("/admin/accounts/ada/role", {"role": "clerk"}, htmx=htmx)
    if htmx:  # a whole page load, rather than /orders swapped into the accounts table
        assert demoted.status_code == 200
        assert demoted.headers["hx-redirect"] == "/orders"
    else:
        assert demoted.status_code == 303
        assert demoted.headers["location"] == "/orders"
    assert (await browser.get("/admin/accounts")).status_code == 403
    assert 'href="/admin/accounts"' not in (await browser.get("/orders")).text


@pytest.mark.parametrize(("role", "customer_id"), [("viewer", None), ("clerk", None), ("customer", "acme")])
async def test_no_other_role_may_use_these_pages(
    browser: PageClient, pool: asyncpg.Pool, database_url: str, role: str, customer_id: str | None
) -> None:
    await add_account(pool, "bea", "clerk")
    await token_for(pool, "till", "clerk")
    admin_routes = [
        r
        for r in routes(browser.app)
        if r.path.startswith(("/admin/accounts", "/admin/tokens", "/admin/access-log"))
    ]
    assert len(admin_routes) == 9
    browser.client.cookies.set(SESSION_COOKIE, await session_at(database_url, "eve", role, customer_id))
    await browser.get("/orders")
    before = await everything(pool)
    for route in admin_routes:
        url = route.url(name="bea" if route.path.startswith("/admin/accounts") else "till")
        form = {"username": "x", "role": "admin", "password": CHOSEN, "name": "x"}
        if route.method == "GET":
            response = await browser.get(url)
        else:
            response = await browser.post(url, form)
        assert response.status_code == 403, (route.method, url, response.status_code)
    assert await everything(pool) == before


async def test_nobody_signed_in_is_sent_to_sign_in(person: PageClient) -> None:
    for url in ("/admin/accounts", "/admin/tokens", "/admin/access-log"):
        response = await person.get(url, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
