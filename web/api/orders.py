"""The order commands and queries for programs: /api/orders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import uuid4

import msgspec
from litestar import Controller, HttpMethod, Request, Response, delete, get, post, route
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Operation, RequestBody
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter

from domain.errors import CurrencyMismatch, VersionNotFound
from domain.money import parse_amount
from domain.order import AddItem, CancelOrder, Command, CreateOrder, PlaceOrder, RemoveItem
from domain.rules import MAX_CUSTOMER_ID, MAX_QUANTITY, MAX_SKU, SKU_PATTERN
from store.application import OrderQuery, Orders
from web.access import READ_ORDERS, WHO_MAY, WRITE_ORDERS
from web.api import explain
from web.api.bodies import strict_body
from web.api.commands import Write, Writes, etag
from web.api.parameters import (
    ETAG,
    HOW_MANY,
    LOCATION,
    NEXT_AFTER,
    NOT_NULL,
    REPLAYED,
    IdempotencyKey,
    IfMatch,
    PathOrderId,
)
from web.api.problems import FieldError, invalid, refused, responses
from web.api.schemas import (
    UUID_PATTERN,
    AddItemBody,
    CancelOrderBody,
    CreateOrderBody,
    OrderPage,
    OrderView,
    PlaceOrderBody,
    Status,
    StreamPage,
    WriteResult,
)
from web.api.views import event_view, order_view, summary_view
from web.forms import FormError

# 429 only when the app limits writes (ORDERS_WRITE_LIMIT).
WRITE_PROBLEMS = responses(400, 401, 403, 404, 409, 412, 413, 422, 429, 503)
NOT_MODIFIED = ResponseSpec(None, description="Not Modified: the client's copy is current")


@dataclass
class OptionalBody(Operation):
    """An operation whose body may be left out (Litestar documents every body as required)."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False


def _order_write(
    route: type[post | delete],
    path: str,
    summary: str,
    check_body: Callable[[Request[Any, Any, Any]], Awaitable[None]] | None = None,
    operation_class: type[Operation] = Operation,
) -> HTTPRouteHandler:
    """A command on one order: 200 with the order and its new ETag, or a problem."""
    return route(
        path,
        status_code=200,
        before_request=check_body,
        dependencies={"order": Provide(OrderWrite, sync_to_thread=False)},
        response_headers=[ETAG, REPLAYED],
        responses=WRITE_PROBLEMS,
        summary=summary,
        description=WHO_MAY["write_orders"],
        operation_class=operation_class,
        opt=WRITE_ORDERS,
    )


def _order_read(path: str, summary: str, cached: bool = False) -> HTTPRouteHandler:
    """A query on one order; when `cached`, its answer has an ETag, and 304 for a current copy."""
    problems = responses(400, 401, 403, 404, 503)
    return get(
        path,
        response_headers=[ETAG] if cached else None,
        responses={**problems, 304: NOT_MODIFIED} if cached else problems,
        summary=summary,
        description=WHO_MAY["read_orders"],
    )


def _order_id(raw: str) -> str:
    try:
        return explain.order_id(raw)
    except FormError as error:
        raise invalid(400, [FieldError("order_id", error.message)]) from None


