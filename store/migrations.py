"""Numbered SQL migrations (store/migrations/NNN_name.sql), applied in order, once."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Any constant works; it only has to be the same in every process that migrates.
_MIGRATION_LOCK = 0x0_0D_E5_5EED


def migration_files() -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        number, _, name = path.stem.partition("_")
        found.append((int(number), name, path))
    return found


async def migrate(conn: asyncpg.Connection | PoolConnectionProxy) -> list[str]:
    """Apply the migrations this database lacks; return the names applied.

    Safe to run twice and from many processes at once: a transaction-level
    advisory lock serialises migrators, and each re-reads what is applied
    after taking it.
    """
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                number     integer     PRIMARY KEY,
                name       text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = {r["number"] for r in await conn.fetch("SELECT number FROM schema_migrations")}
        for number, name, path in migration_files():
            if number in done:
                continue
            await conn.execute(path.read_text())
            await conn.execute("INSERT INTO schema_migrations (number, name) VALUES ($1, $2)", number, name)
            applied_now.append(f"{number:03d}_{name}")
    return applied_now
