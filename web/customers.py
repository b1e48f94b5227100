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
from store.read.read_model import ReadModel, Reports
from web.orders import PAGE_SIZE, STATUSES


class CustomerController(Controller):
    path = "/customers"

    @get("/{customer_id:str}")
    async def customer(
        self,
        request: HTMXRequest,
        read_model: NamedDependency[ReadModel],
        reports: NamedDependency[Reports],
        customer_id: FromPath[str],
        after: FromQuery[str | None] = None,
    ) -> Template:
        try:
            check_customer_id(customer_id)
        except InvalidCustomerId as error:
            raise ClientException(error.message) from None
        page = await read_model.list_orders(customer_id, None, after or None, PAGE_SIZE, exact=True)
        summary = await reports.customer_summary(customer_id)
        if summary is None and not page.orders:
            raise NotFoundException(f"There are no orders for customer {customer_id}.")
        context = {
            "customer_id": customer_id,
            "summary": summary,
            "page": page,
            "customer": customer_id,
            "status": None,
            "statuses": STATUSES,
            "exact": True,
        }
        if request.htmx and request.htmx.target == "orders-table":
            return Template("_orders_table.html", context=context)
        return Template("customer.html", context=context)
