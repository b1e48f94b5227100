"""HTML pages and form posts for orders: each URL serves a full page or, for htmx, its partial."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Response, Template

from domain.errors import DomainError, OrderNotFound
from domain.order import Command, Order, PlaceOrder
from store.log.commands import StaleVersion, handle
from store.log.event_store import EventStore
from store.log.snapshots import Snapshots
from store.read.read_model import ReadModel, Reports
from web import forms
from web.forms import Form, FormError
from web.order_view import order_context, parse_order_id

STATUSES = ("draft", "placed", "cancelled")
PAGE_SIZE = 25


class Problem(msgspec.Struct, frozen=True):
    """A refused command, shown next to the form that sent it."""

    form: str
    message: str
    field: str | None = None
    status: int = 422


class PostedForm:
    """A form posted to an order's page (the `posted` dependency of the routes that change an order)."""

    def __init__(
        self,
        request: HTMXRequest,
        store: NamedDependency[EventStore],
        snapshots: NamedDependency[Snapshots],
        order_id: FromPath[str],
    ) -> None:
        self.request, self.store, self.snapshots = request, store, snapshots
        self.order_id = parse_order_id(order_id)

    async def handle(self, form_name: str, build: Callable[[Form, str], Command]) -> Response[Any]:
        """Parse the form into a command, handle it, and answer with the order as it now is."""
        form: Form = dict(await self.request.form())
        problem: Problem | None = None
        try:
            command_id, expected_version = forms.envelope(form)
            command = build(form, self.order_id)
            await handle(
                self.store,
                command,
                command_id=command_id,
                expected_version=expected_version,
                requested_at=_now(),
                snapshots=self.snapshots,
                # A form decided on an older version still goes through when nothing
                # since then touches what it changes (another SKU, say); else 409.
                merge=True,
            )
        except OrderNotFound as error:
            raise NotFoundException(error.message) from None
        except StaleVersion as error:
            problem = Problem(form_name, _stale_message(error), status=409)
        except DomainError as error:
            problem = Problem(form_name, error.message, error.field, 422)
        except FormError as error:
            problem = Problem(form_name, error.message, error.field, 400)
        if problem is None and not self.request.htmx:
            return Redirect(f"/orders/{self.order_id}", status_code=303)
        values = form if problem else {}
        context = await order_context(self.store, self.snapshots, self.order_id, values=values)
        if problem is not None:
            if problem.form not in _visible_forms(context["order"]):
                problem = msgspec.structs.replace(problem, form="general")
            if problem.status == 409:
                seen = problem_version(form)
                context["changes"] = [e for e in context["entries"] if e.recorded.version > seen]
        context["problem"] = problem
        return Template(
            "_order_main.html" if self.request.htmx else "order.html",
            context=context,
            status_code=problem.status if problem else 200,
        )


class OrderController(Controller):
    path = "/orders"
    dependencies: Mapping[str, Provide] = {"posted": Provide(PostedForm, sync_to_thread=False)}

    @get("/")
    async def list_orders(
        self,
        request: HTMXRequest,
        read_model: NamedDependency[ReadModel],
        reports: NamedDependency[Reports],
        customer: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        after: FromQuery[str | None] = None,
    ) -> Template:
        customer = (customer or "").strip()[:64]
        status = status if status in STATUSES else None
        after = parse_order_id(after) if after else None
        page = await read_model.list_orders(customer or None, status, after, PAGE_SIZE)
        summary = await reports.customer_summary(customer) if customer else None
        context = {
            "page": page,
            "customer": customer,
            "status": status,
            "statuses": STATUSES,
            "summary": summary,
        }
        if request.htmx and request.htmx.target == "orders-table":
            return Template("_orders_table.html", context=context)
        return Template("orders.html", context={**context, "problem": None, "values": {}})

    @post("/")
    async def create_order(
        self,
        request: HTMXRequest,
        store: NamedDependency[EventStore],
        snapshots: NamedDependency[Snapshots],
        read_model: NamedDependency[ReadModel],
    ) -> Any:
        form: Form = dict(await request.form())
        try:
            command_id, _ = forms.envelope(form)
            command = forms.create_order(form, str(uuid4()))
            result = await handle(
                store, command, command_id=command_id, requested_at=_now(), snapshots=snapshots
            )
        except (DomainError, FormError) as error:
            status = 400 if isinstance(error, FormError) else 422
            page = await read_model.list_orders(limit=PAGE_SIZE)
            context = {
                "page": page,
                "customer": "",
                "status": None,
                "statuses": STATUSES,
                "problem": Problem("create", error.message, error.field, status),
                "values": form,
            }
            return Template("orders.html", context=context, status_code=status)
        return Redirect(f"/orders/{result.order.order_id}", status_code=303)

    @get("/{order_id:str}")
    async def show_order(
        self,
        request: HTMXRequest,
        store: NamedDependency[EventStore],
        snapshots: NamedDependency[Snapshots],
        order_id: FromPath[str],
    ) -> Template:
        context = await order_context(store, snapshots, parse_order_id(order_id))
        return Template("_order_main.html" if request.htmx else "order.html", context=context)

    @get("/{order_id:str}/live-update", include_in_schema=False)
    async def live_update(
        self,
        store: NamedDependency[EventStore],
        snapshots: NamedDependency[Snapshots],
        order_id: FromPath[str],
        newer_than: FromQuery[int] = 0,
        status: FromQuery[str] = "",
    ) -> Response[Any]:
        """Out-of-band pieces of the order page after someone else's change; forms keep their input."""
        stream = parse_order_id(order_id)
        if await store.stream_version(stream) <= newer_than:
            # An event this page already shows (often its own command's): nothing to swap.
            return Response(None, status_code=204)
        context = await order_context(store, snapshots, stream)
        context["status_changed"] = context["order"].status != status
        return Template("_live_update.html", context=context)

    @post("/{order_id:str}/items")
    async def add_item(self, posted: NamedDependency[PostedForm]) -> Response[Any]:
        return await posted.handle("add", forms.add_item)

    @post("/{order_id:str}/items/{sku:str}/remove")
    async def remove_item(self, posted: NamedDependency[PostedForm], sku: FromPath[str]) -> Response[Any]:
        return await posted.handle(f"remove:{sku}", lambda form, order: forms.remove_item(form, order, sku))

    @post("/{order_id:str}/place")
    async def place(self, posted: NamedDependency[PostedForm]) -> Response[Any]:
        return await posted.handle("place", lambda _form, order: PlaceOrder(order))

    @post("/{order_id:str}/cancel")
    async def cancel(self, posted: NamedDependency[PostedForm]) -> Response[Any]:
        return await posted.handle("cancel", forms.cancel_order)


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
