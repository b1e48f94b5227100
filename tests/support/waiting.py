"""Waiting for what happens a moment later: a subscription catching up, a runner delivering."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 15.0, interval: float = 0.05
) -> Any:
    """Wait until `check()` returns something true, and return it; fail after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, f"still not true after {timeout} s: {result!r}"
        await asyncio.sleep(interval)
