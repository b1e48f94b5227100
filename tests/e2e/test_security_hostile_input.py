"""Hostile input on every field of every form route and every JSON API write.

Random text, numbers, huge values, control and right-to-left characters, in
every field and path parameter, on orders in every state: the app never
answers with a 5xx, a refused command never leaves an event behind, and
what was sent never comes back as live markup. The forms are sent signed in as
an admin (who may use every page) and the API writes with a clerk's token, so
the input reaches the handlers rather than the sign-in.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.accounts import session_for, token_for
from tests.support.figures import record
from tests.support.ledger import Ledger
from tests.support.page_client import PageClient
from tests.support.routes import Route, unsafe_routes
from web.access import SESSION_COOKIE

FORM_EXAMPLES = 600
API_EXAMPLES = 400
FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

MARKUP = "<script>alert(1)</script>"
SPECIAL = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u202egnp.exe",
    "\u200f\u200e\u2066",
    "\ufeff",
    "\r\n",
    "\t",
    "\x1b[31m",
    "\x7f",
    "\u2028",
    "9" * 400,
    "-1",
    "0",
    "-0",
    "1e309",
    "NaN",
    "Infinity",
    "0.001",
    "1,000.00",
    "3,50",
    "٣",
    "１０",
    "²",
    "𝟗",
    "0x10",
    "1_000",
    " 3.50 ",
    "3.5.0",
    "1000000.01",
    "99999999999999999999999",
    MARKUP,
    "' OR 1=1 --",
    "{{7*7}}",
    "%00",
    "../../etc/passwd",
    "null",
    "[]",
    "{}",
    "😀" * 100,
    str(2**31),
    str(2**63),
    "x" * 70_000,
]
hostile = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(max_size=80),
    st.text(st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Mn"]), max_size=20),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.text(min_size=300, max_size=3000),
)
TARGETS = ("draft", "placed", "cancelled", "missing", "hostile")


def mostly_valid(
    valid: dict[str, st.SearchStrategy[Any]], bad_values: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Every field valid but one to three, hostile or missing, so that each field gets its turn."""

    def build(bad: frozenset[str]) -> st.SearchStrategy[dict[str, Any]]:
        fields = {
            name: st.one_of(st.none(), bad_values.get(name, hostile)) if name in bad else s
            for name, s in valid.items()
        }
        return st.fixed_dictionaries(fields).map(lambda d: {k: v for k, v in d.items() if v is not None})

    return st.frozensets(st.sampled_from(sorted(valid)), min_size=1, max_size=3).flatmap(build)


FORM_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "customer_id": st.just("alice"),
    "currency": st.sampled_from(["EUR", "usd"]),
    "sku": st.sampled_from(["TEA-1", "TEA-2"]),
    "name": st.just("Tea"),
    "unit_price": st.sampled_from(["3.50", "1"]),
    "quantity": st.sampled_from(["1", "2"]),
    "reason": st.just("Changed my mind"),
    "expected_version": st.just(""),  # no check: a version is a guess here
    "command_id": st.uuids().map(str),
}
forms = mostly_valid(FORM_FIELDS, {})
extra_fields = st.dictionaries(st.text(max_size=12), hostile, max_size=2)
ascii_header = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)


class Targets:
    """Orders in each state, made again when a fuzzed command moved one on."""

    def __init__(self, browser: PageClient, ledger: Ledger) -> None:
        self.browser = browser
        self.ledger = ledger
        self.kept: dict[str, str] = {}

    async def order_id(self, kind: str, garbage: str) -> str:
        if kind == "missing":
            return str(uuid4())
        if kind == "hostile":
            return garbage
        order_id = self.kept.get(kind)
        status = order_id and await self.ledger.pool.fetchval(
            "SELECT status FROM order_read_model WHERE order_id = $1", order_id
        )
        if status != kind:
            make = {
                "draft": self.browser.draft,
                "placed": self.browser.placed,
                "cancelled": self.browser.cancelled,
            }
            order_id = self.kept[kind] = await make[kind]()
        assert order_id
        return order_id


async def path(route: Route, targets: Targets, data: st.DataObject) -> str:
    values = {}
    for name in route.parameters:
        # A URL past 64 KiB is refused by the HTTP client itself, before the app sees it.
        garbage = data.draw(hostile, label=name)[:8000]
        if name == "order_id":
            kind = data.draw(st.sampled_from(TARGETS), label="order")
            values[name] = await targets.order_id(kind, garbage)
        elif name == "sku":
            values[name] = data.draw(st.sampled_from(["TEA-1", "NOPE-9", garbage]), label="sku")
        else:
            values[name] = garbage
    return route.path.format(**{k: quote(v, safe="") for k, v in values.items()})


@pytest.fixture
def targets(browser: PageClient, ledger: Ledger) -> Targets:
    """One per test, shared by its examples."""
    return Targets(browser, ledger)


class Tally:
    def __init__(self) -> None:
        self.routes: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()

    def count(self, route: Route, status: int) -> None:
        self.routes[f"{route.method} {route.path}"] += 1
        self.statuses[status] += 1

    def record(self, what: str) -> None:
        record(f"fuzz: {what} examples run", sum(self.routes.values()))
        record(
            f"fuzz: {what} routes, examples each",
            ", ".join(f"{r} {n}" for r, n in sorted(self.routes.items())),
        )
        record(f"fuzz: {what} answers by status", dict(sorted(self.statuses.items())))


