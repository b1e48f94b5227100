"""GET /metrics: the Prometheus text format, for admins (a session, or an admin's API token).

A scraper sends `Authorization: Bearer <an admin's token>`. Under one
process the metrics are prometheus-client's default registry (with the
process's own figures); under `orders serve --workers N` each worker writes
its counts to files in a folder of its own (prometheus-client's multiprocess
mode, the folder made and removed by web/cli/multiprocess.py), and whichever
worker is asked adds them all up. The database's figures are read at each
scrape (store/metrics.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from litestar import Request, Response, get
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from store.metrics import SSE_CLIENTS, database_figures, pool_in_use
from store.replicas import Replicas
from web.access import ADMINISTER
from web.render_cache import RenderCache

SAMPLE_SECONDS = 1.0
T = TypeVar("T")
# Per worker (`pid` label under several): the page cache fills up to its bound (ORDERS_PAGE_CACHE_MB)
# and then stays there, which is what a soak's memory figures should be read against.
PAGE_CACHE_BYTES = Gauge(
    "orders_page_cache_bytes",
    "Rendered HTML this process keeps in its page cache (web/render_cache.py), estimated.",
    multiprocess_mode="liveall",
)
# Per worker: the memory blocks Python's allocator holds now (`sys.getallocatedblocks`, free to read).
# Resident memory rising while this stays flat is the C allocator's doing; a count that keeps rising
# is objects kept: a bounded cache still filling, or a leak.
PYTHON_BLOCKS = Gauge(
    "orders_python_allocated_blocks",
    "Memory blocks Python's allocator holds in this process now (sys.getallocatedblocks).",
    multiprocess_mode="liveall",
)


class _Figures(Collector):
    """Metric families read a moment ago, for one scrape."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


async def exposition(
    pool: asyncpg.Pool, cache: RenderCache, folder: str | None, replicas: Replicas | None = None
) -> bytes:
    """Every metric in the text format: the database's, the read replicas' as this process last
    found them, and this process's (or every worker's, from `folder`)."""
    sample(pool, cache)
    families = await database_figures(pool)
    if replicas is not None:
        families += replicas.figures()
    figures = generate_latest(_registry(_Figures(families)))
    if folder is None:
        return generate_latest(REGISTRY) + figures
    forget_dead_workers(folder)
    workers = CollectorRegistry()
    MultiProcessCollector(workers, path=folder)  # type: ignore[no-untyped-call]
    return generate_latest(workers) + figures


def _registry(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def forget_dead_workers(folder: str) -> None:
    """A worker killed without a clean exit leaves its live gauges (SSE clients, pool) behind: drop them."""
    for path in Path(folder).glob("gauge_live*_*.db"):
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit() and not _alive(int(pid)):
            mark_process_dead(int(pid), folder)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_stopped(folder: str | None) -> None:
    """On a clean shutdown, this worker's live gauges leave the sums."""
    if folder is not None:
        mark_process_dead(os.getpid(), folder)  # type: ignore[no-untyped-call]


def sample(pool: asyncpg.Pool, cache: RenderCache) -> None:
    """Record this process's pool use, page cache size and Python's allocated blocks now."""
    pool_in_use(pool)
    PAGE_CACHE_BYTES.set(cache.stats().bytes)
    PYTHON_BLOCKS.set(sys.getallocatedblocks())


async def sample_now_and_then(pool: asyncpg.Pool, cache: RenderCache) -> None:
    """`sample` every SAMPLE_SECONDS, so every worker's figures are fresh when another is scraped."""
    while True:
        sample(pool, cache)
        await asyncio.sleep(SAMPLE_SECONDS)


async def counted_stream(messages: AsyncIterator[T]) -> AsyncIterator[T]:
    """`messages`, counted among the open server-sent event streams while they are sent."""
    SSE_CLIENTS.inc()
    try:
        async for message in messages:
            yield message
    finally:
        SSE_CLIENTS.dec()


@get("/metrics", opt=ADMINISTER, include_in_schema=False)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    state = request.app.state
    body = await exposition(
        state.pool, state.render_cache, state.get("metrics_folder"), state.get("replicas")
    )
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
