"""What changed between two versions of an order, set out line by line."""

from __future__ import annotations

from msgspec import Struct

from domain.order import Line, Order


class LineChange(Struct, frozen=True):
    sku: str
    name: str
    kind: str  # "added", "removed" or "changed"
    quantity_before: int
    quantity_after: int
    price_before: int
    price_after: int

    @property
    def total_before(self) -> int:
        return self.quantity_before * self.price_before

    @property
    def total_after(self) -> int:
        return self.quantity_after * self.price_after


class OrderDiff(Struct, frozen=True):
    version_before: int
    version_after: int
    status_before: str
    status_after: str
    total_before: int
    total_after: int
    lines: list[LineChange]

    @property
    def empty(self) -> bool:
        return not self.lines and self.status_before == self.status_after

    @property
    def total_change(self) -> int:
        return self.total_after - self.total_before


def _change(sku: str, before: Line | None, after: Line | None) -> LineChange | None:
    if before == after:
        return None
    line = after or before
    name = line.name if line is not None else sku
    kind = "added" if before is None else "removed" if after is None else "changed"
    return LineChange(
        sku,
        name,
        kind,
        before.quantity if before else 0,
        after.quantity if after else 0,
        before.unit_price_cents if before else 0,
        after.unit_price_cents if after else 0,
    )


def diff(before: Order, after: Order) -> OrderDiff:
    """Lines added, removed and changed (quantity or price), and the status and total change."""
    skus = [line.sku for line in before.lines]
    skus += [line.sku for line in after.lines if before.line(line.sku) is None]
    changes = [_change(sku, before.line(sku), after.line(sku)) for sku in skus]
    return OrderDiff(
        before.version,
        after.version,
        before.status,
        after.status,
        before.total_cents,
        after.total_cents,
        [change for change in changes if change is not None],
    )
