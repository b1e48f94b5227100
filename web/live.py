"""Server-sent events: an order's new events, and the global log, as they are committed.

SSE ids are global positions, so a browser that reconnects with Last-Event-ID
resumes exactly after the last event it received. When the server stops, every
stream ends at once with a `retry:` hint, so the browser reconnects (to another
instance, through the load balancer) instead of holding the shutdown up.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, cast

from litestar import Controller, Litestar, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from domain.order import Event, evolve
from store.application import Orders
from store.log.event_store import RecordedEvent
from store.log.live import LiveFeed
from store.read.subscriptions import Checkpoint
from web.access import READ_LOG, READ_ORDERS
from web.events import LogFilters
from web.metrics import counted_stream
from web.order_view import parse_order_id
from web.presentation import describe

POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0
LOG_BATCH = 200  # LiveFeed.log_after's page: a full one means more may be waiting
# Milliseconds a browser waits before reconnecting a stream the shutdown ended; spread out,
# so the streams of a stopped instance do not all arrive at the next one at once.
RECONNECT_MS = (500, 2500)


def draining(app: Litestar) -> asyncio.Event:
    """Set when the server begins to stop (web/cli/serving): live streams end, leaders step down."""
    event: asyncio.Event | None = app.state.get("draining")
    if event is None:
        event = app.state.draining = asyncio.Event()
    return event


def _last_event_id(request: Request[Any, Any, Any]) -> int | None:
    raw = request.headers.get("last-event-id", "")
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


# What a stream found since it last looked, and whether there may be more at once.
Batch = tuple[list[ServerSentEventMessage], bool]


async def _follow(
    feed: LiveFeed, stopping: asyncio.Event, appended: Callable[[], Awaitable[Batch]]
) -> AsyncIterator[ServerSentEventMessage]:
    """What `appended` finds, looked for whenever the feed wakes or every POLL_SECONDS, with a
    keep-alive comment after KEEPALIVE_SECONDS of quiet (proxies close silent connections),
    until `stopping` is set: then a last message tells the browser when to reconnect."""
    yield ServerSentEventMessage(comment="connected", data=None)
    quiet = 0.0
    while not stopping.is_set():
        ticket = feed.ticket()
        messages, more = await appended()
        for message in messages:
            yield message
        if messages:
            quiet = 0.0
        if more:
            continue
        await _until_woken(feed, ticket, stopping)
        quiet += POLL_SECONDS
        if quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield ServerSentEventMessage(comment="keep-alive", data=None)
    yield ServerSentEventMessage(comment="server stopping", data=None, retry=random.randint(*RECONNECT_MS))


async def _until_woken(feed: LiveFeed, ticket: asyncio.Event, stopping: asyncio.Event) -> None:
    """Until the feed wakes, POLL_SECONDS pass, or the server stops."""
    waits = [asyncio.ensure_future(feed.wait(ticket, POLL_SECONDS)), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


class Live:
    """What every live stream has: the feed, the orders, where the browser left off (Last-Event-ID)
    and the templates its messages are written with."""

    def __init__(
        self,
        request: Request[Any, Any, Any],
        feed: NamedDependency[LiveFeed],
        orders: NamedDependency[Orders],
    ) -> None:
        templates = request.app.template_engine
        assert templates is not None
        self.feed, self.orders, self.templates = feed, orders, templates
        self.resume = _last_event_id(request)
        self.stopping = draining(request.app)

    def appended(self, event: RecordedEvent, template: str, /, **context: Any) -> ServerSentEventMessage:
        """The message that `event` is appended: `template` rendered with `context`, its id the position."""
        html = self.templates.get_template(template).render(**context)
        return ServerSentEventMessage(data=html, event="appended", id=event.position)

    def follow(self, appended: Callable[[], Awaitable[Batch]]) -> ServerSentEvent:
        return ServerSentEvent(counted_stream(_follow(self.feed, self.stopping, appended)))


class LiveController(Controller):
    dependencies: Mapping[str, Provide] = {"live": Provide(Live, sync_to_thread=False)}

    @get("/orders/{order_id:str}/live", opt=READ_ORDERS)
    async def order_live(
        self, live: NamedDependency[Live], order_id: FromPath[str], version: FromQuery[int | None] = None
    ) -> ServerSentEvent:
        stream, feed, orders, resume = parse_order_id(order_id), live.feed, live.orders, live.resume
        start = await feed.version_of(stream, resume) if resume is not None else None
        if start is None:
            start = version if version is not None else await orders.latest_version(stream)
        seen, state = start, await orders.state(stream, start)

        async def appended() -> Batch:
            nonlocal seen, state
            messages = []
            for recorded in await feed.stream_after(stream, seen):
                event = cast(Event, recorded.event)  # an order stream's
                sentence = describe(event, state)
                state, seen = evolve(state, event), recorded.version
                notice = live.appended(recorded, "_live_notice.html", recorded=recorded, sentence=sentence)
                messages.append(notice)
            return messages, False

        return live.follow(appended)

    @get("/events/live", opt=READ_LOG, dependencies={"filters": Provide(LogFilters, sync_to_thread=False)})
    async def log_live(
        self,
        live: NamedDependency[Live],
        filters: NamedDependency[LogFilters],
        horizon: FromQuery[int | None] = None,
    ) -> ServerSentEvent:
        feed, resume, customer = live.feed, live.resume, filters.customer
        checkpoint = await feed.checkpoint_of(resume) if resume is not None else None
        if checkpoint is None:
            checkpoint = Checkpoint(horizon - 1, 2**63 - 1) if horizon else await feed.horizon()
        customers_orders = await live.orders.order_ids_of(customer) if customer else None

        def wanted(recorded: RecordedEvent) -> bool:
            if customers_orders is not None:
                event = recorded.event
                if recorded.type == "OrderCreated" and getattr(event, "customer_id", None) == customer:
                    customers_orders.add(recorded.stream_id)
                if recorded.stream_id not in customers_orders:
                    return False
            return filters.wanted(recorded)

        after = checkpoint

        async def appended() -> Batch:
            nonlocal after
            batch = await feed.log_after(after)
            opened = await live.orders.opened_events([recorded for recorded, _ in batch])
            messages = []
            for recorded, (_, at) in zip(opened, batch, strict=True):
                after = at
                if wanted(recorded):
                    messages.append(live.appended(recorded, "_event_row.html", e=recorded, fresh=True))
            return messages, len(batch) == LOG_BATCH

        return live.follow(appended)
