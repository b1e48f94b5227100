"""Pages from the render cache: a fresh rendering's bytes, never an old version, 304 only if unchanged."""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support.accounts import session_at
from tests.support.app import make_app
from tests.support.customers import register_at
from tests.support.page_client import PageClient
from web.access import SESSION_COOKIE
from web.render_cache import RenderCache

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
COMMAND_ID = re.compile(rf'name="command_id" value="({UUID})"')
HORIZON = re.compile(r"horizon=\d+")
CSRF = re.compile(r'(name="_csrf_token" value="|"x-csrftoken": ")([^"&]+)')


def masked(html: str) -> str:
    """The page with what is per request (CSRF token, command ids, the log's live horizon) blanked out."""
    html = HORIZON.sub("horizon=N", html)
    return CSRF.sub(r"\1CSRF", COMMAND_ID.sub('name="command_id" value="COMMAND-ID"', html))


def cache_of(browser: PageClient) -> RenderCache:
    cache: RenderCache = browser.app.state.render_cache
    return cache


async def order_with_history(browser: PageClient) -> str:
    """A draft of three lines (4 events); the second line has a note with characters to escape."""
    order_id = await browser.create_order("alice & <bob>")
    for sku, name in (("TEA-1", "Green tea"), ("CUP-1", 'Cup "<b>"'), ("POT-1", "Pot")):
        answer = await browser.add_item(order_id, sku, name, "3.50", "2")
        assert answer.status_code == 200, answer.text
    return order_id


