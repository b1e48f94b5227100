"""`orders serve`: uvicorn, and one graceful stop for SIGTERM and SIGINT alike.

A stop signal (SIGTERM from systemd, Docker or Kubernetes; SIGINT from Ctrl-C), in order:

1. the app drains at once (`StopSignals`): every live stream ends with a retry hint
   (web/live), so no open SSE connection holds the stop up, and the app's leaders stop,
   closing their lock connections so another instance takes their jobs over (web/app);
2. uvicorn closes its listening socket and lets in-flight requests finish, for at most
   the grace period (ORDERS_SHUTDOWN_SECONDS, `--grace`), then cancels what is left;
3. the app's shutdown stops its other jobs and closes its pool (web/app);
4. last, `orders serve` leaves the embedded PostgreSQL (web/cli/startup), which stops
   unless another `orders` process still uses the same folder.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from web.live import draining

if TYPE_CHECKING:
    from litestar import Litestar

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run(*, host: str, port: int, workers: int, grace: float) -> None:
    """Serve `web.cli:app_factory` until a stop signal, then stop as the module says."""
    uvicorn.run(
        "web.cli:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        timeout_graceful_shutdown=grace,  # type: ignore[arg-type]  # uvicorn types it int; a float works
        access_log=False,
        loop="auto",
        http="auto",
    )


class StopSignals:
    """Start-up and shutdown hooks: a stop signal tells the app it is draining before uvicorn acts.

    uvicorn handles SIGINT and SIGTERM itself while it serves (the handlers it installs
    before the app's start-up, and puts back after). It has no hook for the moment it
    begins to stop, and waits for open connections before the app's shutdown runs, so
    `watch` wraps each handler: set the app's draining event, then let uvicorn's handler
    do its part. `restore` puts uvicorn's handlers back when the app shuts down.
    """

    def __init__(self) -> None:
        self.previous: dict[int, Callable[[int, FrameType | None], Any]] = {}

    def watch(self, app: Litestar) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach the main thread only; a server run elsewhere is stopped otherwise
        loop = asyncio.get_running_loop()
        stopping = draining(app)
        for number in STOP_SIGNALS:
            servers = signal.getsignal(number)
            if callable(servers):
                self.previous[number] = servers
                signal.signal(number, _draining_first(loop, stopping, servers))

    def restore(self) -> None:
        while self.previous:
            signal.signal(*self.previous.popitem())


def _draining_first(
    loop: asyncio.AbstractEventLoop, stopping: asyncio.Event, then: Callable[[int, FrameType | None], Any]
) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        # A signal handler runs between two bytecodes, maybe inside the loop's own code: hand it over.
        if not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        then(signum, frame)

    return handler
