"""axe-core on the page as it is shown: no violation of impact serious or critical.

`audit(page)` is called by the journeys after each page or state they show; the
`page` fixture also audits the last state of each test and checks that every
kind of page the test navigated to (its path, ids and query left out) was
audited at least once.
"""

from __future__ import annotations

import re
from typing import Any
from weakref import WeakKeyDictionary

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

BLOCKING = ("serious", "critical")
_AXE = Axe()
_ID = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_AUDITED: WeakKeyDictionary[Page, set[str]] = WeakKeyDictionary()


def kind_of(url: str) -> str:
    """The page a URL shows, as a path with its order ids as {id}: /orders/{id}/history."""
    path = re.sub(r"^[a-z]+://[^/]+", "", url).split("?", 1)[0].split("#", 1)[0]
    return _ID.sub("/{id}", path) or "/"


def audited(page: Page) -> set[str]:
    return _AUDITED.setdefault(page, set())


def blocking(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in violations if v.get("impact") in BLOCKING]


def report(url: str, violations: list[dict[str, Any]]) -> str:
    lines = [f"axe-core found {len(violations)} serious or critical violation(s) on {url}:"]
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            selector = " ".join(str(part) for part in node["target"])
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            lines.append(f"    {selector}: {summary}")
    return "\n".join(lines)


def audit(page: Page) -> None:
    """Fail with each offending rule, its impact and the selectors of its nodes, if any is found."""
    page.wait_for_load_state()
    results = _AXE.run(page)
    found = blocking(results.response["violations"])
    audited(page).add(kind_of(page.url))
    assert not found, report(page.url, found)
