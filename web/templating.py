"""The Jinja environment of the pages: filters and globals, and how templates are loaded.

Outside development the templates are read and compiled once per process
(`auto_reload` off: no stat of a template file per render or include) and
their compiled code is kept on disk for the next process (a bytecode cache).
"""

from __future__ import annotations

from typing import Any

import msgspec
from jinja2 import FileSystemBytecodeCache, pass_context
from jinja2.runtime import Context
from litestar.plugins.jinja import JinjaTemplateEngine
from markupsafe import Markup

from store.log.event_store import RecordedEvent
from store.read.read_model import OrderList, OrderSummary
from store.workflows.expiry import is_expiry
from web.notifications import causality
from web.presentation import (
    TimelineEntry,
    allowed,
    customer_of_stream,
    erased_fields,
    is_erased,
    log_sentence,
    money,
    new_command_id,
    shown_data,
    signed_money,
    timestamp,
)
from web.render_cache import RenderCache


def configure_templates(engine: JinjaTemplateEngine, *, development: bool = False) -> None:
    environment = engine.engine
    environment.filters.update(
        money=money,
        timestamp=timestamp,
        signed_money=signed_money,
        log_sentence=log_sentence,
        shown_data=shown_data,
        customer_of_stream=customer_of_stream,
    )
    environment.tests.update(erased=is_erased)
    environment.globals.update(
        new_command_id=new_command_id,
        allowed=allowed,
        causality=causality,
        order_rows=order_rows,
        event_rows=event_rows,
        orders_table=orders_table,
        timeline_entry=timeline_entry,
    )
    environment.auto_reload = development
    if not development:
        environment.bytecode_cache = FileSystemBytecodeCache()


def _cached(context: Context, template: str, depends: tuple[Any, ...], variables: dict[str, Any]) -> str:
    """`template` with `variables`, rendered once per `depends` (and templates) by the render cache."""
    state: Any = context["request"].app.state
    cache: RenderCache = state.render_cache
    key = (template, *depends, state.templates_version)
    html = cache.get_text(key)
    if html is None:
        html = context.environment.get_template(template).render(variables)
        cache.put(key, html)
    return html


@pass_context
def orders_table(context: Context) -> Markup:
    """An order list's table, rendered once for each set of rows (an order at a version each) and filters."""
    page: OrderList = context["page"]
    summary = context.get("summary")
    depends = (
        context["customer"],
        context["status"],
        context["exact"],
        page.next_after,
        tuple((o.order_id, o.version) for o in page.orders),
        msgspec.json.encode(summary) if summary else None,
    )
    return Markup(_cached(context, "_orders_list.html", depends, context.get_all()))  # noqa: S704


@pass_context
def order_rows(context: Context, orders: list[OrderSummary]) -> Markup:
    """Rows of an order list, each rendered once per order and version (what it shows never changes)."""
    rows = (_cached(context, "_order_row.html", (o.order_id, o.version), {"o": o}) for o in orders)
    return Markup("".join(rows))  # noqa: S704 (rendered by Jinja, escaped there)


@pass_context
def event_rows(context: Context, events: list[RecordedEvent]) -> Markup:
    """Rows of the event log, each rendered once per event (an event never changes), and once
    more when its customer is forgotten (its personal fields then read ERASED)."""
    rows = (
        _cached(context, "_event_row.html", (e.position, erased_fields(e)), {"e": e, "fresh": False})
        for e in events
    )
    return Markup("".join(rows))  # noqa: S704 (rendered by Jinja, escaped there)


@pass_context
def timeline_entry(context: Context, entry: TimelineEntry, following: object, shown: int) -> Markup:
    """An event of the audit timeline, rendered once for each way it can look.

    It depends on the event (and the events before it, for its sentence), on whether it
    is before, at or after the version shown, on whether the next event is the draft
    expiry's (`causality`), and on whether the role may read the log.
    """
    request = context["request"]
    e = entry.recorded
    relation = (e.version > shown) - (e.version < shown)
    expiry_next = isinstance(following, TimelineEntry) and is_expiry(following.recorded)
    depends = (e.stream_id, e.version, relation, expiry_next, allowed(request, "read_log"))
    variables = {"entry": entry, "following": following, "shown": shown, "request": request}
    return Markup(_cached(context, "_timeline_entry.html", depends, variables))  # noqa: S704
