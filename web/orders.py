"""HTML pages and form posts for orders: each URL serves a full page or, for htmx, its partial."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import msgspec
from litestar import Controller, MediaType, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Response, Template

from domain.access import Actor
from domain.errors import DomainError, NotFound
from domain.order import Command, Order, PlaceOrder
from domain.rules import MAX_CUSTOMER_ID
from store.application import Envelope, OrderQuery, Orders, StaleVersion
from store.read.read_model import OrderList
from web import forms
from web.access import ORDER_PAGE, READ_ORDERS, WRITE_ORDERS
from web.forms import Form, FormError
from web.order_view import (
    REVALIDATE,
    digest,
    latest_version,
    not_modified,
    order_context,
    order_page,
    parse_order_id,
    permissions,
    render_cache,
    render_fragment,
    render_order,
    respond,
)
from web.refusals import MALFORMED, status_of
from web.render_cache import prepare

STATUSES = ("draft", "placed", "cancelled")
MAIN, PAGE = "_order_main.html", "order.html"  # the order page's partial, and the page around it
LIST_MAIN, LIST_PAGE = "_orders_main.html", "orders.html"
PAGE_SIZE = 25


class FormProblem(msgspec.Struct, frozen=True):
    """A refused command, shown next to the form that sent it."""

    form: str
    message: str
    field: str | None = None
    status: int = 422
    stale: bool = False  # decided on an older version: the page lists what changed since
    kind: str = ""  # the refusal's name (CustomerNotRegistered: the form links to registering)


class PostedForm:
    """A form posted to an order's page, by one of the routes that change an order."""

    def __init__(
        self, request: HTMXRequest, orders: NamedDependency[Orders], order_id: FromPath[str]
    ) -> None:
        self.request, self.orders = request, orders
        self.order_id = parse_order_id(order_id)

    async def handle(self, form_name: str, build: Callable[[Form, str], Command]) -> Response[Any]:
        """Parse the form into a command, handle it, and answer with the order as it now is."""
        form: Form = dict(await self.request.form())
        problem: FormProblem | None = None
        try:
            command_id, expected_version = forms.envelope(form)
            command = build(form, self.order_id)
            # A form decided on an older version still goes through when nothing
            # since then touches what it changes (another SKU, say); else 409.
            envelope = Envelope(command_id, expected_version, merge=True, requested_at=_now())
            await self.orders.execute(command, envelope)
        except NotFound:
            raise
        except StaleVersion as error:
            problem = FormProblem(form_name, _stale_message(error), status=status_of(error), stale=True)
        except DomainError as error:
            problem = FormProblem(form_name, error.message, error.field, status_of(error))
        except FormError as error:
            problem = FormProblem(form_name, error.message, error.field, MALFORMED)
        if problem is None:
            if not self.request.htmx:
                return Redirect(f"/orders/{self.order_id}", status_code=303)
            # The order as it now is: the same fragment a GET gets, cached for the next one.
            return await order_page(self.request, self.orders, self.order_id, fragment=MAIN, page=None)
        context = await order_context(self.orders, self.order_id, values=form)
        if problem.form not in _visible_forms(context["order"]):
            problem = msgspec.structs.replace(problem, form="general")
        if problem.stale:
            seen = problem_version(form)
            changes = [e for e in context["entries"] if e.recorded.version > seen]
            context["changes"] = changes
            who = sorted({e.recorded.metadata.actor for e in changes})
            if who:
                message = f"{problem.message} Changed since by {', '.join(who)}."
                problem = msgspec.structs.replace(problem, message=message)
        context["problem"] = problem
        return render_order(self.request, context, MAIN, None if self.request.htmx else PAGE, problem.status)


