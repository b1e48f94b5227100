"""Tamper evidence: check every stream's versions and hash chain, and the read model against a fresh fold.

The hash chain is recomputed here, in Python, from the columns as stored: a
function changed in the database cannot vouch for rows changed beside it.
Each run remembers the head of every stream it found sound; the next run
checks that those heads are still there, so even a stream rewritten whole,
with every hash recomputed, is caught.

Personal data is checked too: every customer forgotten must have lost their
key, and every personal field (domain/personal.PERSONAL_FIELDS) in the events,
the customers read model, the outbox, the snapshots and the projections' folds
must be sealed. A finding names the stream or customer and the field, never the
value: the report is itself kept (verify_runs) and printed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg

from domain.customer import customer_stream, is_customer_stream
from domain.order import Event, Order, fold
from domain.personal import PERSONAL_FIELDS, SEALED_PREFIX, is_sealed
from domain.serialization import decode_event
from store.log.verify_runs import Finding, Report, VerifyRun, record_run

__all__ = ["Finding", "Report", "VerifyRun", "event_hash", "verify"]

# The kinds of finding, in the order a report lists them.
KINDS = {
    "versions": "versions run 1..n",
    "chain": "hash chains",
    "anchor": "heads seen by the last run",
    "unreadable": "events decode",
    "read_model": "order_read_model equals the fold",
    "command": "commands match their events",
    "forgotten_key": "forgotten customers have no key",
    "cleartext": "personal fields are sealed",
}
BATCH = 500


def event_hash(
    previous: bytes | None,
    stream_id: str,
    version: int,
    event_id: str,
    type_name: str,
    schema_version: int,
    data: str,
    metadata: str,
    recorded_at: datetime,
) -> bytes:
    """The chain link migration 007's event_hash() computes: sha256(previous || "<len>:<field>"…)."""
    moment = recorded_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    fields = (stream_id, str(version), event_id, type_name, str(schema_version), data, metadata, moment)
    material = "".join(f"{len(field)}:{field}" for field in fields)
    return hashlib.sha256((previous or b"") + material.encode()).digest()


_EVENTS = """
SELECT stream_id, version, event_id::text, type, schema_version, data::text, metadata::text, recorded_at, hash
FROM events ORDER BY stream_id, version
"""
_READ_MODEL = """
SELECT order_id, customer_id, currency, status, line_count, item_count, total_cents, version
FROM order_read_model WHERE order_id = ANY($1::text[])
"""
_ANCHORS = "SELECT stream_id, version, hash FROM verified_heads WHERE stream_id = ANY($1::text[])"
_ORPHAN_ROWS = """
SELECT order_id FROM order_read_model r
WHERE NOT EXISTS (SELECT FROM events e WHERE e.stream_id = r.order_id) ORDER BY order_id
"""
_VANISHED = """
SELECT stream_id, version FROM verified_heads h
WHERE NOT EXISTS (SELECT FROM events e WHERE e.stream_id = h.stream_id) ORDER BY stream_id
"""
# A command's row names the versions it wrote: they must all be in the log, and
# every event naming a command id in its metadata must lie inside that range.
_COMMANDS = """
SELECT c.stream_id, c.command_id::text, c.first_version, c.last_version, n.found
FROM commands c CROSS JOIN LATERAL (
    SELECT count(*) AS found FROM events e
    WHERE e.stream_id = c.stream_id AND e.version BETWEEN c.first_version AND c.last_version
) n
WHERE c.first_version < 1 OR c.first_version > c.last_version + 1
   OR n.found <> c.last_version - c.first_version + 1
ORDER BY c.stream_id
"""
_EVENT_COMMANDS = """
SELECT e.stream_id, e.version, e.metadata->>'command_id'
FROM events e LEFT JOIN commands c ON c.command_id::text = e.metadata->>'command_id'
WHERE coalesce(e.metadata->>'command_id', '') <> ''
  AND (c.command_id IS NULL OR c.stream_id <> e.stream_id
       OR e.version NOT BETWEEN c.first_version AND c.last_version)
ORDER BY e.stream_id, e.version
"""


