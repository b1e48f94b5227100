"""An order's export, as NDJSON or CSV, folds back to the same order."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import msgspec

from domain.order import OrderPlaced, fold
from domain.serialization import decode_event
from tests.support.page_client import PageClient


async def test_an_exported_stream_folds_back_to_the_same_order(browser: PageClient) -> None:
    order_id = await browser.create_order("exporter", "EUR")
    for sku, note in (("A-1", ""), ("B-2", "gift wrap"), ("A-1", "")):
        response = await browser.post(
            f"/orders/{order_id}/items",
            {"sku": sku, "name": f"Item {sku}", "unit_price": "1.25", "quantity": "2", "note": note},
        )
        assert response.status_code == 303
    await browser.post(f"/orders/{order_id}/items/A-1/remove", {"quantity": "1"})
    await browser.post(f"/orders/{order_id}/place")
    page = await browser.get(f"/orders/{order_id}/export?format=ndjson")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("application/x-ndjson")
    lines: list[dict[str, Any]] = [json.loads(line) for line in page.text.splitlines()]
    assert [line["version"] for line in lines] == list(range(1, 7))
    events = [
        decode_event(line["type"], line["schema_version"], msgspec.json.encode(line["data"]))
        for line in lines
    ]
    exported = fold(events)
    assert isinstance(events[-1], OrderPlaced)
    assert exported.status == "placed"
    assert {line.sku: line.quantity for line in exported.lines} == {"A-1": 3, "B-2": 2}
    assert exported.line("B-2") is not None
    assert exported.line("B-2").note == "gift wrap"
    assert {"command_id", "correlation_id", "actor"} <= set(lines[0]["metadata"])

    as_csv = await browser.get(f"/orders/{order_id}/export?format=csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [int(r["version"]) for r in rows] == list(range(1, 7))
    assert json.loads(rows[1]["data"])["sku"] == "A-1"

    everything = await browser.get("/events/export?format=ndjson")
    streams = [json.loads(line)["stream_id"] for line in everything.text.splitlines()]
    assert streams == ["customer:exporter"] + [order_id] * 6  # the customer's registration, then the order
    assert (await browser.get(f"/orders/{order_id}/export?format=xml")).status_code == 400
