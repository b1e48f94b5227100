"""Workflows as a person sees them: the notifications page and its filters, a draft that expired meanwhile."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from store.log.event_store import EventStore
from tests.support.page_client import PageClient
from tests.support.pages import Page
from tests.support.waiting import eventually
from tests.support.workflows import cancel, draft, outbox_rows, place


async def test_notifications_are_listed_with_their_state_and_linked_both_ways(
    app_client: PageClient, pool: asyncpg.Pool, store: EventStore
) -> None:
    order_id = await draft(store, "bob")
    await place(store, order_id)
    await cancel(store, order_id, "Out of stock")
    rows = await eventually(lambda: _all_sent(pool, order_id, 2))
    events = await store.read_stream(order_id)

    page = await app_client.get("/notifications")
    assert page.status_code == 200
    assert '0 pending</a> · <a href="/notifications?state=sent">2 sent</a> · ' in page.text
    for row, cause in zip(rows, events[2:], strict=True):
        assert f'id="notification-{row["id"]}"' in page.text
        assert str(cause.event_id) in page.text
        assert f"/orders/{order_id}/history?version={cause.version}#event-{cause.version}" in page.text
    assert "Reason: Out of stock" in page.text

    by_cause = await app_client.get(f"/notifications?cause={events[2].event_id}", target="notifications")
    assert by_cause.text.count('<tr id="notification-') == 1
    assert "<html" not in by_cause.text

    order_page = await app_client.get(f"/orders/{order_id}")
    assert f'hx-get="/notifications?order={order_id}" hx-trigger="load"' in order_page.text
    # The timeline links each event to what it caused.
    for cause in events[2:]:
        link = f'<a href="/notifications?cause={cause.event_id}">a notification to the customer</a>'
        assert f"Caused {link}" in order_page.text
    section = await app_client.get(f"/notifications?order={order_id}", target="order-notifications")
    assert section.text.count('<li id="notification-') == 2
    assert 'caused by <a href="#event-3">v3</a>' in section.text
    assert 'caused by <a href="#event-4">v4</a>' in section.text
    assert 'hx-trigger="sse:appended delay:300ms">' in section.text  # all delivered: no polling


async def test_the_list_filters_by_delivery_state_customer_and_order(
    app_client: PageClient, pool: asyncpg.Pool, store: EventStore
) -> None:
    first, second = await draft(store, "dora"), await draft(store, "emil")
    for order_id in (first, second):
        await place(store, order_id)
    await eventually(lambda: _all_sent(pool, second, 1))
    await eventually(lambda: _all_sent(pool, first, 1))

    async def listed(query: str) -> int:
        response = await app_client.get(f"/notifications?{query}", target="notifications")
        assert response.status_code == 200
        return response.text.count('<tr id="notification-')

    assert await listed("") == 2
    assert await listed("state=sent") == 2
    assert await listed("state=failed") == 0
    assert await listed("customer=dora") == 1
    assert await listed(f"order={second}") == 1
    assert (await app_client.get("/notifications?order=nope")).status_code == 400
    assert (await app_client.get("/notifications?cause=nope")).status_code == 400
    page = await app_client.get("/notifications?state=failed")
    assert "No notifications match these filters." in page.text
    assert '<a href="/notifications">Notifications</a>' in page.text  # in the site's navigation


async def test_a_person_whose_draft_expired_meanwhile_sees_who_and_what_changed(
    app_client: PageClient, pool: asyncpg.Pool, store: EventStore
) -> None:
    app_client.register("carol")
    created = await app_client.post("/orders", {"customer_id": "carol", "currency": "EUR"}, htmx=True)
    order_id = created.headers["location"].rsplit("/", 1)[1]
    form = {"sku": "TEA-1", "name": "Green tea", "unit_price": "3.50", "quantity": "2"}
    added = await app_client.post(f"/orders/{order_id}/items", {**form, "expected_version": "1"}, htmx=True)
    assert added.status_code == 200

    async def expired() -> bool:
        return (await store.stream_version(order_id)) == 3

    await eventually(expired)  # the app's own workflows expire it after 1.5 s
    typed = {"sku": "CUP-1", "name": "Cup", "unit_price": "12.00", "quantity": "1"}
    response = await app_client.post(
        f"/orders/{order_id}/items", {**typed, "expected_version": "2"}, htmx=True
    )
    page = Page(response)
    assert page.status == 409
    assert "you saw version 2, it is now at version 3" in page.problems["general"]
    assert '<li>Version 3: Cancelled: expired <span class="muted">by system at ' in page.html
    assert '<span class="badge cancelled">cancelled</span>' in page.html

    timeline = page.html[page.html.index('id="timeline"') :]
    assert 'Caused <a href="#event-3">the draft-expiry cancellation, v3</a>' in timeline
    assert 'Caused by <a href="#event-2">the draft-expiry timer that judged v2 untouched</a>' in timeline
    expired_event = (await store.read_stream(order_id))[2]
    assert f'<a href="/notifications?cause={expired_event.event_id}">' in timeline

    async def notified() -> list[asyncpg.Record]:
        return [r for r in await outbox_rows(pool, order_id) if r["state"] == "sent"]

    (notification,) = await eventually(notified)
    assert notification["causation_id"] == str(expired_event.event_id)
    assert UUID(notification["correlation_id"]) == UUID(expired_event.metadata.correlation_id)


async def _all_sent(pool: asyncpg.Pool, order_id: str, count: int) -> list[asyncpg.Record] | None:
    rows = await outbox_rows(pool, order_id)
    return rows if len(rows) == count and all(r["state"] == "sent" for r in rows) else None
