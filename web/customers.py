"""Customers' pages: the list (staff), registering, a customer's details, orders and summary,
changing the details, and forgetting a customer (admins).

Personal fields reach these pages opened by the application layer, or ERASED
once the customer is forgotten; the pages are never cached (a customer's
details may change at any moment, and must vanish when they are forgotten).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from litestar import Controller, MediaType, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Response, Template

from domain.access import Actor, sees
from domain.customer import CustomerCommand, CustomerForgotten
from domain.errors import CustomerNotFound, DomainError, InvalidCustomerId
from domain.rules import MAX_CUSTOMER_ID, check_customer_id
from store.application import CustomerView, Envelope, Orders
from store.log.event_store import RecordedEvent
from web import forms
from web.access import ADMINISTER, READ_LOG, READ_ORDERS, WRITE_ORDERS
from web.forms import Form, FormError
from web.orders import FormProblem, list_context
from web.refusals import MALFORMED, status_of

PAGE_SIZE = 50
NO_STORE = {"cache-control": "no-store"}  # personal data: no copy kept by the browser or on the way


class CustomerController(Controller):
    path = "/customers"
    opt = READ_ORDERS  # a customer reaches their own page only (the application layer sees to it)

    @get("/", opt=READ_LOG)
    async def list_customers(
        self,
        request: HTMXRequest,
        orders: NamedDependency[Orders],
        customer: FromQuery[str | None] = None,
        after: FromQuery[str | None] = None,
    ) -> Template:
        prefix = forms.filter_text(customer, MAX_CUSTOMER_ID)
        found, next_after = await listed(orders, after or None, PAGE_SIZE, prefix)
        context = {"customers": found, "next_after": next_after, "customer": prefix or ""}
        partial = request.htmx and request.htmx.target == "customers-table"
        template = "_customers_table.html" if partial else "customers.html"
        return Template(template, context=context, headers=NO_STORE)

    @get("/new", opt=WRITE_ORDERS)
    async def new_customer(self) -> Template:
        return Template("customer_new.html", context={"problem": None, "values": {}}, headers=NO_STORE)

    @post("/", opt=WRITE_ORDERS, media_type=MediaType.HTML)  # a refusal answers the form again
    async def register(self, request: HTMXRequest, orders: NamedDependency[Orders]) -> Response[Any]:
        form: Form = dict(await request.form())
        try:
            command_id, _ = forms.envelope(form)
            view = await orders.register_customer(forms.register_customer(form), _envelope(command_id))
        except (DomainError, FormError) as error:
            problem = _problem("register", error)
            context = {"problem": problem, "values": form}
            return Template(
                "customer_new.html", context=context, status_code=problem.status, headers=NO_STORE
            )
        return Redirect(_page(view.customer_id), status_code=303)

    @get("/{customer_id:str}")
    async def customer(
        self,
        request: HTMXRequest,
        orders: NamedDependency[Orders],
        customer_id: FromPath[str],
        after: FromQuery[str | None] = None,
    ) -> Template:
        _check_id(customer_id)
        context = await customer_context(request, orders, customer_id, after or None)
        if request.htmx and request.htmx.target == "orders-table":
            return Template("_orders_table.html", context=context, headers=NO_STORE)
        return Template("customer.html", context=context, headers=NO_STORE)

    @post("/{customer_id:str}", opt=WRITE_ORDERS, media_type=MediaType.HTML)
    async def change_details(
        self, request: HTMXRequest, orders: NamedDependency[Orders], customer_id: FromPath[str]
    ) -> Response[Any]:
        return await _handle(request, orders, customer_id, "details", forms.change_customer)

    @post("/{customer_id:str}/forget", opt=ADMINISTER, media_type=MediaType.HTML)
    async def forget(
        self, request: HTMXRequest, orders: NamedDependency[Orders], customer_id: FromPath[str]
    ) -> Response[Any]:
        return await _handle(request, orders, customer_id, "forget", forms.forget_customer)


async def listed(
    orders: Orders, after: str | None, limit: int, prefix: str | None
) -> tuple[list[CustomerView], str | None]:
    """A page of customers; a NUL in the filter or cursor (PostgreSQL text holds none) finds nobody."""
    if "\x00" in (prefix or "") + (after or ""):
        return [], None
    return await orders.list_customers(after, limit, prefix)


async def _handle(
    request: HTMXRequest,
    orders: Orders,
    customer_id: str,
    form_name: str,
    build: Any,
) -> Response[Any]:
    """Parse the form into a command on the customer, handle it, and show the customer again."""
    _check_id(customer_id)
    form: Form = dict(await request.form())
    try:
        command_id, _ = forms.envelope(form)
        command: CustomerCommand = build(form, customer_id)
        if form_name == "forget":
            await orders.forget_customer(command, _envelope(command_id))  # type: ignore[arg-type]
        else:
            await orders.change_customer(command, _envelope(command_id))  # type: ignore[arg-type]
    except CustomerNotFound:
        raise
    except (DomainError, FormError) as error:
        problem = _problem(form_name, error)
        context = await customer_context(request, orders, customer_id, None)
        context.update(problem=problem, values=form)
        return Template("customer.html", context=context, status_code=problem.status, headers=NO_STORE)
    return Redirect(_page(customer_id), status_code=303)


async def customer_context(
    request: HTMXRequest, orders: Orders, customer_id: str, after: str | None
) -> dict[str, Any]:
    """The customer's details (None for one with orders from before registration), their
    summary and orders, and who forgot them; NotFound when there is nobody to show."""
    actor: Actor | None = request.scope.get("actor")  # type: ignore[assignment]
    details: CustomerView | None
    try:
        details = await orders.customer(customer_id)
    except CustomerNotFound:
        details = None
    summary = await orders.customer_summary(customer_id)
    # Orders from before customers were registered have a summary but no details.
    if details is None and (summary is None or (actor is not None and not sees(actor, customer_id))):
        raise NotFoundException(f"There is no customer {customer_id}.")
    context = await list_context(orders, customer_id, None, after, exact=True)
    forgotten = None
    if details is not None and details.forgotten:
        forgotten = _forgetting_event(await orders.customer_events(customer_id))
    context.update(
        customer_id=customer_id,
        details=details,
        summary=summary,
        forgotten=forgotten,
        problem=None,
        values={},
    )
    return context


def _forgetting_event(events: list[RecordedEvent]) -> RecordedEvent | None:
    return next((e for e in reversed(events) if isinstance(e.event, CustomerForgotten)), None)


def _problem(form_name: str, error: DomainError | FormError) -> FormProblem:
    status = MALFORMED if isinstance(error, FormError) else status_of(error)
    return FormProblem(form_name, error.message, error.field, status)


def _check_id(customer_id: str) -> None:
    try:
        check_customer_id(customer_id)
    except InvalidCustomerId as error:
        raise ClientException(error.message) from None


def _envelope(command_id: Any) -> Envelope:
    return Envelope(command_id, requested_at=datetime.now(UTC))


def _page(customer_id: str) -> str:
    return "/customers/" + quote(customer_id, safe="")
