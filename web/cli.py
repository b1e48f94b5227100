"""The `orders` command: serve the app, or apply the migrations."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from contextlib import ExitStack

from store.database import DatabaseUnavailable, connect_pool, data_dir, embedded_postgres, shared_secret
from store.migrations import migrate


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
    args = parser.parse_args(argv)

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
        return _serve(url, secret, args.host, args.port, args.workers)
    return 0


def _serve(url: str, secret: str, host: str, port: int, workers: int) -> int:
    import uvicorn

    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("ORDERS_SECRET", secret)
    print(f"orders: serving on http://{host}:{port}", file=sys.stderr)
    uvicorn.run(
        "web.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        loop="auto",
        http="auto",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
