"""The version is the ETag: If-None-Match saves a download; If-Match and expected_version guard writes."""

from __future__ import annotations

import pytest

from tests.support.api import Api, assert_problem
from tests.support.ledger import Ledger

pytestmark = pytest.mark.asyncio(loop_scope="module")

TEA = ("TEA-1", "Green tea", "3.50", 2)


@pytest.mark.parametrize("tag", ['"2"', 'W/"2"', '"1", "2"', "*"])
async def test_a_current_copy_is_not_sent_again(api: Api, tag: str) -> None:
    order_id = await api.draft_with_items(TEA)
    response = await api.client.get(f"/api/orders/{order_id}", headers={"If-None-Match": tag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == '"2"'


async def test_a_stale_copy_gets_the_order(api: Api) -> None:
    order_id = await api.draft_with_items(TEA)
    response = await api.client.get(f"/api/orders/{order_id}", headers={"If-None-Match": '"1"'})
    assert response.status_code == 200
    assert response.headers["etag"] == '"2"'
    assert response.json()["version"] == 2


async def test_a_past_version_has_its_own_etag(api: Api) -> None:
    order_id = await api.draft_with_items(TEA, ("MUG-2", "Mug", "12.00", 1))
    first = await api.client.get(f"/api/orders/{order_id}?version=2")
    assert first.headers["etag"] == '"2"'
    again = await api.client.get(f"/api/orders/{order_id}?version=2", headers={"If-None-Match": '"2"'})
    assert again.status_code == 304


@pytest.mark.parametrize("tag", ['"2"', "*", '"7", "2"'])
async def test_a_write_with_a_matching_if_match(api: Api, tag: str) -> None:
    order_id = await api.draft_with_items(TEA)
    response = await api.add_item(order_id, "MUG-2", "Mug", "12.00", 1, headers={"If-Match": tag})
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"3"'


@pytest.mark.parametrize("tag", ['"1"', 'W/"2"', '"1", "3"', '"abc"'])
async def test_a_write_whose_if_match_no_longer_matches(api: Api, ledger: Ledger, tag: str) -> None:
    order_id = await api.draft_with_items(TEA)
    async with ledger.unchanged(order_id):
        response = await api.add_item(order_id, "MUG-2", "Mug", "12.00", 1, headers={"If-Match": tag})
    problem = assert_problem(response, 412, "This order changed")
    assert problem["current_version"] == 2
    assert problem["title"] == "Precondition Failed"


async def test_every_write_honours_if_match(api: Api, ledger: Ledger) -> None:
    order_id = await api.draft_with_items(TEA)
    stale = {"If-Match": '"1"'}
    async with ledger.unchanged(order_id):
        answers = [
            await api.client.delete(f"/api/orders/{order_id}/items/TEA-1", headers=stale),
            await api.client.post(f"/api/orders/{order_id}/place", headers=stale),
            await api.client.post(f"/api/orders/{order_id}/cancel", json={"reason": "No"}, headers=stale),
        ]
    assert [answer.status_code for answer in answers] == [412, 412, 412]


async def test_a_stale_expected_version_in_the_body(api: Api, ledger: Ledger) -> None:
    order_id = await api.draft_with_items(TEA)
    async with ledger.unchanged(order_id):
        response = await api.client.post(f"/api/orders/{order_id}/place", json={"expected_version": 1})
    problem = assert_problem(
        response, 409, "the request expected version 1, it is now at version 2. Nothing was changed"
    )
    assert problem["type"] == "urn:orders:problem:stale-version"
    assert problem["current_version"] == 2
    fresh = await api.client.post(f"/api/orders/{order_id}/place", json={"expected_version": 2})
    assert fresh.status_code == 200


async def test_if_match_first_then_expected_version(api: Api, ledger: Ledger) -> None:
    order_id = await api.draft_with_items(TEA)
    place = f"/api/orders/{order_id}/place"
    async with ledger.unchanged(order_id):
        stale_header = await api.client.post(place, json={"expected_version": 2}, headers={"If-Match": '"1"'})
        stale_body = await api.client.post(place, json={"expected_version": 1}, headers={"If-Match": '"2"'})
    assert_problem(stale_header, 412, "the request expected version 1, it is now at version 2")
    problem = assert_problem(stale_body, 409, "the request expected version 1, it is now at version 2")
    assert problem["type"] == "urn:orders:problem:stale-version"
    both = await api.client.post(place, json={"expected_version": 2}, headers={"If-Match": '"1", "2"'})
    assert both.status_code == 200, both.text


@pytest.mark.parametrize("value", ["2", "0", "null", '"2', "W/2"])
async def test_an_if_match_that_lists_no_etag_matches_nothing(api: Api, ledger: Ledger, value: str) -> None:
    order_id = await api.draft_with_items(TEA)
    async with ledger.unchanged(order_id):
        response = await api.client.post(f"/api/orders/{order_id}/place", headers={"If-Match": value})
    assert_problem(response, 412, "it is now at version 2")


async def test_if_match_on_an_unknown_order(api: Api) -> None:
    unknown = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
    response = await api.client.post(f"/api/orders/{unknown}/place", headers={"If-Match": '"1", "2"'})
    assert_problem(response, 404, f"There is no order {unknown}.")