def pages_of(order_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every page and partial the render cache serves, as a browser asks for them."""
    base = f"/orders/{order_id}"
    return [
        (base, {}),
        (base, {"htmx": True}),
        (f"{base}/history?version=2", {}),
        (f"{base}/history?version=2", {"htmx": True, "target": "order-main"}),
        (f"{base}/history?version=2", {"htmx": True, "target": "snapshot"}),
        (f"{base}/history?version=1&play=fast", {"htmx": True, "target": "order-main"}),
        (f"{base}/timeline", {}),
        (f"{base}/timeline?version=3", {"htmx": True}),
        (f"{base}/events/3", {}),
        (f"{base}/events/3", {"htmx": True}),
        (f"{base}/live-update?newer_than=1&status=draft", {"htmx": True}),
        (f"{base}/live-update?newer_than=1&status=placed", {"htmx": True}),
        ("/orders", {}),
        ("/orders", {"target": "orders-table"}),
        ("/events", {}),
        ("/events", {"target": "event-log"}),
    ]


async def test_a_cached_page_is_byte_for_byte_the_page_rendered_fresh(browser: PageClient) -> None:
    order_id = await order_with_history(browser)
    cache = cache_of(browser)
    for url, how in pages_of(order_id):
        first = await browser.get(url, **how)
        hits = cache.hits
        cached = await browser.get(url, **how)
        assert cache.hits > hits, f"{url} {how}: not served from the cache"
        cache.clear()
        fresh = await browser.get(url, **how)
        assert first.status_code == cached.status_code == fresh.status_code == 200, url
        assert masked(cached.text) == masked(fresh.text), f"{url} {how}"
        assert masked(first.text) == masked(fresh.text), f"{url} {how}"
    # What the mask hides is filled in per request: the browser's own token, fresh command ids.
    page = (await browser.get(f"/orders/{order_id}")).text
    again = (await browser.get(f"/orders/{order_id}")).text
    tokens = {m.group(2) for m in CSRF.finditer(page)}
    assert len(tokens) == 1
    assert "csrf-" not in page
    assert "command-" not in page
    assert "fragment-" not in page
    ids, other_ids = COMMAND_ID.findall(page), COMMAND_ID.findall(again)
    assert len(ids) >= 5
    assert len(set(ids)) == len(ids)
    assert not set(ids) & set(other_ids)
    # The page rendered fresh is the page the app rendered before there was a cache.
    assert "alice &amp; &lt;bob&gt;" in page
    assert "Cup &#34;&lt;b&gt;&#34;" in page


async def test_the_cached_page_works_as_a_form(browser: PageClient) -> None:
    """The filled-in token and command id are accepted: a form from a cached page goes through."""
    order_id = await order_with_history(browser)
    await browser.get(f"/orders/{order_id}")
    page = (await browser.get(f"/orders/{order_id}")).text
    form = re.search(r'action="/orders/[^"]+/cancel".*?</form>', page, re.DOTALL)
    assert form is not None
    fields = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', form.group(0)))
    fields["reason"] = "Changed my mind"
    answer = await browser.client.post(f"/orders/{order_id}/cancel", data=fields, follow_redirects=False)
    assert answer.status_code == 303
    assert "Cancelled: Changed my mind" in (await browser.get(f"/orders/{order_id}")).text


async def test_a_new_event_shows_on_the_page_after_the_command(browser: PageClient) -> None:
    order_id = await order_with_history(browser)
    await browser.get(f"/orders/{order_id}")
    await browser.get(f"/orders/{order_id}/history?version=2")
    assert "SPN-1" not in (await browser.get(f"/orders/{order_id}")).text
    assert (await browser.add_item(order_id, "SPN-1", "Spoon", "0.99", "4", htmx=False)).status_code == 303
    page = (await browser.get(f"/orders/{order_id}")).text
    assert "SPN-1" in page
    assert "Version <strong>5</strong> of 5" in page
    # The htmx answer of a command is the order after it.
    answer = await browser.add_item(order_id, "KNF-1", "Knife", "1.99", "1")
    assert answer.status_code == 200
    assert "KNF-1" in answer.text
    assert "of 6" in answer.text
    # A past version says which version is now the latest.
    past = (await browser.get(f"/orders/{order_id}/history?version=2")).text
    assert "Version <strong>2</strong> of 6" in past


@asynccontextmanager
async def instance(database_url: str, session: str) -> AsyncIterator[PageClient]:
    """An app instance of its own (its own pool and render cache) on the shared database."""
    app = make_app(database_url, csrf_secret="test-secret", pool_size=2, subscriptions=False)
    async with AsyncTestClient(app=app) as client:
        client.cookies.set(SESSION_COOKIE, session)
        yield PageClient(client)


async def test_an_event_written_on_another_instance_shows_on_this_one(database_url: str) -> None:
    session = await session_at(database_url, "ada", "admin")
    async with instance(database_url, session) as here, instance(database_url, session) as there:
        order_id = await here.create_order()
        await here.add_item(order_id, "TEA-1", "Green tea", "3.50", "1")
        for _ in range(2):
            page = (await here.get(f"/orders/{order_id}")).text
        assert cache_of(here).hits > 0
        assert "CUP-1" not in page
        assert (await there.add_item(order_id, "CUP-1", "Cup", "12.00", "1")).status_code == 200
        page = (await here.get(f"/orders/{order_id}")).text
        assert "CUP-1" in page
        assert "Version <strong>3</strong> of 3" in page
        partial = (await here.get(f"/orders/{order_id}/timeline", htmx=True)).text
        assert "v3" in partial


async def conditional(browser: PageClient, url: str, tag: str, **headers: str) -> httpx.Response:
    return await browser.client.get(url, headers={"if-none-match": tag, **headers})


async def test_304_for_an_unchanged_order_and_never_for_a_changed_one(browser: PageClient) -> None:
    order_id = await order_with_history(browser)
    url = f"/orders/{order_id}"
    first = await browser.get(url)
    tag = first.headers["etag"]
    assert tag.startswith('W/"4-4-')
    assert first.headers["cache-control"] == "private, no-cache"
    unchanged = await conditional(browser, url, tag)
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == tag
    assert unchanged.headers["content-security-policy"]  # security headers on a 304 too
    assert (await conditional(browser, url, f'"x", {tag}')).status_code == 304
    # The partial is another representation: the page's tag does not match it.
    assert (await conditional(browser, url, tag, **{"HX-Request": "true"})).status_code == 200
    # A past version keeps its tag until the order moves on ("of N" changes then).
    past_url = f"{url}/history?version=2"
    past_tag = (await browser.get(past_url)).headers["etag"]
    assert (await conditional(browser, past_url, past_tag)).status_code == 304

    assert (await browser.add_item(order_id, "SPN-1", "Spoon", "0.99", "1", htmx=False)).status_code == 303
    changed = await conditional(browser, url, tag)
    assert changed.status_code == 200
    assert "SPN-1" in changed.text
    assert changed.headers["etag"] != tag
    past_now = await conditional(browser, past_url, past_tag)
    assert past_now.status_code == 200
    assert "Version <strong>2</strong> of 5" in past_now.text


async def test_one_role_s_etag_gives_another_role_no_304(browser: PageClient, database_url: str) -> None:
    order_id = await order_with_history(browser)
    url = f"/orders/{order_id}"
    client = browser.client
    sessions = {role: await session_at(database_url, f"{role}-1", role) for role in ("viewer", "clerk")}
    answers = {}
    for role, session in sessions.items():
        client.cookies.set(SESSION_COOKIE, session)
        answers[role] = await client.get(url)
    viewer, clerk = answers["viewer"], answers["clerk"]
    assert "Add item" not in viewer.text
    assert "Add item" in clerk.text
    client.cookies.set(SESSION_COOKIE, sessions["clerk"])
    asked = await client.get(url, headers={"if-none-match": viewer.headers["etag"]})
    assert asked.status_code == 200
    assert "Add item" in asked.text
    # Another account of the same role: the page names who is signed in, so no 304 either.
    client.cookies.set(SESSION_COOKIE, await session_at(database_url, "clerk-2", "clerk"))
    other = await client.get(url, headers={"if-none-match": clerk.headers["etag"]})
    assert other.status_code == 200
    assert "clerk-2" in other.text
    assert masked(other.text.replace("clerk-2", "clerk-1")) == masked(clerk.text)


async def test_the_time_travel_page_at_a_past_version_is_cached_and_correct(browser: PageClient) -> None:
    order_id = await order_with_history(browser)
    cache = cache_of(browser)
    url = f"/orders/{order_id}/history?version=2"
    first = (await browser.get(url)).text
    hits, misses = cache.hits, cache.misses
    again = (await browser.get(url)).text
    assert (cache.hits, cache.misses) == (hits + 2, misses)  # the page's part and its shell
    assert masked(again) == masked(first)
    assert "Version <strong>2</strong> of 4" in again
    assert "TEA-1" in again
    assert "CUP-1" not in again.split('id="timeline"')[0]
    assert 'class="event marked" id="event-2"' in again
    assert 'class="event later" id="event-3"' in again
    stats = cache.stats()
    assert stats.entries >= 1
    assert 0 < stats.bytes <= stats.max_bytes


async def test_a_live_update_is_cached_per_status_the_page_saw(browser: PageClient) -> None:
    order_id = await order_with_history(browser)
    live = f"/orders/{order_id}/live-update?newer_than=2"
    same = (await browser.get(f"{live}&status=draft", htmx=True)).text
    moved = (await browser.get(f"{live}&status=placed", htmx=True)).text
    assert 'id="order-forms"' not in same  # the forms keep what is typed into them
    assert 'id="expected-version-add" name="expected_version" value="4"' in same
    assert 'id="order-forms"' in moved  # the status changed: new forms
    assert (await browser.get(f"/orders/{order_id}/live-update?newer_than=4", htmx=True)).status_code == 204
    await browser.post(f"/orders/{order_id}/place")
    placed = (await browser.get(f"{live}&status=draft", htmx=True)).text
    assert 'id="order-forms"' in placed
    assert "Version <strong>5</strong> of 5" in placed


async def test_the_list_page_is_cached_per_list_and_per_customer_account(
    browser: PageClient, database_url: str
) -> None:
    await browser.create_order("alice")
    first = (await browser.get("/orders")).text
    assert (await browser.get("/orders")).text.count("<tr>") == first.count("<tr>")
    newest = await browser.create_order("carol")
    listed = (await browser.get("/orders")).text
    assert newest[:8] in listed  # a new order changes the list, so its key
    client = browser.client
    for customer in ("bob", "dave"):  # no orders either: the same list, another customer
        client.cookies.set(SESSION_COOKIE, await session_at(database_url, customer, "customer", customer))
        page = (await client.get("/orders")).text
        assert f"For customer <strong>{customer}</strong>" in page
        assert "carol" not in page


async def test_the_list_answers_304_until_an_order_it_shows_changes_or_a_new_one_comes(
    browser: PageClient, database_url: str
) -> None:
    older = await browser.create_order("alice")
    first = await browser.get("/orders")
    tag = first.headers["etag"]
    assert tag.startswith('W/"list-')
    assert first.headers["cache-control"] == "private, no-cache"
    unchanged = await conditional(browser, "/orders", tag)
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert unchanged.headers["content-security-policy"]
    # The table alone (the filters' htmx answer) is another representation, with its own tag.
    table = await conditional(browser, "/orders", tag, **{"HX-Request": "true", "HX-Target": "orders-table"})
    assert table.status_code == 200
    assert older[:8] in table.text
    assert (
        await conditional(
            browser, "/orders", table.headers["etag"], **{"HX-Request": "true", "HX-Target": "orders-table"}
        )
    ).status_code == 304
    # An order shown moves on: the list changes (its total), so no 304.
    assert (await browser.add_item(older, "TEA-1", "Tea", "3.50", "2", htmx=False)).status_code == 303
    moved = await conditional(browser, "/orders", tag)
    assert moved.status_code == 200
    assert "7.00" in moved.text
    tag = moved.headers["etag"]
    assert (await conditional(browser, "/orders", tag)).status_code == 304
    newest = await browser.create_order("carol")
    added = await conditional(browser, "/orders", tag)
    assert added.status_code == 200
    assert newest[:8] in added.text
    # Another account (another role) never gets a 304 for this account's tag.
    browser.client.cookies.set(SESSION_COOKIE, await session_at(database_url, "viewer-1", "viewer"))
    assert (await conditional(browser, "/orders", added.headers["etag"])).status_code == 200


async def test_two_served_instances_never_show_an_old_version(
    servers: list[tuple[str, subprocess.Popen[bytes]]], database_url: str
) -> None:
    """As deployed: two uvicorn processes on one database, each with its own render cache."""
    clerk = {SESSION_COOKIE: await session_at(database_url, "till", "clerk")}
    await register_at(database_url, "alice")
    (here, _), (there, _) = servers
    async with (
        httpx.AsyncClient(base_url=here, cookies=clerk) as a,
        httpx.AsyncClient(base_url=there, cookies=clerk) as b,
    ):
        for client in (a, b):
            await client.get("/orders")
            client.headers["x-csrftoken"] = client.cookies["csrftoken"]
        created = await a.post("/orders", data={"customer_id": "alice", "currency": "EUR"})
        order = created.headers["location"]
        for _ in range(2):
            page = await a.get(order)
        tag = page.headers["etag"]
        item = {"sku": "CUP-1", "name": "Cup", "unit_price": "12.00", "quantity": "1"}
        assert (await b.post(f"{order}/items", data=item)).status_code == 303
        again = await a.get(order, headers={"if-none-match": tag})
        assert again.status_code == 200
        assert "CUP-1" in again.text
        assert "Version <strong>2</strong> of 2" in again.text


async def test_development_reloads_templates_and_caches_no_page(database_url: str) -> None:
    production = make_app(database_url, csrf_secret="s", subscriptions=False)
    development = make_app(database_url, csrf_secret="s", subscriptions=False, development=True)
    for app, reloads in ((production, False), (development, True)):
        engine = app.template_engine
        assert engine is not None
        environment = engine.engine  # type: ignore[attr-defined]
        assert environment.auto_reload is reloads
        assert (environment.bytecode_cache is None) is reloads
        assert cache_of_app(app).enabled is not reloads


def cache_of_app(app: Litestar) -> RenderCache:
    cache: RenderCache = app.state.render_cache
    return cache
