"""`uv run --group bench python -m bench [--quick]`: run the benchmarks, print the table, write RESULTS.md."""

from __future__ import annotations

import sys

from bench.runner import main

if __name__ == "__main__":
    sys.exit(main())
