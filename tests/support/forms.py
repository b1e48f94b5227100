"""An order page read as raw HTML: the version its add-item form holds, the problem it shows."""

from __future__ import annotations

import re

ADD_FORM_VERSION = re.compile(
    r'<form class="add-item"[^>]*>.*?name="expected_version" value="(\d+)"', re.DOTALL
)
PROBLEM = re.compile(r'<p class="problem" role="alert" id="[^"]+">([^<]+)</p>')
FRESH_IDS = re.compile(r'name="command_id" value="[0-9a-f-]+"')


def seen_version(html: str) -> int:
    """The version the add-item form of an order page holds (what its next post expects)."""
    found = ADD_FORM_VERSION.search(html)
    assert found, "the answer has no add-item form"
    return int(found.group(1))


def problem(html: str) -> str | None:
    found = PROBLEM.search(html)
    return found.group(1) if found else None


def without_fresh_ids(html: str) -> str:
    """The page as a person reads it: each rendered form carries a new command id, nothing else differs."""
    return FRESH_IDS.sub('name="command_id" value=""', html)
