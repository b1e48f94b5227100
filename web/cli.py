"""The `orders` command: serve the app, or apply the migrations."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from contextlib import ExitStack

from store.application import Orders
from store.database import (
    UNAVAILABLE,
    DatabaseUnavailable,
    connect_pool,
    data_dir,
    embedded_postgres,
    shared_secret,
)
from store.log.export import FORMATS, export
from store.log.integrity import report_lines, verify
from store.log.snapshots import every_from_environment
from store.migrations import migrate
from store.read.replay import READ_MODELS, RebuildInProgress, rebuild
from store.seed import seed
from web.ratelimit import parse_limit

DEFAULT_WRITE_LIMIT = "300/minute"


async def _prepare(url: str) -> tuple[list[str], str]:
    """Migrate the database and fetch the shared signing secret; one clear error if unreachable."""
    pool = await connect_pool(url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            applied = await migrate(conn)
        return applied, await shared_secret(pool, "csrf")
    finally:
        await pool.close()


def _database_url(stack: ExitStack) -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    folder = data_dir() / "postgres"
    print(f"orders: starting the embedded PostgreSQL in {folder}", file=sys.stderr)
    return stack.enter_context(embedded_postgres(folder))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orders", description="The event-sourced order service.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the web app (embedded PostgreSQL unless DATABASE_URL)")
    serve.add_argument("--host", default=os.environ.get("ORDERS_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("ORDERS_PORT", "8000")))
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    commands.add_parser("migrate", help="apply the database migrations and exit")
    replay = commands.add_parser("replay", help="rebuild read models from the event log")
    replay.add_argument(
        "names", nargs="*", metavar="NAME", help=f"read models (default: all): {', '.join(READ_MODELS)}"
    )
    seed_parser = commands.add_parser("seed", help="write realistic demo orders")
    seed_parser.add_argument("--orders", type=int, default=200, help="how many orders (default 200)")
    export_parser = commands.add_parser("export", help="write the event log as NDJSON or CSV")
    export_parser.add_argument("--format", choices=FORMATS, default="ndjson")
    export_parser.add_argument("--order", help="only this order's stream")
    export_parser.add_argument("--output", "-o", help="file to write (default: standard output)")
    commands.add_parser(
        "verify", help="check every stream's hash chain and the read model; exit 1 on any difference"
    )
    args = parser.parse_args(argv)
    if args.command == "replay" and (unknown := set(args.names) - set(READ_MODELS)):
        parser.error(f"unknown read model {', '.join(sorted(unknown))}; there are {', '.join(READ_MODELS)}")

    with ExitStack() as stack:
        try:
            url = _database_url(stack)
            applied, secret = asyncio.run(_prepare(url))
        except DatabaseUnavailable as error:
            print(f"orders: {error}", file=sys.stderr)
            return 2
        except Exception as error:  # the embedded server failed to start, most often
            print(f"orders: cannot start the database: {error}", file=sys.stderr)
            return 2
        if args.command == "migrate":
            print(f"orders: applied {', '.join(applied)}" if applied else "orders: nothing to apply")
            return 0
        if args.command == "replay":
            return asyncio.run(_replay(url, args.names or list(READ_MODELS)))
        if args.command == "seed":
            return asyncio.run(_seed(url, args.orders))
        if args.command == "export":
            return asyncio.run(_export(url, args.format, args.order, args.output))
        if args.command == "verify":
            return asyncio.run(_verify(url))
        return _serve(url, secret, args.host, args.port, args.workers)
    return 0


async def _verify(url: str) -> int:
    try:
        pool = await connect_pool(url, min_size=1, max_size=2)
        try:
            report = await verify(pool)
        finally:
            await pool.close()
    except (DatabaseUnavailable, *UNAVAILABLE) as error:
        print(f"orders verify: the database went away: {error}", file=sys.stderr)
        return 2
    for line in report_lines(report):
        print(f"orders verify: {line}" if not line.startswith(" ") else line)
    return 0 if report.ok else 1


async def _replay(url: str, names: list[str]) -> int:
    pool = await connect_pool(url, min_size=1, max_size=3)
    try:
        for name in names:
            bar = ProgressBar(name)
            try:
                done = await rebuild(pool, name, bar.update)
            except RebuildInProgress as error:
                print(f"orders: {error}", file=sys.stderr)
                return 1
            bar.finish(done)
    finally:
        await pool.close()
    return 0


async def _seed(url: str, orders: int) -> int:
    pool = await connect_pool(url, min_size=2, max_size=10)
    try:
        bar = ProgressBar("seeding", unit="commands")
        done = await seed(Orders(pool, snapshot_every=every_from_environment()), orders, bar.update)
        bar.finish(done)
    finally:
        await pool.close()
    return 0


async def _export(url: str, fmt: str, order: str | None, output: str | None) -> int:
    pool = await connect_pool(url, min_size=1, max_size=2)
    try:
        target = open(output, "wb") if output else os.fdopen(os.dup(sys.stdout.fileno()), "wb")  # noqa: ASYNC230, SIM115
        with target as out:
            async for chunk in export(pool, fmt, order):
                out.write(chunk)
    except BrokenPipeError:  # `orders export | head`: the reader has all it wants
        return 0
    finally:
        await pool.close()
    return 0


class ProgressBar:
    """`name [#####     ] 12,000/40,000 events  8,123 ev/s  3s left` on one terminal line."""

    def __init__(self, name: str, width: int = 30, unit: str = "events") -> None:
        self.name, self.width, self.unit = name, width, unit
        self.started = time.monotonic()

    async def update(self, done: int, total: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = done / elapsed
        filled = int(self.width * done / total) if total else self.width
        left = f"{(total - done) / rate:,.0f}s left" if rate and total > done else ""
        bar = "#" * filled
        line = f"{self.name:<20} [{bar:<{self.width}}] {done:,}/{total:,} {self.unit}  {rate:,.0f}/s  {left}"
        sys.stderr.write("\r" + line.ljust(100))
        sys.stderr.flush()

    def finish(self, done: int) -> None:
        elapsed = time.monotonic() - self.started
        sys.stderr.write(f"\r{self.name:<20} done: {done:,} {self.unit} in {elapsed:.1f}s".ljust(100) + "\n")


def _serve(url: str, secret: str, host: str, port: int, workers: int) -> int:
    import uvicorn

    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("ORDERS_SECRET", secret)
    # Served to people, writes are limited per client unless ORDERS_WRITE_LIMIT says otherwise.
    os.environ.setdefault("ORDERS_WRITE_LIMIT", DEFAULT_WRITE_LIMIT)
    try:
        parse_limit(os.environ["ORDERS_WRITE_LIMIT"])
    except ValueError as error:
        print(f"orders: ORDERS_WRITE_LIMIT: {error}", file=sys.stderr)
        return 2
    print(f"orders: serving on http://{host}:{port}", file=sys.stderr)
    uvicorn.run(
        "web.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        timeout_graceful_shutdown=3,
        access_log=False,
        loop="auto",
        http="auto",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