class OrderWrite:
    """A command on the order the path names, with the request's If-Match and Idempotency-Key."""

    def __init__(
        self,
        writes: NamedDependency[Writes],
        order_id: PathOrderId,
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> None:
        self.writes, self.order_id = writes, order_id
        self.if_match, self.idempotency_key = if_match, idempotency_key

    def stream(self) -> str:
        """The order's id, checked (in the handler, after its body and parameters are)."""
        return _order_id(self.order_id)

    async def run(
        self, command: Command, target: str, body: msgspec.Struct | None, expected_version: int | None
    ) -> Response[WriteResult]:
        write = Write(target, body, self.if_match, expected_version, self.idempotency_key)
        return await self.writes.run(command, write)


class OrderApi(Controller):
    path = "/orders"
    tags = ("orders",)
    opt = READ_ORDERS  # the writes declare WRITE_ORDERS

    @route("/", http_method=HttpMethod.OPTIONS, status_code=204, include_in_schema=False)
    async def allowed_methods(self, request: Request[Any, Any, Any]) -> Response[None]:
        """OPTIONS /api/orders: Allow names every method of the path.

        Litestar 2.25 registers a controller's handlers one at a time, in the order of their names,
        and answers OPTIONS with the methods of the first one only (POST). This handler is named to
        come first, so Litestar makes no OPTIONS handler of its own here.
        """
        template = request.scope.get("path_template")
        methods = next(r.methods for r in request.app.routes if r.path == template)
        return Response(None, status_code=204, headers={"Allow": ", ".join(sorted(methods))})

    @post(
        "/",
        status_code=201,
        before_request=strict_body(CreateOrderBody),
        response_headers=[ETAG, LOCATION, REPLAYED],
        responses=responses(400, 401, 403, 413, 422, 429, 503),
        summary="Create an order",
        description=WHO_MAY["write_orders"],
        opt=WRITE_ORDERS,
    )
    async def create_order(
        self,
        data: JSONBody[CreateOrderBody],
        writes: NamedDependency[Writes],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[WriteResult]:
        command = CreateOrder(str(uuid4()), data.customer_id, data.currency)
        write = Write("/api/orders", data, idempotency_key=idempotency_key, created=True)
        return await writes.run(command, write)

    @get(
        "/",
        responses=responses(400, 401, 403, 503),
        summary="List orders, newest first",
        description=WHO_MAY["read_orders"] + " A customer's list holds its own orders only.",
    )
    async def list_orders(
        self,
        orders: NamedDependency[Orders],
        customer: Annotated[str | None, QueryParameter(min_length=1, max_length=MAX_CUSTOMER_ID)] = None,
        status: Annotated[Status | None, QueryParameter(description="draft, placed or cancelled")] = None,
        after: Annotated[str | None, QueryParameter(pattern=UUID_PATTERN, description=NEXT_AFTER)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 25,
    ) -> OrderPage:
        after_id = _order_id(after) if after else None
        page = await orders.list_orders(OrderQuery(customer, status, after_id, limit, exact=True))
        return OrderPage([summary_view(row) for row in page.orders], page.next_after)

    @_order_read("/{order_id:str}", "Get an order, now or as it was at a version or a moment", cached=True)
    async def get_order(
        self,
        orders: NamedDependency[Orders],
        order_id: PathOrderId,
        version: Annotated[
            int | None,
            QueryParameter(
                ge=1, le=2**31 - 1, description="Show this version; with at, as it was known then"
            ),
        ] = None,
        at: Annotated[datetime | None, QueryParameter(description="Show the order as it was then")] = None,
        if_none_match: Annotated[
            str | None, HeaderParameter(name="If-None-Match", max_length=1000, schema_extra=NOT_NULL)
        ] = None,
    ) -> Response[OrderView]:
        stream = _order_id(order_id)
        moment = None if at is None else at if at.tzinfo else at.replace(tzinfo=UTC)
        if version is not None and moment is not None:
            # Both: the version, as it was known at that moment.
            reached = await orders.version_at(stream, moment)
            if version > reached:
                when = moment.isoformat()
                detail = f"Order {stream} was at version {reached} at {when}; version {version} came later."
                raise refused(VersionNotFound(detail))
            moment = None
        if version is None and moment is None and if_none_match:
            # The read model's row is never stale, so a current copy is known without a fold.
            summary = await orders.summary(stream)
            if _matches(if_none_match, summary.version):
                return _not_modified(summary.version)
        shown = await orders.order_at(stream, version, moment)
        if if_none_match and _matches(if_none_match, shown.order.version):
            return _not_modified(shown.order.version)
        view = order_view(shown.order, shown.latest)
        return Response(view, headers={"ETag": etag(shown.order.version)})

    @_order_write(post, "/{order_id:str}/items", "Add an item", strict_body(AddItemBody))
    async def add_item(
        self, data: JSONBody[AddItemBody], order: NamedDependency[OrderWrite]
    ) -> Response[WriteResult]:
        stream = order.stream()
        await _check_currency(order.writes.orders, stream, data.unit_price.currency)
        cents = parse_amount(data.unit_price.amount)
        command = AddItem(stream, data.sku, data.name, cents, data.quantity, data.note)
        return await order.run(command, f"/api/orders/{stream}/items", data, data.expected_version)

    @_order_write(delete, "/{order_id:str}/items/{sku:str}", "Remove a line, or part of its quantity")
    async def remove_item(
        self,
        order: NamedDependency[OrderWrite],
        sku: Annotated[str, PathParameter(min_length=1, max_length=MAX_SKU, pattern=SKU_PATTERN)],
        quantity: Annotated[int | None, QueryParameter(ge=1, le=MAX_QUANTITY, description=HOW_MANY)] = None,
    ) -> Response[WriteResult]:
        stream = order.stream()
        target = f"/api/orders/{stream}/items/{sku}" + ("" if quantity is None else f"?quantity={quantity}")
        return await order.run(RemoveItem(stream, sku, quantity), target, None, None)

    @_order_write(
        post,
        "/{order_id:str}/place",
        "Place a draft order",
        strict_body(PlaceOrderBody, optional=True),
        OptionalBody,
    )
    async def place_order(
        self, order: NamedDependency[OrderWrite], data: JSONBody[PlaceOrderBody | None] = None
    ) -> Response[WriteResult]:
        stream = order.stream()
        body = data or PlaceOrderBody()
        return await order.run(PlaceOrder(stream), f"/api/orders/{stream}/place", body, body.expected_version)

    @_order_write(
        post, "/{order_id:str}/cancel", "Cancel a draft or placed order", strict_body(CancelOrderBody)
    )
    async def cancel_order(
        self, data: JSONBody[CancelOrderBody], order: NamedDependency[OrderWrite]
    ) -> Response[WriteResult]:
        stream = order.stream()
        command = CancelOrder(stream, data.reason)
        return await order.run(command, f"/api/orders/{stream}/cancel", data, data.expected_version)

    @_order_read("/{order_id:str}/events", "An order's events, paged")
    async def order_events(
        self,
        orders: NamedDependency[Orders],
        order_id: PathOrderId,
        after: Annotated[
            int, QueryParameter(ge=0, le=2**31 - 1, description="The version to start after")
        ] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> StreamPage:
        stream = _order_id(order_id)
        events = await orders.event_page(stream, after, limit + 1)
        page = events[:limit]
        next_after = page[-1].version if page else after
        return StreamPage([event_view(e) for e in page], next_after, len(events) > limit)


def _not_modified(version: int) -> Response[Any]:
    return Response(None, status_code=304, headers={"ETag": etag(version)})


def _matches(if_none_match: str, version: int) -> bool:
    """Weak comparison, as If-None-Match asks: W/"3" and "3" both match version 3."""
    if if_none_match.strip() == "*":
        return True
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag(version) in tags


async def _check_currency(orders: Orders, order_id: str, currency: str) -> None:
    summary = await orders.summary(order_id)
    if summary.currency != currency:
        message = f"This order is in {summary.currency}; give the unit price in {summary.currency}."
        raise refused(CurrencyMismatch(message), "unit_price.currency")
