"""Who may use what: every route of the app's own route table, asked by every role.

RULES says, for each route, who may use it. A route the table does not know
fails the sweep, so a new route needs a rule here before it ships. Refused
visitors write nothing: the events, handled commands and read-model rows are
counted around every refused write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

import web.app
from tests.support.accounts import PASSWORD, add_account
from tests.support.app import make_app
from tests.support.routes import Route, routes
from tests.support.visitors import ROLES, Visitor, draft_of, first_answer, visitors, written
from web.access import PUBLIC, READ_ORDERS, authorize, check_every_route_declares_access, login_url
from web.settings import Settings

ANYONE = frozenset(ROLES)
STAFF = frozenset({"viewer", "clerk", "admin"})
READERS = STAFF | {"customer"}  # a customer: their own orders only
WRITERS = frozenset({"clerk", "admin", "customer"})
ADMINS = frozenset({"admin"})

# Route → who may use it. A route missing here fails the sweep.
RULES: dict[str, frozenset[str]] = {
    "GET /": ANYONE,
    "GET /login": ANYONE,
    "POST /login": ANYONE,
    "POST /logout": ANYONE,
    "GET /setup": ANYONE,
    "POST /setup": ANYONE,
    "GET /healthz": ANYONE,
    "GET /static/{file_path}": ANYONE,
    "HEAD /static/{file_path}": ANYONE,
    "GET /schema": ANYONE,
    "GET /schema/swagger": ANYONE,
    "GET /schema/openapi.json": ANYONE,
    "GET /schema/{path}": ANYONE,
    "GET /schema/swagger-ui/{name}": ANYONE,
    "GET /orders": READERS,
    "POST /orders": WRITERS,
    "GET /orders/{order_id}": READERS,
    "GET /orders/{order_id}/live-update": READERS,
    "GET /orders/{order_id}/history": READERS,
    "GET /orders/{order_id}/timeline": READERS,
    "GET /orders/{order_id}/diff": READERS,
    "GET /orders/{order_id}/events/{version}": READERS,
    "GET /orders/{order_id}/export": READERS,
    "GET /orders/{order_id}/live": READERS,
    "POST /orders/{order_id}/items": WRITERS,
    "POST /orders/{order_id}/items/{sku}/remove": WRITERS,
    "POST /orders/{order_id}/place": WRITERS,
    "POST /orders/{order_id}/cancel": WRITERS,
    "GET /customers": STAFF,
    "GET /customers/new": WRITERS,
    "POST /customers": WRITERS,
    "GET /customers/{customer_id}": READERS,
    "POST /customers/{customer_id}": WRITERS,
    "POST /customers/{customer_id}/forget": ADMINS,
    "GET /events": STAFF,
    "GET /events/export": STAFF,
    "GET /events/live": STAFF,
    "GET /sales": STAFF,
    "GET /notifications": STAFF,
    "GET /admin/projections": ADMINS,
    "POST /admin/projections/{name}/rebuild": ADMINS,
    "GET /admin/parked": ADMINS,
    "POST /admin/parked/retry": ADMINS,
    "POST /admin/parked/skip": ADMINS,
    "POST /admin/parked/messages/retry": ADMINS,
    "POST /admin/parked/messages/drop": ADMINS,
    "GET /admin/accounts": ADMINS,
    "POST /admin/accounts": ADMINS,
    "POST /admin/accounts/{name}/role": ADMINS,
    "POST /admin/accounts/{name}/disable": ADMINS,
    "POST /admin/accounts/{name}/password": ADMINS,
    "GET /admin/tokens": ADMINS,
    "POST /admin/tokens": ADMINS,
    "POST /admin/tokens/{name}/revoke": ADMINS,
    "GET /admin/access-log": ADMINS,
    "GET /metrics": ADMINS,
    "GET /api/orders": READERS,
    "POST /api/orders": WRITERS,
    "GET /api/orders/{order_id}": READERS,
    "GET /api/orders/{order_id}/events": READERS,
    "POST /api/orders/{order_id}/items": WRITERS,
    "DELETE /api/orders/{order_id}/items/{sku}": WRITERS,
    "POST /api/orders/{order_id}/place": WRITERS,
    "POST /api/orders/{order_id}/cancel": WRITERS,
    "GET /api/events": STAFF,
    "GET /api/customers": STAFF,
    "POST /api/customers": WRITERS,
    "GET /api/customers/{customer_id}": READERS,
    "PUT /api/customers/{customer_id}": WRITERS,
    "POST /api/customers/{customer_id}/forget": ADMINS,
}

# What an allowed visitor gets, with the values below (GET /login: a signed-in visitor is sent on).
ALLOWED_STATUS: dict[str, int] = {
    "GET /": 303,
    "GET /login": 200,
    "POST /login": 401,  # a name that has no account
    "POST /logout": 303,
    "GET /setup": 404,  # no valid set-up link
    "POST /setup": 404,
    "GET /schema/{path}": 404,
    "POST /orders": 303,
    "POST /orders/{order_id}/items": 303,
    "POST /orders/{order_id}/items/{sku}/remove": 303,
    "POST /orders/{order_id}/place": 303,
    "POST /orders/{order_id}/cancel": 303,
    "POST /admin/projections/{name}/rebuild": 404,  # a read model that does not exist: nothing rebuilt
    "POST /admin/parked/retry": 404,  # an empty form names nothing parked: nothing changed
    "POST /admin/parked/skip": 404,
    "POST /admin/parked/messages/retry": 404,
    "POST /admin/parked/messages/drop": 404,
    "POST /admin/accounts": 422,  # an empty form: no name, no password
    "POST /admin/accounts/{name}/role": 404,  # no such account
    "POST /admin/accounts/{name}/disable": 404,
    "POST /admin/accounts/{name}/password": 404,
    "POST /admin/tokens": 422,  # an empty form
    "POST /admin/tokens/{name}/revoke": 404,  # no such token
    "POST /api/orders": 201,
    "POST /customers": 303,
    "POST /customers/{customer_id}": 303,
    "POST /customers/{customer_id}/forget": 303,
    "POST /api/customers": 201,
}
# A customer registers itself only, and "cust-a" is registered before the sweep: 409.
ROLE_STATUS = {("customer", "POST /customers"): 409, ("customer", "POST /api/customers"): 409}
# Routes that register (or forget) a customer of their own on each allowed call, named here.
FRESH_CUSTOMER = {
    "/customers",
    "/api/customers",
    "/customers/{customer_id}/forget",
    "/api/customers/{customer_id}/forget",
}
DETAILS = {"name": "Sweep Person", "email": "sweep@example.org", "address": "1 Sweep Lane"}
QUERIES = {"/orders/{order_id}/history": "?version=1", "/orders/{order_id}/diff": "?from_version=1"}
FORMS: dict[str, dict[str, str]] = {
    "/login": {"username": "nobody-here", "password": "wrong password"},
    "/orders": {"customer_id": "cust-a", "currency": "EUR"},
    "/orders/{order_id}/items": {"sku": "CUP-1", "name": "Cup", "unit_price": "1.00", "quantity": "1"},
    "/orders/{order_id}/cancel": {"reason": "Sweep"},
    "/customers": {"customer_id": "cust-a", **DETAILS},
    "/customers/{customer_id}": DETAILS,
    "/customers/{customer_id}/forget": {"reason": "Sweep"},
}
BODIES: dict[str, Any] = {
    "/api/orders": {"customer_id": "cust-a", "currency": "EUR"},
    "/api/orders/{order_id}/items": {
        "sku": "CUP-1",
        "name": "Cup",
        "unit_price": {"amount": "1.00", "currency": "EUR"},
        "quantity": 1,
    },
    "/api/orders/{order_id}/cancel": {"reason": "Sweep"},
    "/api/customers": {"customer_id": "cust-a", **DETAILS},
    "/api/customers/{customer_id}": DETAILS,
    "/api/customers/{customer_id}/forget": {"reason": "Sweep"},
}


async def register(client: AsyncTestClient[Any], admin: Visitor, customer_id: str) -> None:
    """The customer, registered through the API (so with the app's own master key)."""
    body = {"customer_id": customer_id, **DETAILS}
    status, _ = await first_answer(client, admin, "POST", "/api/customers", body=body)
    assert status == 201, customer_id


def key(route: Route) -> str:
    return f"{route.method} {route.path}"


def write(route: Route) -> bool:
    return route.method not in ("GET", "HEAD")


@pytest.fixture
async def sweep_client(database_url: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = make_app(database_url, csrf_secret="test-secret", pool_size=4, subscriptions=False)
    async with AsyncTestClient(app=app) as client:
        yield client


def test_every_route_of_the_app_has_a_rule_in_the_table() -> None:
    app = make_app("postgresql://nobody@127.0.0.1:1/none", csrf_secret="s", subscriptions=False)
    known = {key(route) for route in routes(app)}
    assert sorted(known - RULES.keys()) == [], "routes with no rule in RULES: add one"
    assert sorted(RULES.keys() - known) == [], "rules for routes the app no longer has"


async def test_every_role_gets_what_the_table_says_on_every_route(
    sweep_client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    client = sweep_client
    who = await visitors(client, pool, "cust-a")
    fresh = iter(range(1, 1000))
    await register(client, who["admin"], "cust-a")
    shared = await draft_of(pool, "cust-a")
    # Signing out ends the visitor's session: it goes last.
    table = sorted(routes(client.app), key=lambda r: r.path == "/logout")
    unknown = [key(route) for route in table if key(route) not in RULES]
    assert unknown == [], f"no access rule in the table for {unknown}"
    checked = 0
    for role in ROLES:
        visitor = who[role]
        for route in table:
            allowed = role in RULES[key(route)]
            # An allowed write gets an order of its own, so each one's answer is the first.
            order_id = await draft_of(pool, "cust-a") if allowed and write(route) else shared
            values = {
                "order_id": order_id,
                "sku": "TEA-1",
                "version": "1",
                "customer_id": "cust-a",
                "file_path": "app.css",
                "name": "swagger-ui.css" if route.path.startswith("/schema") else "no_such_read_model",
                "path": "nothing-here",
            }
            form, body = FORMS.get(route.path), BODIES.get(route.path)
            if allowed and route.path in FRESH_CUSTOMER:
                # Each allowed call registers, or forgets, a customer of its own.
                customer_id = f"sweep-{next(fresh)}"
                if "customer_id" in route.parameters:
                    await register(client, who["admin"], customer_id)
                    values["customer_id"] = customer_id
                form = form and {**form, "customer_id": customer_id}
                body = body and {**body, "customer_id": customer_id}
            url = route.url(**values) + QUERIES.get(route.path, "")
            before = await written(pool)
            status, headers = await first_answer(client, visitor, route.method, url, form=form, body=body)
            where = (role, route.method, url, status)
            if allowed:
                expected = ROLE_STATUS.get((role, key(route)), ALLOWED_STATUS.get(key(route), 200))
                if key(route) == "GET /login" and role != "anonymous":
                    expected = 303
                assert status == expected, where
            else:
                assert await written(pool) == before, f"a refused request wrote: {where}"
                if role != "anonymous":
                    assert status == 403, where
                elif route.api:
                    assert status == 401, where
                    assert headers["www-authenticate"].startswith("Bearer"), where
                else:
                    assert status == 303, where
                    assert headers["location"] == login_url(urlsplit(url).path, urlsplit(url).query), where
                    assert parse_qs(urlsplit(headers["location"]).query)["next"] == [url], where
            checked += 1
    assert checked == len(ROLES) * len(table)


async def test_an_anonymous_page_visitor_is_sent_to_sign_in_and_back_to_the_page(
    sweep_client: AsyncTestClient[Any], pool: asyncpg.Pool
) -> None:
    client = sweep_client
    await register(client, (await visitors(client, pool, "cust-a"))["admin"], "cust-a")
    client.cookies.clear()
    order_id = await draft_of(pool, "cust-a")
    asked = await client.get(f"/orders/{order_id}/history?version=1", follow_redirects=False)
    assert asked.status_code == 303
    location = asked.headers["location"]
    assert location.startswith("/login?next="), "the sign-in link is relative, on this site"
    await add_account(pool, "vera", "viewer")
    page = await client.get(location)
    token = client.cookies["csrftoken"]
    back = parse_qs(urlsplit(location).query)["next"][0]
    signed_in = await client.post(
        "/login",
        data={"username": "vera", "password": PASSWORD, "next": back, "_csrf_token": token},
        follow_redirects=False,
    )
    assert page.status_code == 200
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == f"/orders/{order_id}/history?version=1"


@pytest.mark.parametrize(
    "next_", ["//evil.example", "https://evil.example", "//evil.example/orders", "/\\evil.example", "evil"]
)
async def test_next_never_sends_a_signed_in_visitor_to_another_site(
    sweep_client: AsyncTestClient[Any], pool: asyncpg.Pool, next_: str
) -> None:
    client = sweep_client
    await add_account(pool, "vera", "viewer")
    await client.get("/login", params={"next": next_})
    token = client.cookies["csrftoken"]
    signed_in = await client.post(
        "/login",
        data={"username": "vera", "password": PASSWORD, "next": next_, "_csrf_token": token},
        follow_redirects=False,
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/orders"
    again = await client.get("/login", params={"next": next_}, follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"] == "/orders"


@get("/undeclared", sync_to_thread=False)
def undeclared() -> str:
    return "anyone?"


@get("/declared", sync_to_thread=False, opt=READ_ORDERS)
def declared() -> str:
    return "staff"


@get("/open", sync_to_thread=False, opt=PUBLIC)
def open_to_all() -> str:
    return "open"


@get("/", sync_to_thread=False)
def undeclared_home() -> str:
    return "home"


def test_an_app_with_a_route_that_declares_no_access_rule_is_refused() -> None:
    app = Litestar(route_handlers=[undeclared, declared, open_to_all], openapi_config=None)
    with pytest.raises(RuntimeError) as refused:
        check_every_route_declares_access(app)
    assert "GET /undeclared" in str(refused.value)
    assert "/declared" not in str(refused.value)
    check_every_route_declares_access(Litestar(route_handlers=[declared], openapi_config=None))


def test_create_app_refuses_to_start_when_one_of_its_routes_declares_no_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(web.app, "home", undeclared_home)
    with pytest.raises(RuntimeError, match="GET /"):
        web.app.create_app(Settings(database_url="postgresql://nobody@127.0.0.1:1/none", csrf_secret="s"))


async def test_the_guard_refuses_a_route_that_declares_no_rule_at_run_time() -> None:
    app = Litestar(route_handlers=[undeclared], guards=[authorize], openapi_config=None)
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/undeclared")
    assert response.status_code == 403
    assert "anyone?" not in response.text
