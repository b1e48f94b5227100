"""A forgotten customer's sign-in ends with the forget, on the page, the API and the CLI.

The account bound to the customer can no longer sign in, its open session is refused on its next
request, its API token gets 401; the admin pages show it disabled under a neutral name, and the access
log names the admin who forgot the customer. An account of another customer goes on as before; a
refused forget changes no account.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from store.access.accounts import Accounts
from store.access.sessions import Sessions
from store.access.tokens import Tokens
from tests.e2e.test_cli_customers import orders_cli, with_customer
from tests.support.accounts import PASSWORD, add_account, session_for, sign_in_state, token_for
from tests.support.page_client import PageClient
from tests.support.pages import Page
from web.signin import WRONG

ROW = re.compile(r'<tr id="access-(\d+)">(.*?)</tr>', re.DOTALL)
CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.DOTALL)
FORGOTTEN = "customer cust-f forgotten"


def second_browser(browser: PageClient) -> PageClient:
    """Another browser on the same running app, signed in as nobody yet."""
    client = AsyncTestClient(app=browser.app)  # not entered: the app is started already
    client.blocking_portal = browser.client.blocking_portal  # the app's event loop, where its pool lives
    return PageClient(client)


async def sign_in(person: PageClient, name: str) -> httpx.Response:
    await person.get("/login")
    return await person.post("/login", {"username": name, "password": PASSWORD, "next": "/orders"})


def log_entries(response: httpx.Response) -> list[tuple[str, str, str, str]]:
    """The access log's rows as shown: kind, who, subject, detail."""
    entries = []
    for _, row in ROW.findall(response.text):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in CELL.findall(row)]
        entries.append((cells[2], cells[3], cells[4], cells[5]))
    return entries


class Customers:
    """Two customers, each with a signed-in account and a token: "fern" of cust-f, "otto" of cust-o."""

    def __init__(self, browser: PageClient, pool: asyncpg.Pool) -> None:
        self.browser, self.pool = browser, pool
        self.fern, self.otto = second_browser(browser), second_browser(browser)

    async def start(self) -> None:
        self.browser.register("cust-f", "cust-o")
        self.fern_id = await add_account(self.pool, "fern", "customer", "cust-f")
        await add_account(self.pool, "otto", "customer", "cust-o")
        self.fern_token = await token_for(self.pool, "fern-shop", "customer", "cust-f")
        self.otto_token = await token_for(self.pool, "otto-shop", "customer", "cust-o")
        for person, name in ((self.fern, "fern"), (self.otto, "otto")):
            assert (await sign_in(person, name)).status_code == 303
            assert (await person.get("/orders")).status_code == 200
        for token in (self.fern_token, self.otto_token):
            assert (await self.api(token)).status_code == 200

    async def api(self, token: str) -> httpx.Response:
        return await self.fern.client.get("/api/orders", headers={"Authorization": f"Bearer {token}"})

    async def check_fern_is_signed_out_for_good(self) -> None:
        renamed = "forgotten-" + self.fern_id.replace("-", "")
        next_request = await self.fern.get("/orders", follow_redirects=False)
        assert next_request.status_code == 303
        assert next_request.headers["location"] == "/login?next=%2Forders"
        for name in ("fern", renamed):
            refused = await sign_in(self.fern, name)
            assert refused.status_code == 401
            assert WRONG in refused.text
        assert (await self.api(self.fern_token)).status_code == 401

        accounts = Page(await self.browser.get("/admin/accounts"))
        assert f'<tr id="account-{renamed}" class="disabled">' in accounts.html
        assert 'id="account-fern"' not in accounts.html
        assert f"/admin/accounts/{renamed}/disable" not in accounts.forms
        assert '<tr id="account-otto">' in accounts.html
        assert "/admin/accounts/otto/disable" in accounts.forms

        entries = log_entries(await self.browser.get("/admin/access-log"))
        assert [e for e in entries if "forgotten" in e[3]] == [
            ("token revoked", "ada", "fern-shop", FORGOTTEN),
            ("account disabled", "ada", renamed, f"{FORGOTTEN}: renamed, its sessions ended"),
        ]
        # The old name, tried after the forget, is no account's: the log does not keep it.
        assert [e for e in entries if e[0] == "sign-in failed"] == [
            ("sign-in failed", "", renamed, ""),
            ("sign-in failed", "", "", "no account by that name"),
        ]
        assert not await self.pool.fetchval(
            "SELECT count(*) FROM access_log WHERE subject = 'fern' AND kind LIKE 'sign-in %'"
        )

    async def check_otto_goes_on(self) -> None:
        assert (await self.otto.get("/orders")).status_code == 200
        assert (await self.api(self.otto_token)).status_code == 200
        assert (await sign_in(second_browser(self.browser), "otto")).status_code == 303


@pytest.fixture
async def customers(browser: PageClient, pool: asyncpg.Pool) -> Customers:
    customers = Customers(browser, pool)
    await customers.start()
    return customers