@pytest.fixture
async def bearer(ledger: Ledger) -> dict[str, str]:
    """An admin's token, who may send every API write (forgetting a customer too)."""
    return {"Authorization": "Bearer " + await token_for(ledger.pool, "ada-token", "admin")}


def sent_to_sign_in(response: Any) -> bool:
    """The answer to a visitor nobody knows: a 303 to /login, or htmx's HX-Redirect there."""
    where = response.headers.get("location") or response.headers.get("hx-redirect") or ""
    return str(where).startswith("/login?")


@pytest.fixture
def form_examples() -> Iterator[Tally]:
    tally = Tally()
    yield tally
    tally.record("form")


@pytest.fixture
def api_examples() -> Iterator[Tally]:
    tally = Tally()
    yield tally
    tally.record("API")


def assert_no_live_markup(sent: Any, text: str) -> None:
    if MARKUP in json.dumps(sent):
        assert MARKUP not in text, "input came back as live markup"


@settings(FUZZ, max_examples=FORM_EXAMPLES)
@given(data=st.data())
async def test_every_form_field_of_every_form_route(
    browser: PageClient, ledger: Ledger, targets: Targets, form_examples: Tally, data: st.DataObject
) -> None:
    routes = [r for r in unsafe_routes(browser.app) if not r.api]
    route = data.draw(st.sampled_from(routes), label="route")
    url = await path(route, targets, data)
    form = {**data.draw(extra_fields, label="extra"), **data.draw(forms, label="form")}
    headers = {"HX-Request": "true"} if data.draw(st.booleans(), label="htmx") else {}

    before = await ledger.event_count()
    headers |= await browser.csrf()
    response = await browser.client.request(
        route.method, url, data=form, headers=headers, follow_redirects=False
    )
    assert response.status_code < 500, (route.path, form, response.text[:300])
    assert not sent_to_sign_in(response), (route.path, "the admin's session was lost")
    if response.status_code >= 400:
        assert await ledger.event_count() == before, f"a refused {route.path} left an event"
    assert_no_live_markup(form, response.text)
    form_examples.count(route, response.status_code)
    if route.path == "/logout":  # it may have signed the admin out: sign in again
        browser.client.cookies.delete(SESSION_COOKIE)
        browser.client.cookies.set(SESSION_COOKIE, await session_for(ledger.pool, "ada", "admin"))


API_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "customer_id": st.just("alice"),
    "currency": st.just("EUR"),
    "sku": st.sampled_from(["TEA-1", "TEA-2"]),
    "name": st.just("Tea"),
    "unit_price": st.just({"amount": "3.50", "currency": "EUR"}),
    "quantity": st.sampled_from([1, 2]),
    "reason": st.just("Changed my mind"),
    "expected_version": st.none(),
}
json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), hostile
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
API_HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "unit_price": st.one_of(
        st.fixed_dictionaries({"amount": hostile, "currency": st.sampled_from(["EUR", "USD", "eur"])}),
        st.fixed_dictionaries({"amount": st.sampled_from(["3.50", "1"]), "currency": hostile}),
        json_values,
    ),
    "quantity": st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        json_values,
    ),
    "expected_version": st.one_of(st.integers(min_value=-(2**40), max_value=2**40), json_values),
}
api_bodies = st.one_of(
    mostly_valid(API_FIELDS, API_HOSTILE), mostly_valid(API_FIELDS, API_HOSTILE), json_values
)


@settings(FUZZ, max_examples=API_EXAMPLES)
@given(data=st.data())
async def test_every_field_of_every_api_write(
    browser: PageClient,
    ledger: Ledger,
    targets: Targets,
    api_examples: Tally,
    bearer: dict[str, str],
    data: st.DataObject,
) -> None:
    routes = [r for r in unsafe_routes(browser.app) if r.api]
    if not routes:
        return
    route = data.draw(st.sampled_from(routes), label="route")
    url = await path(route, targets, data)
    headers = data.draw(
        st.fixed_dictionaries({}, optional={"Idempotency-Key": ascii_header, "If-Match": ascii_header}),
        label="headers",
    )
    if data.draw(st.booleans(), label="raw body"):
        content = data.draw(st.one_of(st.binary(max_size=200), hostile.map(str.encode)), label="body")
        headers["Content-Type"] = data.draw(st.sampled_from(["application/json", "text/plain"]))
        body: Any = content.decode(errors="replace")
        request: dict[str, Any] = {"content": content}
    else:
        body = data.draw(api_bodies, label="body")
        request = {"json": body}

    before = await ledger.event_count()
    response = await browser.client.request(
        route.method, url, headers={**headers, **bearer}, follow_redirects=False, **request
    )
    assert response.status_code < 500, (route.path, body, response.text[:300])
    assert response.status_code not in {401, 403}, (route.path, response.text[:300])
    if response.status_code >= 400:
        assert await ledger.event_count() == before, f"a refused {route.path} left an event"
    assert_no_live_markup(body, response.text)
    api_examples.count(route, response.status_code)
