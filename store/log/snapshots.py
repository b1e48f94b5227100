"""Snapshots: the order as folded at some version, so loading any version folds few events.

A snapshot is a cache, never the truth: deleting them all changes no result.
Its `shape` is a digest of the state's structure, so after the Order struct
changes, old snapshots are simply not found, and new ones are taken as
versions are loaded.
"""

from __future__ import annotations

import hashlib
from typing import cast

import asyncpg
import msgspec

from domain.order import Event, Order, evolve, initial_state
from domain.serialization import decode_event
from store.log.event_store import FOLD_COLUMNS

SHAPE = hashlib.sha256(msgspec.json.encode(msgspec.json.schema(Order))).hexdigest()[:16]
DEFAULT_EVERY = 100

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Order)

# One round trip: the nearest snapshot at or below the version (first, if any),
# then the events after it, only the columns a fold reads (the snapshot's row
# carries its version in schema_version's place and its state in data's).
_LOAD = f"""
WITH snap AS (
    SELECT version, state::text AS state FROM snapshots
    WHERE stream_id = $1 AND version <= $2 AND shape = $3 AND $4
    ORDER BY version DESC LIMIT 1
)
SELECT type, schema_version, data FROM (
    SELECT NULL::text AS type, version AS schema_version, state AS data, 0 AS version FROM snap
    UNION ALL
    SELECT {FOLD_COLUMNS}, version FROM events
    WHERE stream_id = $1 AND version <= $2 AND version > coalesce((SELECT version FROM snap), 0)
) rows
ORDER BY version
"""

_TAKE = """
INSERT INTO snapshots (stream_id, version, shape, state) VALUES ($1, $2, $3, $4::jsonb)
ON CONFLICT (stream_id, version) DO UPDATE SET shape = EXCLUDED.shape, state = EXCLUDED.state,
    taken_at = now()
"""


class Snapshots:
    def __init__(self, pool: asyncpg.Pool, *, every: int = DEFAULT_EVERY, enabled: bool = True) -> None:
        self.pool = pool
        self.every = every
        self.enabled = enabled

    async def load(self, stream_id: str, version: int | None = None) -> tuple[Order, list[Event]]:
        """The order at `version` (default: latest), and the events folded after the snapshot."""
        up_to = 2**31 - 1 if version is None else version
        rows = await self.pool.fetch(_LOAD, stream_id, up_to, SHAPE, self.enabled)
        state, start = initial_state, 0
        if rows and rows[0][0] is None:
            state, start = _decoder.decode(rows[0][2]), rows[0][1]
            rows = rows[1:]
        # An order stream holds order events only.
        events = cast(
            list[Event],
            [decode_event(type_name, schema_version, data) for type_name, schema_version, data in rows],
        )
        taken = None
        for event in events:
            state = evolve(state, event)
            if self.enabled and state.version % self.every == 0 and state.version - start >= self.every:
                taken = state
        if taken is not None:
            await self.take(stream_id, taken)
        return state, events

    async def take(self, stream_id: str, order: Order) -> None:
        await self.pool.execute(_TAKE, stream_id, order.version, SHAPE, _encoder.encode(order).decode())

    async def after_append(self, stream_id: str, before: int, order: Order) -> None:
        """Take a snapshot when an append crossed a multiple of `every`."""
        if self.enabled and order.version // self.every > before // self.every:
            await self.take(stream_id, order)