async def test_a_forget_on_the_customer_page_ends_the_sign_in_of_the_customers_account(
    customers: Customers,
) -> None:
    forgotten = await customers.browser.post("/customers/cust-f/forget", {"reason": "Asked to be forgotten"})
    assert forgotten.status_code == 303

    await customers.check_fern_is_signed_out_for_good()
    await customers.check_otto_goes_on()


async def test_a_forget_through_the_api_ends_the_sign_in_of_the_customers_account(
    customers: Customers, pool: asyncpg.Pool
) -> None:
    admin_token = await token_for(pool, "admin-robot", "admin")
    forgotten = await customers.browser.client.post(
        "/api/customers/cust-f/forget",
        json={"reason": "Asked to be forgotten"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert forgotten.status_code == 200, forgotten.text

    next_request = await customers.fern.get("/orders", follow_redirects=False)
    assert next_request.status_code == 303
    assert (await customers.api(customers.fern_token)).status_code == 401
    shown = log_entries(await customers.browser.get("/admin/access-log"))
    assert [entry[:2] for entry in shown if "forgotten" in entry[3]] == [
        ("token revoked", "admin-robot"),
        ("account disabled", "admin-robot"),
    ]
    await customers.check_otto_goes_on()


async def test_a_refused_forget_changes_no_account(customers: Customers, pool: asyncpg.Pool) -> None:
    clerk_token = await token_for(pool, "clerk-robot", "clerk")
    before = await sign_in_state(pool)

    by_a_customer = await customers.fern.post("/customers/cust-f/forget", {"reason": "Forget me"})
    by_a_clerk = await customers.fern.client.post(
        "/api/customers/cust-f/forget",
        json={"reason": "Asked to"},
        headers={"Authorization": f"Bearer {clerk_token}"},
    )
    unknown = await customers.browser.post("/customers/nobody-here/forget", {"reason": "Asked to"})

    assert (by_a_customer.status_code, by_a_clerk.status_code, unknown.status_code) == (403, 403, 404)
    assert await sign_in_state(pool) == before
    assert (await customers.fern.get("/orders")).status_code == 200
    assert (await customers.api(customers.fern_token)).status_code == 200


async def test_a_forget_on_the_command_line_ends_the_sign_in_of_the_customers_account(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    key_file = tmp_path / "master.key"
    await with_customer(pool, key_file, "cust-f")
    fern_id = await add_account(pool, "fern", "customer", "cust-f")
    fern_session = await session_for(pool, "fern", "customer", "cust-f")
    fern_token = await token_for(pool, "fern-shop", "customer", "cust-f")
    await add_account(pool, "otto", "customer", "cust-o")
    admin = await add_account(pool, "olga", "admin")

    done = orders_cli(
        database_url, key_file, "customers", "forget", "cust-f", "--reason", "asked", "--as", "olga"
    )
    assert done.returncode == 0, done.stderr

    renamed = "forgotten-" + fern_id.replace("-", "")
    accounts, sessions = Accounts(pool), Sessions(pool, idle=timedelta(hours=1), absolute=timedelta(days=1))
    account = await accounts.find(renamed)
    assert account is not None
    assert account.disabled_at is not None
    assert await accounts.find("fern") is None
    assert await accounts.check_password(renamed, PASSWORD) is None
    assert await sessions.resume(fern_session) is None
    assert await Tokens(pool).actor(fern_token) is None
    rows = await pool.fetch(
        "SELECT kind, actor_id, actor_name, subject, detail FROM access_log ORDER BY entry_id"
    )
    assert [tuple(r) for r in rows] == [
        ("account disabled", admin, "olga", renamed, f"{FORGOTTEN}: renamed, its sessions ended"),
        ("token revoked", admin, "olga", "fern-shop", FORGOTTEN),
    ]
    otto = await accounts.check_password("otto", PASSWORD)
    assert otto is not None
    assert otto.name == "otto"


async def test_after_a_forget_no_account_or_token_is_bound_to_that_customer_again(
    customers: Customers, pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    assert (
        await customers.browser.post("/customers/cust-f/forget", {"reason": "Asked to"})
    ).status_code == 303
    before = await sign_in_state(pool)
    refused = "Customer cust-f has been forgotten: no account or token can act for them."

    account = await customers.browser.post(
        "/admin/accounts",
        {
            "username": "fern2",
            "role": "customer",
            "customer_id": "cust-f",
            "password": "a long enough one 123",
        },
    )
    token = await customers.browser.post(
        "/admin/tokens", {"name": "fern-shop-2", "role": "customer", "customer_id": "cust-f"}
    )
    role = await customers.browser.post(
        "/admin/accounts/otto/role", {"role": "customer", "customer_id": "cust-f"}
    )
    on_the_command_line = orders_cli(
        database_url,
        tmp_path / "master.key",
        "tokens",
        "add",
        "fern-cli",
        "--role",
        "customer",
        "--customer",
        "cust-f",
    )

    for answer in (account, token, role):
        assert answer.status_code == 409, answer.text
        assert html.escape(refused, quote=False) in answer.text or refused in answer.text
    assert on_the_command_line.returncode == 1
    assert refused in on_the_command_line.stderr
    assert await sign_in_state(pool) == before
