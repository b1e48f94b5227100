"""A rebuild's folds of an OrderFolds projection: held in memory, their rows written as it goes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime
from typing import Generic

from domain.order import Order
from store.read.projections import Batch, OrderFolds, Row, Totals, in_order, load_states
from store.read.subscriptions import Connection


class Replayer(Generic[Totals]):
    """A rebuild of an OrderFolds projection into its (empty) shadow tables.

    The folds stay in memory until `capacity` orders are held; then their rows
    are written (COPY for orders never written, upsert for the others) while
    folding goes on, and an order seen again is loaded back from its row once
    that write is done. Before that, an order that has gone quiet (not changed
    while `window` other orders were) has its row written while folding goes
    on, its fold still held, so that PostgreSQL takes in the rows while the
    folding goes on rather than all at the end; if orders keep coming back
    after going quiet, that stops. `finish` writes the rest and computes the
    aggregate once. Use it as an async context manager: leaving it stops a
    write still in flight on the connection.
    """

    def __init__(self, projection: OrderFolds[Totals], suffix: str, capacity: int, window: int) -> None:
        self.projection = projection
        self.suffix = suffix
        self.capacity = capacity
        self.window = window
        self.table = f"{projection.tables[0]}{suffix}"
        self.totals = projection.new_totals()
        self.states: dict[str, Order] = {}
        self.stored: set[str] = set()  # held orders whose row exists already
        # Held orders changed since their row was last written (when last), in two generations:
        # changed in this window, and changed in the one before but not since.
        self.fresh: dict[str, datetime] = {}
        self.older: dict[str, datetime] = {}
        self.written_early = 0  # rows written for orders gone quiet
        self.rewritten = 0  # of those and the ones loaded back, rows written again
        self.spilled = False
        self.writing: asyncio.Task[None] | None = None  # the rows of the last write, on their way

    async def __aenter__(self) -> Replayer[Totals]:
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.writing is not None:
            self.writing.cancel()
            await asyncio.gather(self.writing, return_exceptions=True)
            self.writing = None

    async def written(self) -> None:
        """Wait for the rows on their way (and raise what stopped them)."""
        if self.writing is not None:
            writing, self.writing = self.writing, None
            await writing

    async def apply(self, conn: Connection, batch: Batch) -> None:
        if self.spilled:
            # An order whose first event here is its first event ever has no row yet.
            states = self.states
            missing = [i for i, last in batch.items() if i not in states and in_order(last)[0].version > 1]
            if missing:
                await self.written()
                loaded = await load_states(conn, self.table, missing)
                self.states.update(loaded)
                self.stored.update(loaded)
        self.projection.fold(self.states, batch, self.totals)
        fresh = self.fresh
        for stream_id, last in batch.items():
            fresh[stream_id] = last.recorded_at
        if len(self.states) >= self.capacity:
            await self.spill(conn)
        elif self.window and len(fresh) >= self.window and (self.writing is None or self.writing.done()):
            # Not while a write is on its way: folding goes on, and the window grows meanwhile.
            quiet = {i: at for i, at in self.older.items() if i not in fresh}
            self.older, self.fresh = fresh, {}
            if quiet:
                self.rewritten += await self._send(conn, quiet)
                self.written_early += len(quiet)
                if self.rewritten * 8 > self.written_early:
                    # Orders come back after going quiet (a log of long-lived orders, or of more
                    # than the capacity): writing early would write them again and again.
                    self.window = 0

    async def spill(self, conn: Connection) -> None:
        """Send the row of every held order changed since its last write to the table on `conn`,
        and forget the folds.

        The write goes on while the caller folds; `conn` is the Replayer's
        until `written` (or `finish`) returns.
        """
        changed = self.older
        changed.update(self.fresh)
        await self._send(conn, changed)
        self.states, self.stored, self.fresh, self.older = {}, set(), {}, {}
        self.spilled = True

    async def _send(self, conn: Connection, changed: dict[str, datetime]) -> int:
        """Start writing the rows of the `changed` orders (when each last changed), as they are now;
        return how many of them had a row already."""
        await self.written()
        states, stored, row = self.states, self.stored, self.projection.row
        new = [(i, states[i], at) for i, at in changed.items() if i not in stored]
        old = [row(i, states[i], at) for i, at in changed.items() if i in stored]
        stored.update(changed)
        # The new orders' rows are made as COPY sends them, so PostgreSQL takes in one
        # chunk while the next is encoded.
        rows = (row(i, state, at) for i, state, at in new) if new else None
        self.writing = asyncio.create_task(self._write(conn, rows, old))
        return len(old)

    async def _write(self, conn: Connection, new: Iterable[Row] | None, old: list[Row]) -> None:
        if new is not None:
            await conn.copy_records_to_table(self.table, records=new, columns=self.projection.order_columns)
        if old:
            await self.projection.write_rows(conn, self.suffix, old)

    async def finish(self, conn: Connection) -> None:
        await self.spill(conn)
        await self.written()
        await self.projection.settle(conn, self.suffix, self.totals, None)
