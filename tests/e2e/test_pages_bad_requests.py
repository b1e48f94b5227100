"""Requests no form of ours sends: bad ids, huge bodies, missing CSRF tokens, HTML in a name."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import uuid4

from tests.support.pages import Page

if TYPE_CHECKING:
    from tests.support.ledger import Ledger
    from tests.support.page_client import PageClient

READS = ["", "/history?version=1", "/timeline"]
WRITES = [
    ("/items", {"sku": "CUP-1", "name": "Cup", "unit_price": "1.00", "quantity": "1"}),
    ("/items/TEA-1/remove", {}),
    ("/place", {}),
    ("/cancel", {"reason": "Not wanted"}),
]


async def test_a_malformed_order_id_in_a_link_a_form_post_or_a_filter(
    browser: PageClient, ledger: Ledger
) -> None:
    for path in READS:
        for htmx in (False, True):
            response = await browser.get(f"/orders/not-an-order{path}", htmx=htmx)
            page = Page(response)
            assert response.status_code == 400, path
            assert "“not-an-order” is not an order id." in page.html, path
            assert page.is_full_page is not htmx, path
    await browser.draft_with_items()
    for path, form in WRITES:
        async with ledger.unchanged():
            response = await browser.post(f"/orders/12345{path}", form, htmx=True)
        assert response.status_code == 400, path
        assert "“12345” is not an order id." in response.text, path
    for url in ("/orders?after=xyz", "/events?order=xyz"):
        response = await browser.get(url)
        assert response.status_code == 400, url
        assert "“xyz” is not an order id." in response.text


async def test_an_unknown_order_in_a_link_or_a_form_post(browser: PageClient, ledger: Ledger) -> None:
    unknown = str(uuid4())
    for path in READS:
        for htmx in (False, True):
            response = await browser.get(f"/orders/{unknown}{path}", htmx=htmx)
            page = Page(response)
            assert response.status_code == 404, path
            assert f"There is no order {unknown}." in page.html, path
            assert page.is_full_page is not htmx, path
    for path, form in WRITES:
        for envelope in ({}, {"expected_version": "1"}, {"expected_version": "0"}):
            async with ledger.unchanged(unknown):
                response = await browser.post(f"/orders/{unknown}{path}", {**form, **envelope}, htmx=True)
            assert response.status_code == 404, (path, envelope)
            assert f"There is no order {unknown}." in response.text, (path, envelope)
    assert await ledger.row(unknown) is None


async def test_a_two_megabyte_body_is_refused(browser: PageClient, ledger: Ledger) -> None:
    order_id = await browser.draft_with_items(("TEA-1", "Green tea", "3.50", "2"))
    for path, form in [("", {"customer_id": "c", "currency": "EUR"}), *WRITES]:
        url = f"/orders/{order_id}{path}" if path else "/orders"
        for htmx in (False, True):
            async with ledger.unchanged(order_id):
                response = await browser.post(url, {**form, "pad": "x" * 2_000_000}, htmx=htmx)
            assert response.status_code == 413, (url, htmx)
            assert "The request is larger than 64 KiB." in response.text, (url, htmx)


async def test_a_post_without_the_csrf_token_is_forbidden(browser: PageClient, ledger: Ledger) -> None:
    order_id = await browser.draft_with_items(("TEA-1", "Green tea", "3.50", "2"))
    assert browser.client.cookies.get("csrftoken")
    for path, form in [("", {"customer_id": "mallory", "currency": "EUR"}), *WRITES]:
        url = f"/orders/{order_id}{path}" if path else "/orders"
        for headers in ({}, {"HX-Request": "true"}, {"x-csrftoken": "forged"}):
            async with ledger.unchanged(order_id):
                response = await browser.client.post(url, data=form, headers=headers, follow_redirects=False)
            assert response.status_code == 403, (url, headers)
            assert "CSRF token verification failed" in response.text, (url, headers)


async def test_a_name_with_html_is_stored_as_typed_and_shown_escaped(
    browser: PageClient, ledger: Ledger
) -> None:
    name = "<script>alert(1)</script>"
    order_id = await browser.create_order("<b>bold</b>")
    response = await browser.add_item(order_id, "XSS-1", name, "1.00", "1")
    assert response.status_code == 200
    assert (await ledger.events(order_id))[1][1]["name"] == name
    pages = [
        response,
        await browser.get(f"/orders/{order_id}"),
        await browser.get(f"/orders/{order_id}/history?version=2"),
        await browser.get(f"/orders/{order_id}/timeline"),
        await browser.get("/events"),
        await browser.get("/orders"),
    ]
    for page in pages:
        assert "<script>alert" not in page.text
        assert "<b>bold" not in page.text
    for page in pages[:4]:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert Page(pages[1]).lines[0][1] == name
    assert "&lt;b&gt;bold&lt;/b&gt;" in pages[5].text
