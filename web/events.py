"""The global event log: newest first, filterable, keyset paged, live on its first page."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ClientException
from litestar.params import FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template

from domain.access import MAX_ACCOUNT_NAME
from domain.order import EVENT_TYPES
from domain.rules import MAX_CUSTOMER_ID
from store.application import LogQuery, Orders
from store.log.event_store import RecordedEvent
from web import forms
from web.access import READ_LOG
from web.forms import FormError
from web.order_view import order_filter

PAGE_SIZE = 50


def _moment(raw: str | None) -> datetime | None:
    return forms.parse_moment(raw) if raw else None


class LogFilters:
    """What the event log is narrowed to, read alike by its page and its live stream (`filters`)."""

    def __init__(
        self,
        type: FromQuery[str | None] = None,
        order: FromQuery[str | None] = None,
        customer: FromQuery[str | None] = None,
        actor: FromQuery[str | None] = None,
    ) -> None:
        self.type_name = type if type in EVENT_TYPES else None
        self.stream = order_filter(order)
        self.customer = forms.filter_text(customer, MAX_CUSTOMER_ID)
        self.actor = forms.filter_text(actor, MAX_ACCOUNT_NAME)

    def wanted(self, recorded: RecordedEvent) -> bool:
        """Whether an event passes the filters (the customer's aside: it needs the read model)."""
        return (
            (self.type_name is None or recorded.type == self.type_name)
            and (self.stream is None or recorded.stream_id == self.stream)
            and (self.actor is None or recorded.metadata.actor == self.actor)
        )


class EventLogController(Controller):
    path = "/events"
    opt = READ_LOG
    dependencies: Mapping[str, Provide] = {"filters": Provide(LogFilters, sync_to_thread=False)}

    @get("/")
    async def event_log(
        self,
        request: HTMXRequest,
        orders: NamedDependency[Orders],
        filters: NamedDependency[LogFilters],
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
    ) -> Template:
        f = filters
        try:
            start, end = _moment(since), _moment(until)
        except FormError as error:
            raise ClientException(error.message) from None
        # The page shows only what is below the horizon, so the live stream that
        # starts there neither repeats nor misses an event. The horizon is read where the
        # page is (a replica's, with replicas), though the stream follows the primary.
        horizon = await orders.log_horizon()
        query = LogQuery(
            before, PAGE_SIZE + 1, f.type_name, f.stream, f.customer, start, end, horizon.tx_id + 1, f.actor
        )
        events = await orders.read_log(query)
        shown = {
            "type": f.type_name or "",
            "order": f.stream or "",
            "customer": f.customer or "",
            "since": since or "",
            "until": until or "",
            "actor": f.actor or "",
        }
        context: dict[str, Any] = {
            "events": events[:PAGE_SIZE],
            "next_before": events[PAGE_SIZE - 1].position if len(events) > PAGE_SIZE else None,
            "filters": shown,
            "types": sorted(EVENT_TYPES),
            "live": before is None and end is None,
            "since_tx": horizon.tx_id + 1,
        }
        if request.htmx and request.htmx.target == "event-log":
            return Template("_event_log.html", context=context)
        return Template("events.html", context=context)
