"""The global event log, newest first, filterable by type and order."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import ClientException
from litestar.params import FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template

from domain.order import EVENT_TYPES
from store.event_store import EventStore
from web import forms
from web.forms import FormError

PAGE_SIZE = 50


class EventLogController(Controller):
    path = "/events"

    @get("/")
    async def event_log(
        self,
        request: HTMXRequest,
        store: NamedDependency[EventStore],
        type: FromQuery[str | None] = None,
        order: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
    ) -> Template:
        type_name = type if type in EVENT_TYPES else None
        stream = None
        if order:
            try:
                stream = forms.order_id(order)
            except FormError as error:
                raise ClientException(error.message) from None
        events = await store.read_log(
            before=before, limit=PAGE_SIZE + 1, type_name=type_name, stream_id=stream
        )
        context = {
            "events": events[:PAGE_SIZE],
            "next_before": events[PAGE_SIZE - 1].position if len(events) > PAGE_SIZE else None,
            "type": type_name,
            "order": stream or "",
            "types": sorted(EVENT_TYPES),
        }
        if request.htmx and request.htmx.target == "event-log":
            return Template("_event_log.html", context=context)
        return Template("events.html", context=context)
