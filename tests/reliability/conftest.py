"""Fault-injection tests: each is marked `reliability` (run them alone with -m reliability)."""

from __future__ import annotations

import pytest

from tests.reliability.figures import print_figures


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    print_figures(terminalreporter)
