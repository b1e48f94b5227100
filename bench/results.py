"""Rows of medians beside their baselines, the targets they meet or miss, and the table they print as."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from bench.lab import Lab, Sample, Trial


@dataclass(frozen=True)
class Target:
    """at_least / at_most: the ratio to the baseline; below: the figure itself."""

    kind: Literal["at_least", "at_most", "below"]
    value: float

    def met(self, row: Row) -> bool:
        if self.kind == "below":
            return row.median < self.value
        ratio = row.ratio
        assert ratio is not None
        return ratio >= self.value if self.kind == "at_least" else ratio <= self.value

    def text(self, unit: str) -> str:
        if self.kind == "below":
            return f"< {self.value:g} {unit}"
        return f"{'≥' if self.kind == 'at_least' else '≤'} {self.value:g}×"


@dataclass
class Row:
    """One figure of the subject beside one baseline, over every round."""

    key: str
    test: str
    subject: str
    unit: str
    values: list[float]
    baseline: str | None = None
    baseline_values: list[float] = field(default_factory=list)
    target: Target | None = None
    # Figures shown beside the subject's (p50, p99 …): name -> (values per round, unit).
    extra: dict[str, tuple[list[float], str]] = field(default_factory=dict)
    profile: str = ""
    why: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def baseline_median(self) -> float | None:
        return statistics.median(self.baseline_values) if self.baseline_values else None

    @property
    def ratio(self) -> float | None:
        base = self.baseline_median
        return None if not base else self.median / base

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "info"
        return "met" if self.target.met(self) else "MISSED"

    def extra_text(self) -> str:
        return ", ".join(
            f"{name} {fmt(statistics.median(values))} {unit}" for name, (values, unit) in self.extra.items()
        )


def values(samples: Sequence[Sample]) -> list[float]:
    return [sample.value for sample in samples]


def extras(samples: Sequence[Sample], name: str) -> list[float]:
    return [sample.extra[name] for sample in samples if name in sample.extra]


def fmt(number: float | None) -> str:
    if number is None:
        return "–"
    if abs(number) >= 100:
        return f"{number:,.0f}"
    if abs(number) >= 10:
        return f"{number:.1f}"
    return f"{number:.2f}"


def table(rows: Sequence[Row]) -> list[list[str]]:
    header = ["#", "test", "figure (median)", "baseline (median)", "ratio", "target", "verdict"]
    body = [header]
    for row in rows:
        figure = f"{row.subject}: {fmt(row.median)} {row.unit}"
        if row.extra:
            figure += f" ({row.extra_text()})"
        baseline = f"{row.baseline}: {fmt(row.baseline_median)} {row.unit}" if row.baseline else "–"
        ratio = f"{row.ratio:.2f}×" if row.ratio is not None else "–"
        target = row.target.text(row.unit) if row.target else "–"
        body.append([row.key, row.test, figure, baseline, ratio, target, row.verdict])
    return body


def plain_table(rows: Sequence[Row]) -> str:
    cells = table(rows)
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(rows: Sequence[Row]) -> str:
    cells = table(rows)
    lines = ["| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in cells]
    lines.insert(1, "|" + "---|" * len(cells[0]))
    return "\n".join(lines)


def rounds_table(rows: Sequence[Row]) -> str:
    """Every round's figure, so a reader sees the spread behind each median."""
    lines = ["| # | subject, each round | baseline, each round | unit |", "|---|---|---|---|"]
    for row in rows:
        subject = ", ".join(fmt(v) for v in row.values)
        baseline = ", ".join(fmt(v) for v in row.baseline_values) or "–"
        lines.append(f"| {row.key} | {subject} | {baseline} | {row.unit} |")
    return "\n".join(lines)


async def explain(lab: Lab, row: Row, subject: Trial, why: str, *, kind: str = "in process") -> None:
    """For a missed target: a profile of the subject, and what would close the gap."""
    if row.verdict != "MISSED":
        return
    row.why = why
    if not lab.wants_profile(kind):
        row.profile = "(not profiled in a quick run: one profile of each kind only)"
        return
    print(f"    {row.key} missed its target; profiling the subject", flush=True)
    row.profile = (await subject(True)).profile
