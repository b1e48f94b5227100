"""Read models kept by catch-up subscriptions: customer summaries and sales by day.

Each keeps its own fold of every order it has seen (the domain's `evolve`,
stored as JSON), so it depends on no other read model and can be rebuilt
alone. `suffix` names the shadow tables a rebuild fills before the swap.

Two ways in: `apply` takes a batch of a live subscription (load the orders'
folds, evolve, write them back, update the aggregate rows, all in the
batch's transaction); a Replayer (store/read/replayer.py) takes the whole
log during a rebuild, where the shadow tables have no other writer: the
folds stay in memory, each order's row is written once with COPY (as a rule),
and the aggregate is computed once at the end from the order rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Generic, TypeVar, cast

import msgspec

from domain.customer import is_customer_stream
from domain.order import Event, Order, OrderCancelled, OrderPlaced, evolve, initial_state
from domain.order import fold as fold_order
from store.log.event_store import RecordedEvent
from store.read.subscriptions import Connection

_state_encoder = msgspec.json.Encoder()
_state_decoder = msgspec.json.Decoder(Order)

Totals = TypeVar("Totals")
Row = tuple[object, ...]


class Fact(msgspec.Struct, frozen=True, gc=False):
    """An order's event as a fold reads it, linked to the order's event before it in the same
    batch (None for its first there): a batch holds each order's events without a list each,
    which would keep the garbage collector busy."""

    version: int
    event: Event
    recorded_at: datetime
    previous: Fact | None


# A batch of events by order: each order's last event in it (in the order each order first
# appears in the batch); its earlier ones through `previous`.
Batch = dict[str, Fact]


def order_batch(events: Iterable[RecordedEvent]) -> Batch:
    """The events of order streams: the folds here read nothing of customers' streams."""
    batch: Batch = {}
    for e in events:
        if not is_customer_stream(e.stream_id):
            batch[e.stream_id] = Fact(e.version, cast(Event, e.event), e.recorded_at, batch.get(e.stream_id))
    return batch


def in_order(last: Fact) -> list[Fact]:
    """An order's events in a batch, from `last` (its last one there), in the order's order."""
    facts = []
    fact: Fact | None = last
    while fact is not None:
        facts.append(fact)
        fact = fact.previous
    facts.reverse()
    return facts


def _state_json(state: Order) -> str:
    return _state_encoder.encode(state).decode()


async def load_states(conn: Connection, table: str, order_ids: list[str]) -> dict[str, Order]:
    rows = await conn.fetch(f"SELECT order_id, state FROM {table} WHERE order_id = ANY($1)", order_ids)
    return {row[0]: _state_decoder.decode(row[1]) for row in rows}


class OrderFolds(Generic[Totals]):
    """A projection made of an order table (each order's fold) and an aggregate table.

    Subclasses give the order table's columns and upsert, how a batch of
    events changes the aggregate (`totals`), and how totals reach the table.
    """

    name: str
    tables: tuple[str, ...]  # (order table, aggregate table)
    order_columns: tuple[str, ...]  # of the order table, in the order `row` gives them
    upsert_orders: str  # {orders} is the order table; $n is the n-th column, as an array

    def row(self, order_id: str, state: Order, at: datetime) -> Row:
        raise NotImplementedError

    def new_totals(self) -> Totals:
        raise NotImplementedError

    def fold(self, states: dict[str, Order], batch: Batch, totals: Totals) -> None:
        """Fold each order's events into its state in `states`; add what the aggregate needs to `totals`."""
        get = states.get
        for stream_id, last in batch.items():
            state = get(stream_id, initial_state)
            if last.previous is None:
                states[stream_id] = evolve(state, last.event)
            else:
                states[stream_id] = fold_order([fact.event for fact in in_order(last)], state)

    async def settle(
        self, conn: Connection, suffix: str, totals: Totals, changed: list[Order] | None
    ) -> None:
        """Bring the aggregate table up to date: `changed` orders, or every order when None."""
        raise NotImplementedError

    async def write_rows(self, conn: Connection, suffix: str, rows: list[Row]) -> None:
        await conn.execute(
            self.upsert_orders.format(orders=f"{self.tables[0]}{suffix}"), *zip(*rows, strict=True)
        )

    async def apply(self, conn: Connection, recorded: Sequence[RecordedEvent], suffix: str = "") -> None:
        batch = order_batch(recorded)
        if not batch:
            return
        order_ids = list(batch)
        states = await load_states(conn, f"{self.tables[0]}{suffix}", order_ids)
        totals = self.new_totals()
        self.fold(states, batch, totals)
        await self.write_rows(conn, suffix, [self.row(i, states[i], batch[i].recorded_at) for i in order_ids])
        await self.settle(conn, suffix, totals, [states[i] for i in order_ids])


