"""Sales by day, with a bar chart drawn on the server as SVG (no chart library)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template

from store.application import Orders
from store.read.read_model import DaySales
from web.access import READ_LOG

WIDTH, HEIGHT, MARGIN = 720, 240, 40


class Bar(msgspec.Struct, frozen=True):
    x: float
    y: float
    width: float
    height: float
    kind: str
    label: str


class Chart(msgspec.Struct, frozen=True):
    currency: str
    bars: list[Bar]
    ticks: list[tuple[float, str]]
    days: list[tuple[float, str]]
    rows: list[DaySales]


def chart(currency: str, rows: list[DaySales], first: date, days: int) -> Chart:
    """Placed and cancelled value per day, side by side, on a shared scale."""
    by_day = {row.day: row for row in rows}
    top = max([max(r.placed_cents, r.cancelled_cents) for r in rows] + [100])
    slot = (WIDTH - MARGIN) / days
    scale = (HEIGHT - MARGIN) / top
    bars, labels = [], []
    for i in range(days):
        day = first + timedelta(days=i)
        x = MARGIN + i * slot
        if i % max(1, days // 6) == 0:
            labels.append((x + slot / 2, day.strftime("%d %b")))
        row = by_day.get(day)
        if row is None:
            continue
        for offset, kind, cents, count in (
            (0.1, "placed", row.placed_cents, row.placed),
            (0.5, "cancelled", row.cancelled_cents, row.cancelled),
        ):
            height = cents * scale
            label = f"{day.isoformat()}: {count} {kind}, {cents / 100:,.2f} {currency}"
            bars.append(Bar(x + slot * offset, HEIGHT - MARGIN / 2 - height, slot * 0.4, height, kind, label))
    ticks = [(HEIGHT - MARGIN / 2 - top * f * scale, f"{top * f / 100:,.0f}") for f in (0, 0.5, 1)]
    return Chart(currency, bars, ticks, labels, sorted(rows, key=lambda r: r.day, reverse=True))


class SalesController(Controller):
    path = "/sales"
    opt = READ_LOG

    @get("/")
    async def sales(self, orders: NamedDependency[Orders], days: FromQuery[int] = 30) -> Template:
        days = min(max(days, 7), 366)
        rows = await orders.sales_by_day(days)
        first = datetime.now(UTC).date() - timedelta(days=days - 1)
        per_currency: dict[str, list[DaySales]] = defaultdict(list)
        for row in rows:
            per_currency[row.currency].append(row)
        charts = [chart(c, per_currency[c], first, days) for c in sorted(per_currency)]
        return Template(
            "sales.html",
            context={"charts": charts, "days": days, "width": WIDTH, "height": HEIGHT, "margin": MARGIN},
        )