# Forgotten customers (a CustomerForgotten event) whose row in customer_keys is still there.
_KEPT_KEYS = """
SELECT k.customer_id FROM customer_keys k
WHERE EXISTS (SELECT FROM events e WHERE e.stream_id = 'customer:' || k.customer_id
                                      AND e.type = 'CustomerForgotten')
ORDER BY k.customer_id
"""
_SEALED = f"'{SEALED_PREFIX}%'"
# Personal fields in clear outside the log: (where, stream or customer, field), never the value.
# An outbox body is personal only for a registered customer's message (it has a recipient);
# a message to a customer who never registered greets their id and holds nothing personal.
_CLEAR_COPIES = f"""
SELECT 'customers', customer_stream, field FROM (
    SELECT 'customer:' || customer_id AS customer_stream, f.field, f.value FROM customers
    CROSS JOIN LATERAL (VALUES ('name', name), ('email', email), ('address', address)) f(field, value)
) c WHERE value <> '' AND value NOT LIKE {_SEALED}
UNION ALL
SELECT 'outbox', order_id, 'message ' || id || ' ' || f.field FROM outbox
CROSS JOIN LATERAL (VALUES ('recipient', recipient), ('body', body)) f(field, value)
WHERE recipient <> '' AND f.value <> '' AND f.value NOT LIKE {_SEALED}
UNION ALL
SELECT 'snapshots', stream_id, 'version ' || version || ' ship_to' FROM snapshots
WHERE coalesce(state->>'ship_to', '') <> '' AND state->>'ship_to' NOT LIKE {_SEALED}
UNION ALL
SELECT 'customer_orders', order_id, 'ship_to' FROM customer_orders
WHERE coalesce(state::jsonb->>'ship_to', '') <> '' AND state::jsonb->>'ship_to' NOT LIKE {_SEALED}
UNION ALL
SELECT 'sales_orders', order_id, 'ship_to' FROM sales_orders
WHERE coalesce(state::jsonb->>'ship_to', '') <> '' AND state::jsonb->>'ship_to' NOT LIKE {_SEALED}
ORDER BY 1, 2, 3
"""


class _Verifier:
    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.digest = hashlib.sha256()
        self.streams = self.events = self.rows = 0
        self.sound_heads: list[tuple[str, int, bytes]] = []

    def found(self, kind: str, stream_id: str, detail: str) -> None:
        self.findings.append(Finding(kind, stream_id, detail))

    def check_stream(
        self, rows: Sequence[asyncpg.Record], read_model: asyncpg.Record | None, anchor: asyncpg.Record | None
    ) -> None:
        stream_id = rows[0]["stream_id"]
        before = len(self.findings)
        self.streams += 1
        self.events += len(rows)
        hashes: dict[int, bytes | None] = {}
        previous: bytes | None = None
        expected_version = 1
        for row in rows:
            version, stored = row["version"], row["hash"]
            chained = version == expected_version
            if not chained:
                first = "versions start" if expected_version == 1 else f"after version {expected_version - 1}"
                self.found(
                    "versions", stream_id, f"{first} at version {version}; the versions between are missing"
                )
            if stored is None:
                self.found("chain", stream_id, f"version {version} has no hash")
            elif chained and stored != event_hash(previous, *row[:8]):
                self.found(
                    "chain",
                    stream_id,
                    f"version {version}: the stored hash does not match the event and the hash before it; "
                    "the row was changed after it was written",
                )
            hashes[version] = stored
            previous, expected_version = stored, version + 1
            if row["type"] in PERSONAL_FIELDS:
                self._check_sealed(stream_id, row)
        if anchor is not None:
            self._check_anchor(stream_id, anchor, hashes, rows[-1]["version"])
        if not is_customer_stream(stream_id):  # a customer's row is checked by _check_customers
            self._check_read_model(stream_id, rows, read_model)
        head = rows[-1]
        self.digest.update(f"{len(stream_id)}:{stream_id}{head['version']}:".encode() + (head["hash"] or b""))
        if len(self.findings) == before and head["hash"] is not None:
            self.sound_heads.append((stream_id, head["version"], head["hash"]))

    def _check_sealed(self, stream_id: str, row: asyncpg.Record) -> None:
        """Every personal field of the event is empty or sealed (not decoded: only its JSON is read)."""
        try:
            data = json.loads(row["data"])
        except ValueError:
            return  # reported by the fold as unreadable
        for field in PERSONAL_FIELDS[row["type"]]:
            value = data.get(field) if isinstance(data, dict) else None
            if isinstance(value, str) and value and not is_sealed(value):
                self.found(
                    "cleartext",
                    stream_id,
                    f"event version {row['version']} ({row['type']}): {field} is stored in clear",
                )

    def _check_anchor(
        self, stream_id: str, anchor: asyncpg.Record, hashes: dict[int, bytes | None], last: int
    ) -> None:
        version, seen = anchor["version"], anchor["hash"]
        if version > last:
            self.found(
                "anchor",
                stream_id,
                f"the last run saw the stream end at version {version}; it now ends at version {last}",
            )
        elif hashes.get(version) != seen:
            self.found(
                "anchor",
                stream_id,
                f"version {version} no longer has the hash the last run saw: the stream was rewritten",
            )

    def _check_read_model(
        self, stream_id: str, rows: Sequence[asyncpg.Record], read_model: asyncpg.Record | None
    ) -> None:
        try:
            order = fold(cast(Event, decode_event(r["type"], r["schema_version"], r["data"])) for r in rows)
        except Exception as error:
            self.found("unreadable", stream_id, f"the events cannot be read and folded: {error}")
            return
        if read_model is None:
            self.found("read_model", stream_id, "there is no row in order_read_model for this order")
            return
        self.rows += 1
        for name, kept, folded in _differences(read_model, order):
            self.found(
                "read_model", stream_id, f"order_read_model has {name} = {kept!r}; the events say {folded!r}"
            )


