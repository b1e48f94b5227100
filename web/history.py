"""Time travel: the order at a version or a moment, the timeline, diffs, and the audit export."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import ClientException
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Response, Stream, Template

from domain.diff import diff
from domain.errors import NotFound, VersionNotFound
from store.application import Orders
from web import forms
from web.access import ORDER_PAGE, READ_LOG, READ_ORDERS
from web.forms import FormError
from web.order_view import PLAY_SPEEDS, order_context, order_page, parse_order_id, render_order
from web.orders import FormProblem
from web.refusals import MALFORMED, status_of

MEDIA_TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


async def _version_asked(orders: Orders, order_id: str, version: str | None, at: str | None) -> int:
    """The version a history request asks for, by number or by moment."""
    if version is not None:
        return forms.parse_version(version)
    if at is None:
        raise FormError("Say which version to show: ?version=N or ?at=an ISO 8601 moment.")
    return await orders.version_at(order_id, forms.parse_moment(at))


async def _moment_problem(
    request: HTMXRequest, orders: Orders, order_id: str, at: str, error: FormError | NotFound
) -> Response[Any]:
    """A moment that cannot be shown: say so beside the moment field, on the latest version."""
    status = MALFORMED if isinstance(error, FormError) else status_of(error)
    if request.htmx and request.htmx.target != "order-main":
        if isinstance(error, FormError):
            raise ClientException(error.message)
        raise error
    problem = FormProblem("moment", error.message, "at", status)
    context = await order_context(orders, order_id, problem=problem, values={"at": at})
    return render_order(request, context, "_order_main.html", None if request.htmx else "order.html", status)


class HistoryController(Controller):
    path = "/orders"
    opt = READ_ORDERS

    @get("/{order_id:str}/history", opt=ORDER_PAGE)
    async def history(
        self,
        request: HTMXRequest,
        orders: NamedDependency[Orders],
        order_id: FromPath[str],
        version: FromQuery[str | None] = None,
        at: FromQuery[str | None] = None,
        play: FromQuery[str | None] = None,
    ) -> Response[Any]:
        stream = parse_order_id(order_id)
        speed = play if play in PLAY_SPEEDS else None
        try:
            shown = await _version_asked(orders, stream, version, at)
        except FormError as error:
            if at is None:
                raise ClientException(error.message) from None
            try:
                await orders.latest_version(stream)
            except NotFound:
                raise ClientException(error.message) from None
            return await _moment_problem(request, orders, stream, at, error)
        except VersionNotFound as error:
            return await _moment_problem(request, orders, stream, at or "", error)
        fragment, page = "_order_main.html", None if request.htmx else "order.html"
        if request.htmx and request.htmx.target != "order-main":
            fragment = "_snapshot.html"  # the slider swaps the snapshot only
        return await order_page(request, orders, stream, shown, fragment=fragment, page=page, play=speed)

    @get("/{order_id:str}/timeline", opt=ORDER_PAGE)
    async def show_timeline(
        self,
        request: HTMXRequest,
        orders: NamedDependency[Orders],
        order_id: FromPath[str],
        version: FromQuery[int | None] = None,
    ) -> Response[Any]:
        stream = parse_order_id(order_id)
        page = None if request.htmx else "timeline.html"
        shown = version if version and version > 0 else None
        return await order_page(request, orders, stream, shown, fragment="_timeline.html", page=page)

    @get("/{order_id:str}/events/{version:int}", opt=ORDER_PAGE)
    async def event_detail(
        self,
        request: HTMXRequest,
        orders: NamedDependency[Orders],
        order_id: FromPath[str],
        version: FromPath[int],
    ) -> Response[Any]:
        """One event: its metadata, its data as stored and the change it made."""
        if version < 1:
            raise ClientException(f"There is no version {version}: versions start at 1.")
        fragment, page = ("_event_detail.html", None) if request.htmx else ("_event_page.html", "event.html")
        return await order_page(
            request, orders, parse_order_id(order_id), version, fragment=fragment, page=page
        )

    @get("/{order_id:str}/diff")
    async def compare(
        self,
        request: HTMXRequest,
        orders: NamedDependency[Orders],
        order_id: FromPath[str],
        from_version: FromQuery[str] = "1",
        to_version: FromQuery[str | None] = None,
    ) -> Template:
        stream = parse_order_id(order_id)
        latest = await orders.latest_version(stream)
        try:
            start = forms.parse_version(from_version)
            end = forms.parse_version(to_version) if to_version else latest
        except FormError as error:
            raise ClientException(error.message) from None
        await orders.latest_version(stream, has=max(start, end))
        before = await orders.state(stream, min(start, end))
        after = await orders.state(stream, max(start, end))
        context: dict[str, Any] = {
            "change": diff(before, after),
            "order": after,
            "latest": latest,
            "currency": after.currency,
            "authors": await orders.authors(stream, min(start, end), max(start, end)),
        }
        return Template("_diff.html" if request.htmx else "diff.html", context=context)

    @get("/{order_id:str}/export")
    async def export_order(
        self, orders: NamedDependency[Orders], order_id: FromPath[str], format: FromQuery[str] = "ndjson"
    ) -> Stream:
        stream = parse_order_id(order_id)
        return await _export(orders, format, stream, f"order-{stream}")


async def _export(orders: Orders, fmt: str, stream: str | None, name: str) -> Stream:
    if fmt not in MEDIA_TYPES:
        raise ClientException(f"Exports come as format={' or format='.join(MEDIA_TYPES)}.")
    return Stream(
        await orders.export(fmt, stream),
        media_type=MEDIA_TYPES[fmt],
        headers={"content-disposition": f'attachment; filename="{name}.{fmt}"'},
    )


@get("/events/export", include_in_schema=False, opt=READ_LOG)
async def export_log(orders: NamedDependency[Orders], format: FromQuery[str] = "ndjson") -> Stream:
    return await _export(orders, format, None, "events")
