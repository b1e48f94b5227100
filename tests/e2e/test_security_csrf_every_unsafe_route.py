"""Every unsafe route in the app's route table refuses a forged request.

The pages' routes need the CSRF token (403 without it), even from a signed-in
browser. The JSON API takes no cookies and sits outside the CSRF check, so it
refuses writes that a browser makes on another site's behalf instead, even
with a valid token. No unsafe route escapes both.
"""

from __future__ import annotations

from typing import Any

from tests.support.accounts import token_at
from tests.support.figures import record
from tests.support.ledger import Ledger
from tests.support.page_client import PageClient
from tests.support.routes import Route, unsafe_routes
from web.api import same_origin_writes

VALID_FORMS = {
    "/orders": {"customer_id": "alice", "currency": "EUR"},
    "/orders/{order_id}/items": {"sku": "CUP-1", "name": "Cup", "unit_price": "1.00", "quantity": "1"},
    "/orders/{order_id}/cancel": {"reason": "Forged"},
}


def guarded_by_same_origin(route: Route) -> bool:
    guards: list[Any] = [getattr(guard, "func", guard) for guard in route.handler.resolve_guards()]
    return same_origin_writes in guards


async def test_every_unsafe_page_route_refuses_a_request_without_the_csrf_token(
    browser: PageClient, ledger: Ledger
) -> None:
    routes = [route for route in unsafe_routes(browser.app) if not route.api]
    assert {"/orders", "/orders/{order_id}/items", "/orders/{order_id}/place"} <= {r.path for r in routes}
    order_id = await browser.draft()
    values = {"order_id": order_id, "sku": "TEA-1", "name": "no_such_read_model"}
    before = await ledger.event_count()
    refused = 0
    for route in routes:
        url, form = route.url(**values), VALID_FORMS.get(route.path, {})
        # The victim is signed in (the session cookie stays): only the CSRF cookie is missing.
        browser.client.cookies.delete("csrftoken")
        forged: dict[str, dict[str, Any]] = {
            "no cookie, no token": {"data": form},
            "no cookie, a made-up token": {"data": form, "headers": {"x-csrftoken": "a" * 64}},
        }
        for case, request in forged.items():
            response = await browser.client.request(route.method, url, follow_redirects=False, **request)
            assert response.status_code == 403, (route.method, route.path, case, response.status_code)
            refused += 1
        token = (await browser.csrf())["x-csrftoken"]
        forged = {
            "the cookie, no token": {"data": form},
            "the cookie, a wrong header": {"data": form, "headers": {"x-csrftoken": token[::-1]}},
            "the cookie, a wrong form field": {"data": {**form, "_csrf_token": "0" * len(token)}},
        }
        for case, request in forged.items():
            response = await browser.client.request(route.method, url, follow_redirects=False, **request)
            assert response.status_code == 403, (route.method, route.path, case, response.status_code)
            assert "CSRF" in response.text
            refused += 1
        browser.token = ""
    assert await ledger.event_count() == before, "a forged request wrote an event"

    # The same requests with the token get past the check: it was the token that was missing.
    # Signing out ends the session the other routes need, so it goes last.
    for route in sorted(routes, key=lambda r: r.path == "/logout"):
        url, form = route.url(**values), VALID_FORMS.get(route.path, {})
        response = await browser.client.request(
            route.method, url, data=form, headers=await browser.csrf(), follow_redirects=False
        )
        assert response.status_code != 403, (route.method, route.path)
        assert not response.headers.get("location", "").startswith("/login?"), (route.method, route.path)
    record("CSRF: unsafe page routes checked, each refused 5 forgeries", len(routes))
    record("CSRF: forged page requests refused with 403", refused)


async def test_every_unsafe_api_route_refuses_writes_from_other_sites(
    browser: PageClient, ledger: Ledger, database_url: str
) -> None:
    routes = [route for route in unsafe_routes(browser.app) if route.api]
    if not routes:
        return
    excluded = [r for r in unsafe_routes(browser.app) if r.handler.opt.get("exclude_from_csrf")]
    assert all(r.api for r in excluded), "a route outside /api is excluded from the CSRF check"
    assert all(guarded_by_same_origin(r) for r in routes), "an API write is not guarded"
    order_id = await browser.draft()
    values = {"order_id": order_id, "sku": "TEA-1"}
    # An admin's token, who may send every API write (forgetting a customer too): the refusal is
    # the cross-site one, not a missing sign-in or role.
    bearer = {"Authorization": "Bearer " + await token_at(database_url, "ada-token", "admin")}
    before = await ledger.event_count()
    refused = 0
    for route in routes:
        for headers in (
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Origin": "https://evil.example"},
            {"Origin": "null"},
        ):
            response = await browser.client.request(
                route.method, route.url(**values), json={"reason": "Forged"}, headers={**bearer, **headers}
            )
            assert response.status_code == 403, (route.method, route.path, headers, response.status_code)
            assert "only from this site's own pages" in response.json()["detail"], response.text
            refused += 1
    assert await ledger.event_count() == before, "a cross-site request wrote an event"
    record("CSRF: unsafe API routes checked, each refused 4 cross-site writes", len(routes))
    record("CSRF: cross-site API writes refused with 403", refused)
