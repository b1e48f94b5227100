"""What the browser is told to enforce: a CSP with no inline code, nosniff, a referrer policy, no eval."""

from __future__ import annotations

import html
import json
import re
from typing import TYPE_CHECKING
from uuid import uuid4

import httpx

from tests.support.pages import INLINE_SCRIPT

if TYPE_CHECKING:
    from tests.support.page_client import PageClient


def assert_secure_headers(response: httpx.Response) -> None:
    policy = response.headers.get("content-security-policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["default-src"] == ["'self'"]
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("referrer-policy") in {"same-origin", "no-referrer", "strict-origin"}


async def test_security_headers_and_cookie_on_a_page_an_error_and_a_static_file(browser: PageClient) -> None:
    order_id = await browser.draft_with_items()
    responses = {
        "page": await browser.get(f"/orders/{order_id}"),
        "partial": await browser.get(f"/orders/{order_id}", htmx=True),
        "not found": await browser.get(f"/orders/{uuid4()}"),
        "bad request": await browser.get("/orders/nope"),
        "refused command": await browser.post(f"/orders/{order_id}/place", {"expected_version": "1"}),
        "too large": await browser.post(f"/orders/{order_id}/place", {"pad": "x" * 100_000}, htmx=True),
        "static": await browser.get("/static/htmx.min.js"),
        "static not found": await browser.get("/static/nope.js"),
        "health": await browser.get("/healthz"),
    }
    expected = {"not found": 404, "bad request": 400, "refused command": 409, "too large": 413}
    expected["static not found"] = 404
    for name, response in responses.items():
        assert response.status_code == expected.get(name, 200), name
        assert_secure_headers(response)
    # A signed-in browser without the CSRF cookie gets one; so does a visitor at the sign-in page.
    browser.client.cookies.delete("csrftoken")
    signed_in = await browser.client.get("/orders")
    browser.client.cookies.clear()
    anonymous = await browser.client.get("/login")
    for response in (signed_in, anonymous):
        assert response.status_code == 200
        assert_secure_headers(response)
        cookie = response.headers["set-cookie"].lower()
        assert cookie.startswith("csrftoken=")
        assert "httponly" in cookie
        assert "samesite=strict" in cookie


# Error pages made before any route handler runs: by the CSRF check, the router, or the
# CSRF check reading an oversized form (Litestar middleware only wraps route handlers).
BEFORE_HANDLER = [
    ("post", "/orders", {}, 403),
    ("get", "/no-such-page", {}, 404),
    ("delete", "/orders", {}, 405),
    ("post", "/orders", {"_csrf_token": "x", "pad": "x" * 100_000}, 413),
]


async def test_security_headers_on_error_pages_made_before_the_handler(browser: PageClient) -> None:
    await browser.get("/orders")
    for method, url, form, status in BEFORE_HANDLER:
        response = await browser.client.request(method, url, data=form or None)
        assert response.status_code == status
        assert "<html" in response.text
        assert_secure_headers(response)


async def every_page(browser: PageClient) -> dict[str, httpx.Response]:
    order_id = await browser.draft_with_items(("TEA-1", "Green tea", "3.50", "2"))
    return {
        "orders": await browser.get("/orders"),
        "orders table": await browser.get("/orders", htmx=True, target="orders-table"),
        "create refused": await browser.post("/orders", {"customer_id": "", "currency": "EUR"}),
        "order": await browser.get(f"/orders/{order_id}"),
        "order main": await browser.get(f"/orders/{order_id}", htmx=True),
        "refused add": await browser.add_item(order_id, "X", "X", "0", "1", htmx=False),
        "history": await browser.get(f"/orders/{order_id}/history?version=1"),
        "snapshot": await browser.get(f"/orders/{order_id}/history?version=1", htmx=True),
        "timeline": await browser.get(f"/orders/{order_id}/timeline"),
        "timeline partial": await browser.get(f"/orders/{order_id}/timeline", htmx=True),
        "events": await browser.get("/events"),
        "event log": await browser.get("/events", htmx=True, target="event-log"),
        "error": await browser.get(f"/orders/{uuid4()}"),
        "error partial": await browser.get(f"/orders/{uuid4()}", htmx=True),
    }


async def test_no_page_has_inline_code_and_scripts_come_from_static(browser: PageClient) -> None:
    for name, response in (await every_page(browser)).items():
        text = response.text
        assert response.status_code in {200, 404, 409, 422}, name
        assert not INLINE_SCRIPT.findall(text), name
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", text, re.IGNORECASE), name
        assert not re.search(r"<[^>]+\sstyle\s*=", text, re.IGNORECASE), name
        assert "<style" not in text, name
        assert "hx-on" not in text, name
        assert "javascript:" not in text.lower(), name
        scripts = re.findall(r"<script\b[^>]*>", text)
        if "<html" in text:
            assert '<script src="/static/htmx.min.js" defer>' in scripts, name
            assert all(re.fullmatch(r'<script src="/static/[a-z.]+\.js" defer>', s) for s in scripts), name
        else:
            assert scripts == [], name


async def test_htmx_is_configured_without_eval_or_indicator_styles(browser: PageClient) -> None:
    for url in ("/orders", "/events", "/orders/nope"):
        response = await browser.get(url)
        meta = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", response.text)
        assert meta is not None, url
        config = json.loads(html.unescape(meta.group(1)))
        assert config["allowEval"] is False, url
        assert config["includeIndicatorStyles"] is False, url
        assert config["allowScriptTags"] is False, url
        swaps = {rule["code"]: rule for rule in config["responseHandling"]}
        assert swaps["4.."]["swap"] is True, url
