"""App servers forked on demand from a process that has already imported the app.

A kill -9 test restarts the app a hundred times; a fresh interpreter would
spend about two seconds importing Litestar and building the app before each
start. This process imports and builds it once (web.cli:app_factory, as
`orders serve` does), holds the listening socket, and forks a server on each
`spawn` line read from stdin: the child runs the app's start-up (pool,
migrations, subscriptions) and serves it with uvicorn on the inherited socket.
Connections that arrive while no child is alive wait in the socket's backlog.

Protocol: prints the port once, then the pid of each child it spawns.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys

import uvicorn
from litestar import Litestar

from web.cli import app_factory


def configure(app: Litestar) -> uvicorn.Config:
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        ws="none",
        timeout_graceful_shutdown=1,
    )
    config.load()  # imports the protocol classes once, here
    return config


def reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def main() -> None:
    config = configure(app_factory())  # built before any fork; nothing runs until start-up
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    print(sock.getsockname()[1], flush=True)
    for line in sys.stdin:
        reap()
        if line.strip() != "spawn":
            continue
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                uvicorn.Server(config).run(sockets=[sock])
            except BaseException:
                code = 1
            os._exit(code)
        print(pid, flush=True)
    reap()


if __name__ == "__main__":
    main()
