"""Customers for programs: /api/customers.

Personal fields are sent and shown in clear over the API (to whoever may see
them) and stored only sealed. An Idempotency-Key makes a write safe to retry
as for orders, but its answer is not kept (it would hold personal data in
clear): a retry is recognised by its command id and answers the customer as
they now are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID, uuid4, uuid5

from litestar import Controller, HttpMethod, Request, Response, get, post, put, route
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter

from domain.customer import ChangeCustomerDetails, ForgetCustomer, RegisterCustomer
from domain.rules import CUSTOMER_ID_PATTERN, MAX_CUSTOMER_ID
from store.application import CustomerView as Customer
from store.application import Envelope, Orders
from store.idempotency import IdempotencyKeys
from web.access import ADMINISTER, READ_LOG, READ_ORDERS, WHO_MAY, WRITE_ORDERS
from web.api.bodies import strict_body
from web.api.commands import IDEMPOTENCY_NAMESPACE, claim_key
from web.api.parameters import NEXT_AFTER, IdempotencyKey
from web.api.problems import responses
from web.api.schemas import (
    CustomerDetailsBody,
    CustomerPage,
    CustomerView,
    ForgetCustomerBody,
    RegisterCustomerBody,
)
from web.api.views import customer_view
from web.customers import listed

PathCustomerId = Annotated[
    str,
    PathParameter(
        min_length=1,
        max_length=MAX_CUSTOMER_ID,
        pattern=CUSTOMER_ID_PATTERN,
        description="The customer's id.",
    ),
]
WRITE_PROBLEMS = responses(400, 401, 403, 404, 409, 413, 422, 429, 503)
READ_PROBLEMS = responses(400, 401, 403, 404, 503)
OWN_ONLY = " A customer's token reaches its own customer only (another answers 404, as a missing one does)."


class CustomerApi(Controller):
    path = "/customers"
    tags = ("customers",)
    opt = READ_ORDERS  # the list declares READ_LOG, the writes WRITE_ORDERS or ADMINISTER

    @route(
        ["/", "/{customer_id:str}"], http_method=HttpMethod.OPTIONS, status_code=204, include_in_schema=False
    )
    async def allowed_methods(self, request: Request[Any, Any, Any]) -> Response[None]:
        """OPTIONS: Allow names every method of the path (Litestar 2.25 names only the first
        handler's; see web/api/orders.py). Named to come first, so Litestar adds none of its own."""
        template = request.scope.get("path_template")
        methods = next(r.methods for r in request.app.routes if template in (r.path, r.path_format))
        return Response(None, status_code=204, headers={"Allow": ", ".join(sorted(methods))})

    @get(
        "/",
        opt=READ_LOG,
        responses=responses(400, 401, 403, 503),
        summary="List customers, newest first",
        description=WHO_MAY["read_log"],
    )
    async def list_customers(
        self,
        orders: NamedDependency[Orders],
        prefix: Annotated[
            str | None,
            QueryParameter(min_length=1, max_length=MAX_CUSTOMER_ID, description="Customer ids starting so"),
        ] = None,
        after: Annotated[
            str | None, QueryParameter(min_length=1, max_length=MAX_CUSTOMER_ID, description=NEXT_AFTER)
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 25,
    ) -> CustomerPage:
        found, next_after = await listed(orders, after, limit, prefix)
        return CustomerPage([customer_view(c) for c in found], next_after)

    @post(
        "/",
        status_code=201,
        opt=WRITE_ORDERS,
        before_request=strict_body(RegisterCustomerBody),
        responses=WRITE_PROBLEMS,
        summary="Register a customer",
        description=WHO_MAY["write_orders"] + " A customer's token registers itself only.",
    )
    async def register_customer(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RegisterCustomerBody],
        orders: NamedDependency[Orders],
        keys: NamedDependency[IdempotencyKeys],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CustomerView]:
        command = RegisterCustomer(data.customer_id, data.name, data.email, data.address)

        async def run(command_id: UUID) -> Customer:
            return await orders.register_customer(command, Envelope(command_id))

        customer = await _write(request, keys, idempotency_key, "/api/customers", data, run)
        location = "/api/customers/" + quote(customer.customer_id, safe="")
        return Response(customer_view(customer), status_code=201, headers={"Location": location})

    @get(
        "/{customer_id:str}",
        responses=READ_PROBLEMS,
        summary="Get a customer",
        description=WHO_MAY["read_orders"] + OWN_ONLY,
    )
    async def get_customer(
        self, orders: NamedDependency[Orders], customer_id: PathCustomerId
    ) -> CustomerView:
        return customer_view(await orders.customer(customer_id))

    @put(
        "/{customer_id:str}",
        opt=WRITE_ORDERS,
        before_request=strict_body(CustomerDetailsBody),
        responses=WRITE_PROBLEMS,
        summary="Change a customer's details",
        description=WHO_MAY["write_orders"]
        + OWN_ONLY
        + " A forgotten customer's details cannot change (409).",
    )
    async def change_customer(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[CustomerDetailsBody],
        orders: NamedDependency[Orders],
        keys: NamedDependency[IdempotencyKeys],
        customer_id: PathCustomerId,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CustomerView]:
        command = ChangeCustomerDetails(customer_id, data.name, data.email, data.address)

        async def run(command_id: UUID) -> Customer:
            return await orders.change_customer(command, Envelope(command_id))

        customer = await _write(request, keys, idempotency_key, f"/api/customers/{customer_id}", data, run)
        return Response(customer_view(customer))

    @post(
        "/{customer_id:str}/forget",
        status_code=200,
        opt=ADMINISTER,
        before_request=strict_body(ForgetCustomerBody),
        responses=WRITE_PROBLEMS,
        summary="Forget a customer: delete their key, so their personal data reads erased everywhere",
        description=WHO_MAY["administer"] + " It cannot be undone. Forgetting a forgotten customer "
        "changes nothing and answers the same.",
    )
    async def forget_customer(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[ForgetCustomerBody],
        orders: NamedDependency[Orders],
        keys: NamedDependency[IdempotencyKeys],
        customer_id: PathCustomerId,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CustomerView]:
        command = ForgetCustomer(customer_id, data.reason)

        async def run(command_id: UUID) -> Customer:
            return await orders.forget_customer(command, Envelope(command_id))

        target = f"/api/customers/{customer_id}/forget"
        customer = await _write(request, keys, idempotency_key, target, data, run)
        return Response(customer_view(customer))


async def _write(
    request: Request[Any, Any, Any],
    keys: IdempotencyKeys,
    key: str | None,
    target: str,
    body: Any,
    run: Callable[[UUID], Awaitable[Customer]],
) -> Customer:
    """Run a customer command once per Idempotency-Key and request (none: a fresh command id)."""
    if not key:
        return await run(uuid4())
    claimed, _ = await claim_key(keys, key, request.method, target, body)
    return await run(uuid5(IDEMPOTENCY_NAMESPACE, f"{key}\n{claimed}"))