def _differences(row: asyncpg.Record, order: Order) -> list[tuple[str, object, object]]:
    folded = {
        "customer_id": order.customer_id,
        "currency": order.currency,
        "status": order.status,
        "line_count": len(order.lines),
        "item_count": order.item_count,
        "total_cents": order.total_cents,
        "version": order.version,
    }
    return [(name, row[name], value) for name, value in folded.items() if row[name] != value]


async def verify(pool: asyncpg.Pool, *, record: bool = True) -> Report:
    """Check the whole log and the order read model, as one snapshot; record the run and sound heads."""
    started = datetime.now(UTC)
    verifier = _Verifier()
    # One snapshot for the whole run: the log and the read model as they stood together.
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        streams: list[list[asyncpg.Record]] = []
        async for row in conn.cursor(_EVENTS, prefetch=2000):
            if not streams or streams[-1][0]["stream_id"] != row["stream_id"]:
                if len(streams) == BATCH:
                    await _check_batch(conn, verifier, streams)
                    streams = []
                streams.append([])
            streams[-1].append(row)
        await _check_batch(conn, verifier, streams)
        await _check_the_rest(conn, verifier)
    kinds = list(KINDS)
    report = Report(
        started,
        datetime.now(UTC),
        verifier.streams,
        verifier.events,
        verifier.rows,
        verifier.digest.hexdigest(),
        sorted(verifier.findings, key=lambda f: (kinds.index(f.kind), f.stream_id)),
    )
    if record:
        await record_run(pool, report, verifier.sound_heads)
    return report


async def _check_the_rest(conn: Any, verifier: _Verifier) -> None:
    for (order_id,) in await conn.fetch(_ORPHAN_ROWS):
        verifier.found("read_model", order_id, "order_read_model has a row for an order with no events")
    for stream_id, version in await conn.fetch(_VANISHED):
        verifier.found("anchor", stream_id, f"the last run saw this stream at version {version}; it is gone")
    for stream_id, command_id, first, last, found in await conn.fetch(_COMMANDS):
        verifier.found(
            "command",
            stream_id,
            f"command {command_id} wrote versions {first}–{last}; {found} of them are in the log",
        )
    for stream_id, version, command_id in await conn.fetch(_EVENT_COMMANDS):
        verifier.found(
            "command", stream_id, f"version {version} names command {command_id}, which did not write it"
        )
    for (customer_id,) in await conn.fetch(_KEPT_KEYS):
        verifier.found(
            "forgotten_key",
            customer_stream(customer_id),
            "the customer was forgotten but customer_keys still holds their key",
        )
    for table, where, field in await conn.fetch(_CLEAR_COPIES):
        detail = (
            f"{table}.{field} is stored in clear"
            if table == "customers"
            else f"{table}: {field} is stored in clear"
        )
        verifier.found("cleartext", where, detail)


async def _check_batch(conn: Any, verifier: _Verifier, streams: list[list[asyncpg.Record]]) -> None:
    if not streams:
        return
    ids = [rows[0]["stream_id"] for rows in streams]
    read_model = {row["order_id"]: row for row in await conn.fetch(_READ_MODEL, ids)}
    anchors = {row["stream_id"]: row for row in await conn.fetch(_ANCHORS, ids)}
    for stream_id, rows in zip(ids, streams, strict=True):
        verifier.check_stream(rows, read_model.get(stream_id), anchors.get(stream_id))
