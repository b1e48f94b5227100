"""Requests made as one visitor of the app: nobody, a customer, a viewer, a clerk, an admin.

A page visitor carries a session cookie (and the CSRF cookie and header on
writes), an API visitor a bearer token. `first_answer` reads only the status
and headers of an answer, so that an endless stream (server-sent events) can
be asked too: the in-process test client would wait for its end.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlsplit
from uuid import uuid4

import anyio
import asyncpg
import httpx
from litestar.testing import AsyncTestClient

from domain.order import AddItem, CreateOrder
from store.application import Envelope, Orders
from tests.support.accounts import session_for, token_for
from tests.support.customers import app_master, ensure_customer
from web.access import SESSION_COOKIE

ROLES = ("anonymous", "customer", "viewer", "clerk", "admin")


class Visitor:
    """One role's credentials: a session cookie for the pages, a token for the API."""

    def __init__(self, role: str, session: str | None, token: str | None, csrf: str) -> None:
        self.role, self.session, self.token, self.csrf = role, session, token, csrf

    def headers(self, url: str, method: str) -> dict[str, str]:
        if url.startswith("/api"):
            return {"Authorization": f"Bearer {self.token}"} if self.token else {}
        cookies = [f"csrftoken={self.csrf}"] + ([f"{SESSION_COOKIE}={self.session}"] if self.session else [])
        headers = {"Cookie": "; ".join(cookies)}
        if method not in ("GET", "HEAD"):
            headers["x-csrftoken"] = self.csrf
        return headers

    def request(
        self, method: str, url: str, form: dict[str, str] | None, body: Any
    ) -> tuple[dict[str, str], bytes]:
        """The headers and content of a request: a JSON `body`, else the fields of `form`, else none."""
        headers = self.headers(url, method)
        if body is not None:
            headers["Content-Type"] = "application/json"
            return headers, json.dumps(body).encode()
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return headers, urlencode(form).encode()
        return headers, b""


async def visitors(
    client: AsyncTestClient[Any], pool: asyncpg.Pool, customer_id: str, prefix: str = "sweep"
) -> dict[str, Visitor]:
    """A visitor of each role; the customer is bound to `customer_id`."""
    client.cookies.clear()
    await client.get("/login")
    csrf = client.cookies["csrftoken"]
    client.cookies.clear()
    found = {"anonymous": Visitor("anonymous", None, None, csrf)}
    for role in ROLES[1:]:
        bound = customer_id if role == "customer" else None
        name = f"{prefix}-{role}"
        session = await session_for(pool, name, role, bound)
        token = await token_for(pool, f"{name}-token", role, bound)
        found[role] = Visitor(role, session, token, csrf)
    return found


async def ask(
    client: AsyncTestClient[Any], visitor: Visitor, method: str, url: str, **payload: Any
) -> httpx.Response:
    """The whole answer to one request as `visitor` (the client's own cookies left out);
    `payload` is the request's `form` or JSON `body`, if any."""
    client.cookies.clear()
    headers, content = visitor.request(method, url, payload.get("form"), payload.get("body"))
    return await client.request(method, url, content=content, headers=headers, follow_redirects=False)


async def first_answer(
    client: AsyncTestClient[Any], visitor: Visitor, method: str, url: str, **payload: Any
) -> tuple[int, dict[str, str]]:
    """The status and headers of the answer, without waiting for its body to end (as `ask`)."""
    headers, content = visitor.request(method, url, payload.get("form"), payload.get("body"))
    parts = urlsplit(url)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver.local")]
        + [(key.lower().encode(), value.encode()) for key, value in headers.items()]
        + [(b"content-length", str(len(content)).encode())],
        "client": ("testclient", 50000),
        "server": ("testserver.local", 80),
        "state": {},
        "extensions": {},
    }
    app = client.app
    # The app runs on the test client's own event loop (its portal), with its pool.
    return await anyio.to_thread.run_sync(client.blocking_portal.call, _start_of, app, scope, content)


async def _start_of(app: Any, scope: dict[str, Any], content: bytes) -> tuple[int, dict[str, str]]:
    started: dict[str, Any] = {}
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": content, "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    started["status"] = message["status"]
                    started["headers"] = {k.decode().lower(): v.decode() for k, v in message["headers"]}
                    group.cancel_scope.cancel()

            group.start_soon(app, scope, receive, send)
    return started["status"], started["headers"]


async def draft_of(pool: asyncpg.Pool, customer_id: str, *, items: int = 1) -> str:
    """A new draft order of `customer_id` holding TEA-1 (and more lines), written by the service."""
    orders = Orders(pool, master=app_master())
    await ensure_customer(orders, customer_id)
    order_id = str(uuid4())
    await orders.execute(CreateOrder(order_id, customer_id, "EUR"), Envelope(uuid4()))
    for n in range(items):
        sku = "TEA-1" if n == 0 else f"TEA-{n + 1}"
        await orders.execute(AddItem(order_id, sku, "Green tea", 350, 2), Envelope(uuid4()))
    return order_id


async def written(pool: asyncpg.Pool) -> tuple[Any, ...]:
    """What a write would change: events, handled commands, read-model rows and their versions."""
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM commands),"
        " (SELECT count(*) FROM order_read_model), (SELECT coalesce(sum(version), 0) FROM order_read_model)"
    )
    assert row is not None
    return tuple(row)