# The summary of each customer, recomputed from the projection's own order rows
# (so re-applying a batch is harmless); {where} picks the customers.
_SUMMARIES = """
INSERT INTO {summaries} AS s (customer_id, draft, placed, cancelled, placed_value, last_activity)
SELECT c.customer_id,
       count(*) FILTER (WHERE c.status = 'draft'),
       count(*) FILTER (WHERE c.status = 'placed'),
       count(*) FILTER (WHERE c.status = 'cancelled'),
       coalesce((SELECT jsonb_object_agg(v.currency, v.cents) FROM (
           SELECT currency, sum(total_cents) AS cents FROM {orders}
           WHERE customer_id = c.customer_id AND status = 'placed' GROUP BY currency
       ) v), '{{}}'::jsonb),
       max(c.updated_at)
FROM {orders} c {where}
GROUP BY c.customer_id
ON CONFLICT (customer_id) DO UPDATE SET
    draft = EXCLUDED.draft, placed = EXCLUDED.placed, cancelled = EXCLUDED.cancelled,
    placed_value = EXCLUDED.placed_value, last_activity = EXCLUDED.last_activity
"""


class CustomerSummaries(OrderFolds[None]):
    """Per customer: orders per status, the value of placed orders per currency, the last activity."""

    name = "customer_summaries"
    tables = ("customer_orders", "customer_summaries")
    order_columns = ("order_id", "customer_id", "currency", "status", "total_cents", "state", "updated_at")
    upsert_orders = """
        INSERT INTO {orders} (order_id, customer_id, currency, status, total_cents, state, updated_at)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                             $6::text[], $7::timestamptz[])
        ON CONFLICT (order_id) DO UPDATE SET
            status = EXCLUDED.status, total_cents = EXCLUDED.total_cents,
            state = EXCLUDED.state, updated_at = EXCLUDED.updated_at
    """

    def row(self, order_id: str, state: Order, at: datetime) -> Row:
        return (
            order_id,
            state.customer_id,
            state.currency,
            state.status,
            state.total_cents,
            _state_json(state),
            at,
        )

    def new_totals(self) -> None:
        return None

    async def settle(self, conn: Connection, suffix: str, totals: None, changed: list[Order] | None) -> None:
        orders, summaries = (f"{table}{suffix}" for table in self.tables)
        if changed is None:
            await conn.execute(_SUMMARIES.format(summaries=summaries, orders=orders, where=""))
            return
        await conn.execute(
            _SUMMARIES.format(
                summaries=summaries, orders=orders, where="WHERE c.customer_id = ANY($1::text[])"
            ),
            list({s.customer_id for s in changed}),
        )


# Per (UTC day, currency): placed, placed cents, cancelled, cancelled cents.
DayTotals = dict[tuple[date, str], list[int]]


class SalesByDay(OrderFolds[DayTotals]):
    """Per UTC day and currency: orders placed and cancelled, and their value."""

    name = "sales_by_day"
    tables = ("sales_orders", "sales_by_day")
    order_columns = ("order_id", "currency", "state")
    upsert_orders = """
        INSERT INTO {orders} (order_id, currency, state)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
        ON CONFLICT (order_id) DO UPDATE SET state = EXCLUDED.state
    """

    def row(self, order_id: str, state: Order, at: datetime) -> Row:
        return (order_id, state.currency, _state_json(state))

    def new_totals(self) -> DayTotals:
        return defaultdict(lambda: [0, 0, 0, 0])

    def fold(self, states: dict[str, Order], batch: Batch, totals: DayTotals) -> None:
        for stream_id, last in batch.items():
            state = states.get(stream_id, initial_state)
            for fact in in_order(last):
                event = fact.event
                before, state = state, evolve(state, event)
                if isinstance(event, OrderPlaced):
                    day = totals[(fact.recorded_at.date(), before.currency)]
                    day[0] += 1
                    day[1] += event.total_cents
                elif isinstance(event, OrderCancelled):
                    day = totals[(fact.recorded_at.date(), before.currency)]
                    day[2] += 1
                    day[3] += before.total_cents
            states[stream_id] = state

    async def settle(
        self, conn: Connection, suffix: str, totals: DayTotals, changed: list[Order] | None
    ) -> None:
        if not totals:
            return
        keys = list(totals)
        await conn.execute(
            f"""
            INSERT INTO {self.tables[1]}{suffix} AS d
                (day, currency, placed, placed_cents, cancelled, cancelled_cents)
            SELECT * FROM unnest($1::date[], $2::text[], $3::int[], $4::bigint[], $5::int[], $6::bigint[])
            ON CONFLICT (day, currency) DO UPDATE SET
                placed = d.placed + EXCLUDED.placed,
                placed_cents = d.placed_cents + EXCLUDED.placed_cents,
                cancelled = d.cancelled + EXCLUDED.cancelled,
                cancelled_cents = d.cancelled_cents + EXCLUDED.cancelled_cents
            """,
            [day for day, _ in keys],
            [currency for _, currency in keys],
            *([totals[key][i] for key in keys] for i in range(4)),
        )


PROJECTIONS: dict[str, OrderFolds[None] | OrderFolds[DayTotals]] = {
    p.name: p for p in (CustomerSummaries(), SalesByDay())
}
