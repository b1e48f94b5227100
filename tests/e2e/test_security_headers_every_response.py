"""Every response carries the security headers: every route in the route table, and every kind of error.

The app is served by uvicorn over loopback so that live (server-sent event)
routes can be asked too: their headers arrive before a body that never ends.
The sweep is signed in (an admin's session for the pages, an admin's token for
the API), so that every route answers from its handler; the refusals of the
sign-in itself (303 to /login, the API's 401, a role's 403) are asked apart.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any
from uuid import uuid4

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support.accounts import session_at, token_at
from tests.support.app import make_app
from tests.support.customers import ensure_customer, register_in
from tests.support.databases import database_name, drop_database
from tests.support.figures import record
from tests.support.routes import routes
from tests.support.serving import served
from web.access import SESSION_COOKIE
from web.ratelimit import RateLimit

HTMX_CONFIG = re.compile(r"<meta name=\"htmx-config\" content='([^']*)'>")


def assert_secure(response: httpx.Response, what: str) -> None:
    policy = response.headers.get("content-security-policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert directives.get("frame-ancestors") == ["'none'"], (what, policy)
    assert directives.get("script-src") == ["'self'"], (what, policy)
    assert "'unsafe-inline'" not in policy, what
    assert "'unsafe-eval'" not in policy, what
    assert response.headers.get("x-content-type-options") == "nosniff", what
    assert response.headers.get("x-frame-options") == "DENY", what
    assert response.headers.get("referrer-policy") in {"same-origin", "no-referrer", "strict-origin"}, what


def assert_htmx_configured_by_meta(response: httpx.Response, what: str) -> None:
    """Pages that load htmx configure it through the meta tag, so the CSP needs no inline script or eval."""
    if "/static/htmx.min.js" not in response.text:
        return
    meta = HTMX_CONFIG.search(response.text)
    assert meta is not None, what
    config = json.loads(html.unescape(meta.group(1)))
    assert config["allowEval"] is False, what
    assert config["includeIndicatorStyles"] is False, what


async def seed(http: httpx.AsyncClient, app: Litestar) -> dict[str, str]:
    await ensure_customer(app.state.services.orders, "alice")  # a new order is for a registered customer
    await http.get("/orders")
    csrf = {"x-csrftoken": http.cookies["csrftoken"]}
    created = await http.post("/orders", data={"customer_id": "alice", "currency": "EUR"}, headers=csrf)
    assert created.status_code == 303, created
    assert created.headers["location"].startswith("/orders/"), created.headers["location"]
    order_id = created.headers["location"].rsplit("/", 1)[1]
    item = {"sku": "TEA-1", "name": "Green tea", "unit_price": "3.50", "quantity": "2"}
    added = await http.post(f"/orders/{order_id}/items", data=item, headers=csrf)
    assert added.status_code == 303, added
    return {"order_id": order_id, "customer_id": "alice", "sku": "TEA-1", "file_path": "app.css"}


async def signed_in(database_url: str, base: str) -> httpx.AsyncClient:
    """A client with an admin's session (pages) and an admin's token (API): every route lets it in."""
    http = httpx.AsyncClient(base_url=base, timeout=10)
    http.cookies.set(SESSION_COOKIE, await session_at(database_url, "ada", "admin"))
    http.headers["Authorization"] = "Bearer " + await token_at(database_url, "ops", "admin")
    return http


async def test_every_route_and_every_error_carries_the_security_headers(
    database_url: str, server_url: str
) -> None:
    app = make_app(database_url, csrf_secret="headers-test", pool_size=4, subscriptions=False)
    checked: list[tuple[str, int]] = []
    viewer = await session_at(database_url, "vera", "viewer")
    async with (
        served(app) as base,
        await signed_in(database_url, base) as http,
        httpx.AsyncClient(base_url=base, timeout=10) as anonymous,
    ):
        values = await seed(http, app)
        safe = [r for r in routes(app) if r.method in {"GET", "HEAD"}]
        for route in safe:
            for htmx in (False, True):
                what = f"{route.method} {route.path}{' (htmx)' if htmx else ''}"
                headers = {"HX-Request": "true"} if htmx else {}
                async with http.stream(route.method, route.url(**values), headers=headers) as response:
                    assert response.status_code < 500, (what, response.status_code)
                    # Signed in as an admin, the sweep reaches every handler (GET /login sends a
                    # signed-in visitor on to the orders, not back to itself).
                    assert response.status_code not in {401, 403}, (what, response.status_code)
                    assert not response.headers.get("location", "").startswith("/login"), what
                    assert_secure(response, what)
                    if "text/html" in response.headers.get("content-type", "") and route.method == "GET":
                        await response.aread()
                        assert_htmx_configured_by_meta(response, what)
                    checked.append((what, response.status_code))

        csrf = {"x-csrftoken": http.cookies["csrftoken"]}
        order = f"/orders/{values['order_id']}"
        errors: dict[str, tuple[int, dict[str, Any]]] = {
            "unknown path": (404, {"method": "GET", "url": "/no-such-page"}),
            "unknown order": (404, {"method": "GET", "url": f"/orders/{uuid4()}"}),
            "not an order id": (400, {"method": "GET", "url": "/orders/nope"}),
            "method not allowed": (405, {"method": "DELETE", "url": "/orders"}),
            "no CSRF token": (403, {"method": "POST", "url": "/orders", "data": {"customer_id": "a"}}),
            "body too large": (
                413,
                {"method": "POST", "url": f"{order}/place", "data": {"pad": "x" * 100_000}, "headers": csrf},
            ),
            "refused by a rule": (
                422,
                {"method": "POST", "url": f"{order}/cancel", "data": {"reason": ""}, "headers": csrf},
            ),
            "stale version": (
                409,
                {
                    "method": "POST",
                    "url": f"{order}/place",
                    "data": {"expected_version": "1"},
                    "headers": csrf,
                },
            ),
            "API problem": (404, {"method": "GET", "url": f"/api/orders/{uuid4()}"}),
        }
        for what, (status, request) in errors.items():
            response = await http.request(**request)
            assert response.status_code == status, (what, response.status_code)
            assert_secure(response, what)
            checked.append((what, status))

        # Nobody signed in, or a role that may not: the refusals of the access rules.
        sign_in_page = await anonymous.get("/login")
        assert sign_in_page.status_code == 200
        assert_htmx_configured_by_meta(sign_in_page, "sign-in page")
        anonymous_csrf = {"x-csrftoken": anonymous.cookies["csrftoken"]}
        refusals: dict[str, tuple[int, dict[str, Any]]] = {
            "sign-in page": (200, {"method": "GET", "url": "/login"}),
            "anonymous page": (303, {"method": "GET", "url": order}),
            "anonymous htmx": (401, {"method": "GET", "url": order, "headers": {"HX-Request": "true"}}),
            "anonymous API": (401, {"method": "GET", "url": "/api/orders"}),
            "wrong password": (
                401,
                {"method": "POST", "url": "/login", "data": {"username": "ada", "password": "no"}},
            ),
            "signed out": (303, {"method": "POST", "url": "/logout", "data": {}}),
            "set-up link not valid": (404, {"method": "GET", "url": "/setup?token=nope"}),
            "a viewer on an admin page": (
                403,
                {"method": "GET", "url": "/admin/projections", "cookies": {SESSION_COOKIE: viewer}},
            ),
        }
        for what, (status, request) in refusals.items():
            request["headers"] = {**anonymous_csrf, **request.get("headers", {})}
            if "cookies" in request:
                anonymous.cookies.set(SESSION_COOKIE, request.pop("cookies")[SESSION_COOKIE])
            response = await anonymous.request(**request)
            anonymous.cookies.delete(SESSION_COOKIE)
            assert response.status_code == status, (what, response.status_code)
            if what == "anonymous page":
                assert response.headers["location"].startswith("/login?next="), what
            if what == "anonymous htmx":
                assert response.headers["hx-redirect"].startswith("/login?next="), what
            if what == "anonymous API":
                assert response.headers["www-authenticate"].lower().startswith("bearer"), what
            assert_secure(response, what)
            checked.append((what, status))

        # The database gone: 503 pages carry them too.
        await drop_database(server_url, database_name(database_url))
        for url in ("/orders", order, "/healthz", "/api/orders"):
            response = await http.get(url)
            assert response.status_code == 503, url
            assert response.headers["retry-after"].isdigit()
            assert_secure(response, f"503 {url}")
            checked.append((f"database gone {url}", 503))

    record("headers: routes in the route table asked (GET and HEAD, page and htmx)", len(safe))
    record(
        "headers: responses checked, every one with CSP, nosniff, frame-ancestors, Referrer-Policy",
        len(checked),
    )
    record("headers: statuses seen", sorted({status for _, status in checked}))


async def test_refusals_made_outside_any_handler_carry_the_headers_too(database_url: str) -> None:
    """429 from the write limit and 400 from the allowed-hosts check."""
    app = make_app(
        database_url,
        csrf_secret="s",
        pool_size=2,
        subscriptions=False,
        write_limit=RateLimit(1, 60),
        allowed_hosts=["testserver.local"],
    )
    async with AsyncTestClient(app=app) as client:
        client.cookies.set(SESSION_COOKIE, await session_at(database_url, "ada", "admin"))
        register_in(client, "a")
        await client.get("/orders")
        csrf = {"x-csrftoken": client.cookies["csrftoken"]}
        for status in (303, 429):
            form = {"customer_id": "a", "currency": "EUR"}
            response = await client.post("/orders", data=form, headers=csrf, follow_redirects=False)
            assert response.status_code == status
            assert not response.headers.get("location", "").startswith("/login"), response
        assert_secure(response, "429")
        response = await client.get("/orders", headers={"Host": "evil.example"})
        assert response.status_code == 400
        assert_secure(response, "bad host")


async def test_the_htmx_indicator_styles_are_in_our_stylesheet(database_url: str) -> None:
    app = make_app(database_url, csrf_secret="s", pool_size=2, subscriptions=False)
    async with AsyncTestClient(app=app) as client:
        css = (await client.get("/static/app.css")).text
    assert re.search(r"\.htmx-indicator\s*\{[^}]*opacity:\s*0", css)
    assert re.search(r"\.htmx-request[^{]*\.htmx-indicator[^{]*\{[^}]*opacity:\s*1", css)
