"""The OpenAPI document at /schema shows the limits and the answers, and its UI runs under the CSP."""

from __future__ import annotations

import re
from typing import Any

import pytest

from domain.errors import InvalidInput
from domain.rules import check_customer_id
from tests.support.api import Api

pytestmark = pytest.mark.asyncio(loop_scope="module")

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>", re.IGNORECASE)

WRITES = [
    ("/api/orders/{order_id}/items", "post"),
    ("/api/orders/{order_id}/items/{sku}", "delete"),
    ("/api/orders/{order_id}/place", "post"),
    ("/api/orders/{order_id}/cancel", "post"),
]


@pytest.fixture
async def document(module_api: Api) -> dict[str, Any]:
    response = await module_api.client.get("/schema/openapi.json")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


async def test_bodies_show_their_limits(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    item = schemas["AddItemBody"]["properties"]
    assert (item["quantity"]["minimum"], item["quantity"]["maximum"]) == (1, 999)
    assert (item["name"]["minLength"], item["name"]["maxLength"]) == (1, 200)
    assert item["sku"]["pattern"] == "^[A-Za-z0-9._-]{1,64}$"
    assert item["note"]["maxLength"] == 200
    assert item["expected_version"]["minimum"] == 0
    money = schemas["MoneyIn"]["properties"]
    assert re.fullmatch(money["amount"]["pattern"], "3.50")
    assert not re.fullmatch(money["amount"]["pattern"], "1.234")
    assert money["amount"]["type"] == "string"
    assert {"EUR", "USD", "GBP"} <= set(money["currency"]["enum"])
    assert schemas["CancelOrderBody"]["properties"]["reason"]["maxLength"] == 500
    assert schemas["CreateOrderBody"]["properties"]["customer_id"]["maxLength"] == 64
    assert schemas["Money"]["properties"]["amount"]["type"] == "string"


async def test_problems_are_documented_as_problem_details(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert "errors" in problem["properties"]
    for path, method in WRITES:
        answers = document["paths"][path][method]["responses"]
        assert {"200", "400", "404", "409", "412", "413", "422"} <= set(answers)
        assert list(answers["412"]["content"]) == ["application/problem+json"]
        assert "ETag" in answers["200"]["headers"]
    reads = document["paths"]["/api/orders/{order_id}"]["get"]["responses"]
    assert {"200", "304", "400", "404"} <= set(reads)


async def test_headers_are_documented_as_strings_never_null(document: dict[str, Any]) -> None:
    for path, method in WRITES:
        headers = {
            p["name"]: p["schema"]
            for p in document["paths"][path][method]["parameters"]
            if p["in"] == "header"
        }
        assert set(headers) == {"If-Match", "Idempotency-Key"}
        assert all(schema["type"] == "string" and "oneOf" not in schema for schema in headers.values())


async def test_the_ui_loads_its_own_files_and_no_inline_script(module_api: Api) -> None:
    page = await module_api.client.get("/schema")
    assert page.status_code == 200
    assert not INLINE_SCRIPT.search(page.text)
    assert "script-src 'self'" in page.headers["content-security-policy"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources == ["/schema/swagger-ui/swagger-ui.css", "/schema/swagger-ui/swagger-ui-bundle.js",
                       "/schema/swagger-ui/swagger-init.js"]  # fmt: skip
    for source in sources:
        asset = await module_api.client.get(source)
        assert asset.status_code == 200, source
    assert (await module_api.client.get("/schema/swagger-ui/../docs.py")).status_code == 404
    assert (await module_api.client.get("/schema/swagger-ui/LICENSE")).status_code == 404


async def test_options_allows_every_documented_method(module_api: Api, document: dict[str, Any]) -> None:
    order = await module_api.create_order()
    for path, item in document["paths"].items():
        url = path.replace("{order_id}", order).replace("{sku}", "TEA-1")
        response = await module_api.client.options(url)
        assert response.status_code == 204, url
        allowed = {method.strip() for method in response.headers["allow"].split(",")}
        assert allowed == {method.upper() for method in item} | {"OPTIONS"}, url


@pytest.mark.parametrize(
    "customer_id",
    [
        "customer-42",
        " a ",
        "Zoë 李",
        "a\u200bb",
        "soft\xadhyphen",
        "no\xa0break",
        "\u3000",
        "x\U0001f600",
        "\ue000",
    ],
)
async def test_the_customer_id_pattern_is_the_rule(document: dict[str, Any], customer_id: str) -> None:
    pattern = document["components"]["schemas"]["CreateOrderBody"]["properties"]["customer_id"]["pattern"]
    try:
        check_customer_id(customer_id)
    except InvalidInput:
        allowed = False
    else:
        allowed = True
    assert bool(re.fullmatch(pattern, customer_id)) is allowed


async def test_only_place_may_leave_its_body_out(document: dict[str, Any]) -> None:
    bodies = {
        (path, method): operation["requestBody"]["required"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    }
    assert [key for key, required in bodies.items() if not required] == [
        ("/api/orders/{order_id}/place", "post")
    ]
