"""A new benchmark run rewrites its own sections of RESULTS.md and keeps the notes people added."""

from __future__ import annotations

from bench.report import with_notes

PREVIOUS = """# Benchmark results

## Medians

old table

## Missed targets

### 1a. old miss

```
## not a heading: a line of a profile
```

## Issue 18: append, load and replay

before and after figures

## Signed in

a soak
"""


def test_the_runners_sections_are_replaced_and_added_notes_kept_in_order() -> None:
    written = "# Benchmark results\n\n## Medians\n\nnew table\n\n## What each test does\n\nmethod\n"

    result = with_notes(PREVIOUS, written)

    assert result.startswith(written.rstrip("\n"))
    for gone in ("old table", "old miss", "not a heading"):
        assert gone not in result
    headings = [line for line in result.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Medians",
        "## What each test does",
        "## Issue 18: append, load and replay",
        "## Signed in",
    ]
    assert result.endswith("a soak\n")
