"""A customer's page: the summary kept by its subscription, and the customer's orders."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template

from domain.errors import InvalidCustomerId
from domain.rules import check_customer_id
from store.application import Orders
from web.access import READ_ORDERS
from web.orders import list_context


class CustomerController(Controller):
    path = "/customers"
    opt = READ_ORDERS  # a customer reaches their own page only (the application layer sees to it)

    @get("/{customer_id:str}")
    async def customer(
        self,
        request: HTMXRequest,
        orders: NamedDependency[Orders],
        customer_id: FromPath[str],
        after: FromQuery[str | None] = None,
    ) -> Template:
        try:
            check_customer_id(customer_id)
        except InvalidCustomerId as error:
            raise ClientException(error.message) from None
        context = await list_context(orders, customer_id, None, after or None, exact=True)
        context["summary"] = await orders.customer_summary(customer_id)
        if context["summary"] is None and not context["page"].orders:
            raise NotFoundException(f"There are no orders for customer {customer_id}.")
        context["customer_id"] = customer_id
        if request.htmx and request.htmx.target == "orders-table":
            return Template("_orders_table.html", context=context)
        return Template("customer.html", context=context)
