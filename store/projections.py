"""Read models kept by catch-up subscriptions: customer summaries and sales by day.

Each keeps its own fold of every order it has seen (the domain's `evolve`,
stored as JSON), so it depends on no other read model and can be rebuilt
alone. `suffix` names the shadow tables a rebuild fills before the swap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import msgspec

from domain.order import Order, OrderCancelled, OrderPlaced, evolve, initial_state
from store.event_store import RecordedEvent
from store.subscriptions import Connection

_state_encoder = msgspec.json.Encoder()
_state_decoder = msgspec.json.Decoder(Order)


async def _load_states(conn: Connection, table: str, order_ids: list[str]) -> dict[str, Order]:
    rows = await conn.fetch(f"SELECT order_id, state::text FROM {table} WHERE order_id = ANY($1)", order_ids)
    return {row[0]: _state_decoder.decode(row[1]) for row in rows}


def _fold_batch(states: dict[str, Order], events: Sequence[RecordedEvent]) -> None:
    for recorded in events:
        states[recorded.stream_id] = evolve(states.get(recorded.stream_id, initial_state), recorded.event)


class CustomerSummaries:
    """Per customer: orders per status, the value of placed orders per currency, the last activity."""

    name: str = "customer_summaries"
    tables: tuple[str, ...] = ("customer_orders", "customer_summaries")

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent], suffix: str = "") -> None:
        orders, summaries = (f"{table}{suffix}" for table in self.tables)
        order_ids = list({e.stream_id for e in events})
        states = await _load_states(conn, orders, order_ids)
        _fold_batch(states, events)
        touched = {e.stream_id: e.recorded_at for e in events}
        changed = [states[order_id] for order_id in order_ids]
        await conn.execute(
            f"""
            INSERT INTO {orders} (order_id, customer_id, currency, status, total_cents, state, updated_at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                                 $6::text[]::jsonb[], $7::timestamptz[])
            ON CONFLICT (order_id) DO UPDATE SET
                status = EXCLUDED.status, total_cents = EXCLUDED.total_cents,
                state = EXCLUDED.state, updated_at = EXCLUDED.updated_at
            """,
            order_ids,
            [s.customer_id for s in changed],
            [s.currency for s in changed],
            [s.status for s in changed],
            [s.total_cents for s in changed],
            [_state_encoder.encode(s).decode() for s in changed],
            [touched[order_id] for order_id in order_ids],
        )
        # Recomputed from the projection's own order rows, so re-applying is harmless.
        await conn.execute(
            f"""
            INSERT INTO {summaries} AS s
                (customer_id, draft, placed, cancelled, placed_value, last_activity)
            SELECT c.customer_id,
                   count(*) FILTER (WHERE c.status = 'draft'),
                   count(*) FILTER (WHERE c.status = 'placed'),
                   count(*) FILTER (WHERE c.status = 'cancelled'),
                   coalesce((SELECT jsonb_object_agg(v.currency, v.cents) FROM (
                       SELECT currency, sum(total_cents) AS cents FROM {orders}
                       WHERE customer_id = c.customer_id AND status = 'placed' GROUP BY currency
                   ) v), '{{}}'::jsonb),
                   max(c.updated_at)
            FROM {orders} c WHERE c.customer_id = ANY($1::text[])
            GROUP BY c.customer_id
            ON CONFLICT (customer_id) DO UPDATE SET
                draft = EXCLUDED.draft, placed = EXCLUDED.placed, cancelled = EXCLUDED.cancelled,
                placed_value = EXCLUDED.placed_value, last_activity = EXCLUDED.last_activity
            """,
            list({s.customer_id for s in changed}),
        )


class SalesByDay:
    """Per UTC day and currency: orders placed and cancelled, and their value."""

    name: str = "sales_by_day"
    tables: tuple[str, ...] = ("sales_orders", "sales_by_day")

    async def apply(self, conn: Connection, events: Sequence[RecordedEvent], suffix: str = "") -> None:
        orders, days = (f"{table}{suffix}" for table in self.tables)
        order_ids = list({e.stream_id for e in events})
        states = await _load_states(conn, orders, order_ids)
        totals: dict[tuple[object, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for recorded in events:
            before = states.get(recorded.stream_id, initial_state)
            states[recorded.stream_id] = evolve(before, recorded.event)
            key = (recorded.recorded_at.date(), before.currency)
            if isinstance(recorded.event, OrderPlaced):
                totals[key][0] += 1
                totals[key][1] += recorded.event.total_cents
            elif isinstance(recorded.event, OrderCancelled):
                totals[key][2] += 1
                totals[key][3] += before.total_cents
        changed = [states[order_id] for order_id in order_ids]
        await conn.execute(
            f"""
            INSERT INTO {orders} (order_id, currency, state)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[]::jsonb[])
            ON CONFLICT (order_id) DO UPDATE SET state = EXCLUDED.state
            """,
            order_ids,
            [s.currency for s in changed],
            [_state_encoder.encode(s).decode() for s in changed],
        )
        if not totals:
            return
        keys = list(totals)
        await conn.execute(
            f"""
            INSERT INTO {days} AS d (day, currency, placed, placed_cents, cancelled, cancelled_cents)
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


PROJECTIONS = {p.name: p for p in (CustomerSummaries(), SalesByDay())}
