"""Any version or moment of seeded orders equals an independent fold; snapshots are only a cache."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import asyncpg

from domain.order import Order
from store.application import Orders
from store.log.event_store import EventStore
from store.log.snapshots import SHAPE, Snapshots
from store.seed import seed

Lines = dict[str, tuple[int, int]]


def independent_fold(rows: list[dict[str, Any]]) -> tuple[str, Lines]:
    """The order's status and lines from raw event rows, written without the domain's code."""
    status, lines = "none", {}
    for row in rows:
        data = json.loads(row["data"])
        kind = row["type"]
        if kind == "OrderCreated":
            status = "draft"
        elif kind == "ItemAdded":
            quantity, _ = lines.get(data["sku"], (0, data["unit_price_cents"]))
            lines[data["sku"]] = (quantity + data["quantity"], data["unit_price_cents"])
        elif kind == "ItemRemoved":
            quantity, price = lines[data["sku"]]
            if quantity == data["quantity"]:
                del lines[data["sku"]]
            else:
                lines[data["sku"]] = (quantity - data["quantity"], price)
        elif kind == "OrderPlaced":
            status = "placed"
        elif kind == "OrderCancelled":
            status = "cancelled"
    return status, lines


def seen(order: Order) -> tuple[str, Lines]:
    return order.status, {line.sku: (line.quantity, line.unit_price_cents) for line in order.lines}


async def _noop(_done: int, _total: int) -> None:
    return None


async def seeded(
    pool: asyncpg.Pool, store: EventStore, snapshots: Snapshots
) -> dict[str, list[dict[str, Any]]]:
    await seed(Orders(pool, snapshot_every=snapshots.every), 30, _noop, concurrency=4)
    rows = await pool.fetch(
        "SELECT stream_id, version, type, data::text AS data, recorded_at FROM events "
        "WHERE stream_id NOT LIKE 'customer:%' "
        "ORDER BY stream_id, version"
    )
    streams: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        streams.setdefault(row["stream_id"], []).append(dict(row))
    return streams


async def test_every_version_and_fifty_moments_equal_an_independent_fold(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    snapshots = Snapshots(pool, every=10)
    streams = await seeded(pool, store, snapshots)
    assert max(len(rows) for rows in streams.values()) >= 200, "the seed has a long-lived order"
    assert await pool.fetchval("SELECT count(*) FROM snapshots") > 0
    for stream_id, rows in streams.items():
        for version in range(1, len(rows) + 1):
            order, _ = await snapshots.load(stream_id, version)
            assert order.version == version
            assert seen(order) == independent_fold(rows[:version]), (stream_id, version)

    moments = sorted(row["recorded_at"] for rows in streams.values() for row in rows)
    for _ in range(50):
        stream_id, rows = random.choice(list(streams.items()))
        moment = random.choice(moments) + timedelta(microseconds=random.choice([-1, 0, 1]))
        version = await store.version_at(stream_id, moment)
        expected = [row for row in rows if row["recorded_at"] <= moment]
        assert version == len(expected)
        if version:
            order, _ = await snapshots.load(stream_id, version)
            assert seen(order) == independent_fold(expected)


async def test_deleting_every_snapshot_changes_no_result(pool: asyncpg.Pool, store: EventStore) -> None:
    with_snapshots = Snapshots(pool, every=5)
    streams = await seeded(pool, store, with_snapshots)
    longest = max(streams, key=lambda s: len(streams[s]))
    versions = range(1, len(streams[longest]) + 1)
    before = [(await with_snapshots.load(longest, v))[0] for v in versions]
    assert await pool.fetchval("SELECT count(*) FROM snapshots WHERE stream_id = $1", longest) > 10
    await pool.execute("DELETE FROM snapshots")
    after = [(await with_snapshots.load(longest, v))[0] for v in versions]
    assert after == before
    without = Snapshots(pool, enabled=False)
    assert [(await without.load(longest, v))[0] for v in versions] == before


async def test_a_snapshot_of_another_state_shape_is_ignored_and_replaced(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    snapshots = Snapshots(pool, every=10)
    streams = await seeded(pool, store, snapshots)
    longest = max(streams, key=lambda s: len(streams[s]))
    expected, _ = await snapshots.load(longest, 25)
    await pool.execute("DELETE FROM snapshots")
    # What an older build of the app would have stored: another shape, fields it no longer has.
    await pool.execute(
        "INSERT INTO snapshots (stream_id, version, shape, state) VALUES ($1, 20, 'older-shape', $2::jsonb)",
        longest,
        '{"id": "x", "items": {}, "v": 20}',
    )
    order, folded = await snapshots.load(longest, 25)
    assert order == expected
    assert len(folded) == 25, "the old snapshot was not used"
    shape = await pool.fetchval("SELECT shape FROM snapshots WHERE stream_id = $1 AND version = 20", longest)
    assert shape == SHAPE, "the old snapshot was rebuilt in the current shape while folding"
