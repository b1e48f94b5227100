"""Schemathesis against /schema/openapi.json: a real uvicorn server on its own PostgreSQL database.

Every operation gets generated requests, valid and invalid, a bounded number
each, and every check runs: every answer must be documented and conform to its
schema, none may be a 5xx, invalid requests must be refused and valid ones
never refused as malformed or invalid (400, 422). Valid requests are pointed at
seeded orders most of the time, so the commands also run against orders that
exist, in every state. The project's schemathesis.toml, which the command line
reads too, says what the document cannot: a valid If-Match may get 412, and
each request carries its own Idempotency-Key. Every call carries a clerk's
token (who may use every operation), as a program would; the `ignored_auth`
check also sends some without it, or with a wrong one, and wants the 401.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import chdir

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.support.accounts import token_on
from tests.support.databases import fresh_database_sync
from tests.support.servers import ROOT, uvicorn_server

# Orders the server holds before the run: an empty draft, a draft with lines, placed, cancelled.
SEEDED: list[str] = []
# The clerk's token every call sends.
AUTHORIZATION: dict[str, str] = {}


def _seed(base: str) -> list[str]:
    ids = []
    with httpx.Client(base_url=base, headers=AUTHORIZATION) as http:
        seed = {"customer_id": "seed", "name": "Seed", "email": "seed@example.org", "address": "1 Seed Row"}
        registered = http.post("/api/customers", json=seed)
        assert registered.status_code == 201, registered.text
        for steps in ([], ["add"], ["add", "place"], ["add", "cancel"]):
            created = http.post("/api/orders", json={"customer_id": "seed", "currency": "EUR"})
            assert created.status_code == 201, created.text
            order_id = created.json()["order"]["order_id"]
            for step in steps:
                if step == "add":
                    item = {
                        "sku": "TEA-1",
                        "name": "Tea",
                        "unit_price": {"amount": "3.50", "currency": "EUR"},
                    }
                    done = http.post(f"/api/orders/{order_id}/items", json={**item, "quantity": 2})
                elif step == "place":
                    done = http.post(f"/api/orders/{order_id}/place")
                else:
                    done = http.post(f"/api/orders/{order_id}/cancel", json={"reason": "Seeded"})
                assert done.status_code == 200, done.text
            ids.append(order_id)
    return ids


@pytest.fixture(scope="module")
def api_server(server_url: str, template_database: str) -> Iterator[str]:
    with (
        fresh_database_sync(server_url, "orders_api", template_database) as url,
        uvicorn_server(url) as base,
    ):
        AUTHORIZATION["Authorization"] = "Bearer " + token_on(url, "till", "clerk")
        SEEDED[:] = _seed(base)
        yield base


@pytest.fixture(scope="module")
def api_schema(api_server: str) -> OpenApiSchema:
    with chdir(ROOT):  # the file names its hooks relative to the project's folder
        config = SchemathesisConfig.from_path(ROOT / "schemathesis.toml")
    return schemathesis.openapi.from_url(f"{api_server}/schema/openapi.json", config=config)


OPERATIONS = [
    ("POST", "/api/orders"),
    ("GET", "/api/orders"),
    ("GET", "/api/orders/{order_id}"),
    ("POST", "/api/orders/{order_id}/items"),
    ("DELETE", "/api/orders/{order_id}/items/{sku}"),
    ("POST", "/api/orders/{order_id}/place"),
    ("POST", "/api/orders/{order_id}/cancel"),
    ("GET", "/api/orders/{order_id}/events"),
    ("GET", "/api/events"),
    ("GET", "/api/customers"),
    ("POST", "/api/customers"),
    ("GET", "/api/customers/{customer_id}"),
    ("PUT", "/api/customers/{customer_id}"),
    ("POST", "/api/customers/{customer_id}/forget"),
]


def test_the_document_is_the_api_alone(api_schema: OpenApiSchema) -> None:
    documented = {
        (method.upper(), path) for path, item in api_schema.raw_schema["paths"].items() for method in item
    }
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_conforms_to_its_schema(
    api_schema: OpenApiSchema, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    # The token is fixed, as `-H` fixes it on the command line: negative cases mangle the request,
    # not the credential (ignored_auth sends the requests without it, and with a wrong one).
    @given(case=operation.as_strategy(generation_mode=mode, headers=AUTHORIZATION))
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def call(case: schemathesis.Case) -> None:
        order_id = case.path_parameters.get("order_id") if case.path_parameters else None
        if mode is GenerationMode.POSITIVE and isinstance(order_id, str) and _is_uuid(order_id):
            # A valid id is almost never an order's; most of the time, use a seeded one.
            pick = uuid.UUID(order_id).int % (len(SEEDED) + 1)
            if pick < len(SEEDED):
                case.path_parameters["order_id"] = SEEDED[pick]
                if isinstance(case.body, dict) and isinstance(case.body.get("unit_price"), dict):
                    case.body["unit_price"]["currency"] = "EUR"  # the seeded orders' currency
        if mode is GenerationMode.POSITIVE and path == "/api/orders" and isinstance(case.body, dict):
            # An order is for a registered customer (422 otherwise, which the document cannot state).
            case.body["customer_id"] = "seed"
        case.call_and_validate(headers=AUTHORIZATION)

    call()


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
