"""Child process of the read-side bench: stream the whole NDJSON export, report peak RSS growth.

Usage: python -m bench.read_side_export DATABASE_URL  (prints one JSON line)
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from store.database import connect_pool
from store.log.export import export


def _hwm_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


async def main(url: str) -> None:
    pool = await connect_pool(url, min_size=1, max_size=2)
    try:
        before = _hwm_kb()
        started = time.perf_counter()
        size = lines = 0
        async for chunk in export(pool, "ndjson"):
            size += len(chunk)
            lines += chunk.count(b"\n")
        seconds = time.perf_counter() - started
        after = _hwm_kb()
    finally:
        await pool.close()
    print(
        json.dumps(
            {
                "events": lines,
                "bytes": size,
                "seconds": seconds,
                "hwm_before_kb": before,
                "hwm_after_kb": after,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
