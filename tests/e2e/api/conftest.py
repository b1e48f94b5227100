"""The /api tests that share one app and one database per module.

Each test makes its own orders and reads only deltas of the event count, so
`api` and `ledger` here are the module's (tests/conftest.py: module_api,
module_ledger) rather than a fresh app and database per test.
"""

from __future__ import annotations

import pytest

from tests.support.api import Api
from tests.support.ledger import Ledger


@pytest.fixture
def api(module_api: Api) -> Api:
    return module_api


@pytest.fixture
def ledger(module_ledger: Ledger) -> Ledger:
    return module_ledger