class OrderController(Controller):
    path = "/orders"
    opt = READ_ORDERS  # the form posts declare WRITE_ORDERS

    @get("/")
    async def list_orders(
        self,
        request: HTMXRequest,
        orders: NamedDependency[Orders],
        customer: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        after: FromQuery[str | None] = None,
    ) -> Response[Any]:
        customer = (customer or "").strip()[:MAX_CUSTOMER_ID]
        status = status if status in STATUSES else None
        context = await list_context(orders, customer, status, parse_order_id(after) if after else None)
        context["summary"] = await orders.customer_summary(customer) if customer else None
        # The page shows a list of orders, each at a version: rendered once for each such list,
        # and a 304 while the same orders at the same versions would be shown.
        page: OrderList = context["page"]
        actor: Actor | None = request.scope.get("actor")  # type: ignore[assignment]
        table = bool(request.htmx and request.htmx.target == "orders-table")
        key = (
            LIST_MAIN,
            customer,
            status,
            page.next_after,
            tuple((o.order_id, o.version) for o in page.orders),
            msgspec.json.encode(context["summary"]),
            permissions(request),
            actor.customer_id if actor else None,
            request.app.state.templates_version,
        )
        headers = {**REVALIDATE, "etag": f'W/"list-{digest(request, (*key, table))}"'}
        if not_modified(request, headers["etag"]):
            return Response(None, status_code=304, headers=headers)
        if table:
            return Template("_orders_table.html", context=context, headers=headers)
        cache = render_cache(request)
        html = cache.get(key)
        if html is None:
            html = prepare(render_fragment(request, LIST_MAIN, {**context, "problem": None, "values": {}}))
            cache.put(key, html)
        return respond(request, html, LIST_PAGE, {}, headers)

    @post("/", opt=WRITE_ORDERS, media_type=MediaType.HTML)  # a refusal answers the page again
    async def create_order(self, request: HTMXRequest, orders: NamedDependency[Orders]) -> Any:
        form: Form = dict(await request.form())
        try:
            command_id, _ = forms.envelope(form)
            command = forms.create_order(form, str(uuid4()))
            result = await orders.execute(command, Envelope(command_id, requested_at=_now()))
        except (DomainError, FormError) as error:
            status = MALFORMED if isinstance(error, FormError) else status_of(error)
            context = await list_context(orders)
            kind = type(error).__name__
            context["problem"] = FormProblem("create", error.message, error.field, status, kind=kind)
            context["values"] = form
            html = prepare(render_fragment(request, LIST_MAIN, context))
            return respond(request, html, LIST_PAGE, {}, {}, status)
        return Redirect(f"/orders/{result.order.order_id}", status_code=303)

    @get("/{order_id:str}", opt=ORDER_PAGE)
    async def show_order(
        self,
        request: HTMXRequest,
        orders: NamedDependency[Orders],
        order_id: FromPath[str],
    ) -> Response[Any]:
        stream = parse_order_id(order_id)
        return await order_page(request, orders, stream, fragment=MAIN, page=None if request.htmx else PAGE)

    @get("/{order_id:str}/live-update", include_in_schema=False, opt=ORDER_PAGE)
    async def live_update(
        self,
        request: HTMXRequest,
        orders: NamedDependency[Orders],
        order_id: FromPath[str],
        newer_than: FromQuery[int] = 0,
        status: FromQuery[str] = "",
    ) -> Response[Any]:
        """Out-of-band pieces of the order page after someone else's change; forms keep their input."""
        stream = parse_order_id(order_id)
        latest = await latest_version(request, orders, stream)
        if latest <= newer_than:
            # An event this page already shows (often its own command's): nothing to swap.
            return Response(None, status_code=204)
        # Every page open on the order asks at once: the answer is rendered once per status seen.
        seen_status = status if status in STATUSES else ""
        return await order_page(
            request,
            orders,
            stream,
            fragment="_live_update.html",
            page=None,
            latest=latest,
            seen_status=seen_status,
        )

    # Each builds its PostedForm itself: as a dependency of its own it cost a signature
    # model's validation more on every post.
    @post("/{order_id:str}/items", opt=WRITE_ORDERS)
    async def add_item(
        self, request: HTMXRequest, orders: NamedDependency[Orders], order_id: FromPath[str]
    ) -> Response[Any]:
        return await PostedForm(request, orders, order_id).handle("add", forms.add_item)

    @post("/{order_id:str}/items/{sku:str}/remove", opt=WRITE_ORDERS)
    async def remove_item(
        self,
        request: HTMXRequest,
        orders: NamedDependency[Orders],
        order_id: FromPath[str],
        sku: FromPath[str],
    ) -> Response[Any]:
        return await PostedForm(request, orders, order_id).handle(
            f"remove:{sku}", lambda form, order: forms.remove_item(form, order, sku)
        )

    @post("/{order_id:str}/place", opt=WRITE_ORDERS)
    async def place(
        self, request: HTMXRequest, orders: NamedDependency[Orders], order_id: FromPath[str]
    ) -> Response[Any]:
        return await PostedForm(request, orders, order_id).handle(
            "place", lambda _form, order: PlaceOrder(order)
        )

    @post("/{order_id:str}/cancel", opt=WRITE_ORDERS)
    async def cancel(
        self, request: HTMXRequest, orders: NamedDependency[Orders], order_id: FromPath[str]
    ) -> Response[Any]:
        return await PostedForm(request, orders, order_id).handle("cancel", forms.cancel_order)


async def list_context(
    orders: Orders,
    customer: str = "",
    status: str | None = None,
    after: str | None = None,
    *,
    exact: bool = False,
) -> dict[str, Any]:
    """What a list of orders shows: a page of the read model and the filters that chose it."""
    page = await orders.list_orders(OrderQuery(customer or None, status, after, PAGE_SIZE, exact))
    return {"page": page, "customer": customer, "status": status, "statuses": STATUSES, "exact": exact}


def _now() -> datetime:
    return datetime.now(UTC)


def _visible_forms(order: Order) -> set[str]:
    """The forms the order page shows for this order, so a message has a place beside one."""
    if order.status == "draft":
        return {"add", "place", "cancel", *(f"remove:{line.sku}" for line in order.lines)}
    return {"cancel"} if order.status == "placed" else set()


def problem_version(form: Form) -> int:
    raw = form.get("expected_version", "0")
    return int(raw) if isinstance(raw, str) and raw.isdigit() else 0


def _stale_message(error: StaleVersion) -> str:
    return (
        f"This order changed while you were looking at it: you saw version {error.expected_version}, "
        f"it is now at version {error.actual_version}. Nothing was changed; check the order "
        "below and submit again."
    )
