"""Notifications to customers with their delivery state, and cause-and-effect links for the timeline."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import ClientException
from litestar.params import FromQuery, QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template

from domain.rules import MAX_CUSTOMER_ID
from store.application import NotificationQuery, Orders
from store.workflows.expiry import is_expiry
from store.workflows.outbox import NOTIFIED_EVENTS, STATES
from web import forms
from web.access import READ_LOG
from web.order_view import order_filter
from web.presentation import TimelineEntry

PAGE_SIZE = 50
# While something is still on its way, the list fetches itself again this often.
REFRESH = "every 2s"
LIST = "notifications"
ORDER_SECTION = "order-notifications"


class CauseLink(msgspec.Struct, frozen=True):
    """One link of the timeline: what caused an event, or what it caused."""

    relation: str
    text: str
    href: str | None = None


def causality(entry: TimelineEntry, following: object = None) -> list[CauseLink]:
    """What caused `entry` beyond a person's command, and what it caused.

    `following` is the next entry of the timeline (anything else when there is none).
    """
    e = entry.recorded
    links = []
    if is_expiry(e):
        links.append(
            CauseLink(
                "Caused by",
                f"the draft-expiry timer that judged v{e.version - 1} untouched",
                f"#event-{e.version - 1}",
            )
        )
    elif e.metadata.causation_id:
        links.append(CauseLink("Caused by", e.metadata.causation_id))
    if isinstance(following, TimelineEntry) and is_expiry(following.recorded):
        n = following.recorded.version
        links.append(CauseLink("Caused", f"the draft-expiry cancellation, v{n}", f"#event-{n}"))
    if e.type in NOTIFIED_EVENTS:
        links.append(
            CauseLink("Caused", "a notification to the customer", f"/notifications?cause={e.event_id}")
        )
    return links


def _cause(raw: str | None) -> UUID | None:
    if not raw or not raw.strip():
        return None
    try:
        return UUID(raw.strip())
    except ValueError:
        raise ClientException(f"“{raw[:80]}” is not an event id.") from None


class NotificationController(Controller):
    path = "/notifications"
    opt = READ_LOG

    @get("/")
    async def notifications(
        self,
        request: HTMXRequest,
        orders: NamedDependency[Orders],
        delivery: Annotated[str | None, QueryParameter(name="state")] = None,
        order: FromQuery[str | None] = None,
        cause: FromQuery[str | None] = None,
        customer: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
    ) -> Template:
        # "failed" is what a parked message was called before parking (migration 015): old links still work.
        delivery = "parked" if delivery == "failed" else delivery
        state = delivery if delivery in STATES else None
        customer = forms.filter_text(customer, MAX_CUSTOMER_ID)
        order_id = order_filter(order)
        cause_id = _cause(cause)
        query = NotificationQuery(state, order_id, cause_id, customer, before, PAGE_SIZE)
        page, awaited = await orders.notifications(query)
        filters = {
            "state": state or "",
            "order": order_id or "",
            "cause": str(cause_id or ""),
            "customer": customer or "",
        }
        live = before is None and (awaited > 0 or any(n.state == "pending" for n in page.notifications))
        target = request.htmx.target if request.htmx else None
        context = {
            "notifications": page.notifications,
            "next_before": page.next_before,
            "counts": page.counts,
            "filters": filters,
            "states": STATES,
            "awaited": awaited,
            "refresh": REFRESH if live else None,
            # The order page shows its notifications in a short list of its own.
            "on_order_page": target == ORDER_SECTION and order_id is not None,
        }
        if target in (LIST, ORDER_SECTION):
            partial = "_order_notifications.html" if context["on_order_page"] else "_notifications.html"
            return Template(partial, context=context)
        return Template("notifications.html", context=context)
