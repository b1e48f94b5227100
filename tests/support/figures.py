"""The figures the reliability and security tests measure, printed at the end of the run."""

from __future__ import annotations

import pytest

FIGURES: dict[str, str] = {}


def record(name: str, value: object) -> None:
    FIGURES[name] = str(value)


def print_figures(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("reliability and security figures")
    for name, value in FIGURES.items():
        terminalreporter.write_line(f"{name}: {value}")
    FIGURES.clear()
