"""`orders import FILE`: an export loads into an empty database as it was; a changed file is refused whole."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest

from store.log.event_store import EventStore
from store.log.integrity import verify
from tests.e2e.test_cli_backup import HEADS, catch_up, run_orders
from tests.support.databases import fresh_database, open_pool
from tests.support.tampering import orders

AS_EXPORTED = """
SELECT position, event_id, stream_id, version, recorded_at, metadata::text, hash FROM events ORDER BY position
"""


async def exported(database_url: str, folder: Path) -> list[str]:
    code, out = await run_orders(
        "export", "-o", str(folder / "log.ndjson"), env={"DATABASE_URL": database_url}
    )
    assert code == 0, out
    return (folder / "log.ndjson").read_text().splitlines()


async def import_into(database_url: str, lines: list[str], folder: Path) -> tuple[int, str]:
    (folder / "in.ndjson").write_text("".join(line + "\n" for line in lines))
    return await run_orders("import", str(folder / "in.ndjson"), env={"DATABASE_URL": database_url})


async def nothing_written(url: str) -> None:
    async with open_pool(url, max_size=1) as pool:
        for table in ("events", "commands", "order_read_model"):
            assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 0, table


async def test_an_export_imported_into_an_empty_database_is_the_same_log(
    database_url: str,
    pool: asyncpg.Pool,
    store: EventStore,
    server_url: str,
    template_database: str,
    tmp_path: Path,
) -> None:
    await orders(store, 5)
    lines = await exported(database_url, tmp_path)

    async with fresh_database(server_url, "orders_imported", template_database) as url:
        code, out = await import_into(url, lines, tmp_path)

        assert code == 0, out
        assert "orders import: 18 events of 5 orders" in out
        async with open_pool(url, max_size=2) as imported:
            assert await imported.fetch(HEADS) == await pool.fetch(HEADS)
            assert await imported.fetch(AS_EXPORTED) == await pool.fetch(AS_EXPORTED)
            assert (await verify(imported, record=False)).ok
            assert await imported.fetchval("SELECT count(*) FROM customer_orders") == 5  # replayed
            # The log goes on after the imported positions; it knows the imported commands; the
            # customers were told of the imported history where it happened, and only hear of what
            # happens from now on.
            command_id = json.loads(lines[-1])["metadata"]["command_id"]
            known = await EventStore(imported).find_command(UUID(command_id))
            assert known is not None
            assert known.duplicate
            await orders(EventStore(imported), 2)  # a draft, and a placed order
            positions = await imported.fetchval("SELECT array_agg(position) FROM events WHERE position > 18")
            assert positions == list(range(19, 26))
            await catch_up(url, imported)
            assert await imported.fetchval("SELECT array_agg(cause_position) FROM outbox") == [25]


def change_amount(lines: list[str]) -> tuple[list[str], int]:
    number = next(n for n, line in enumerate(lines) if '"ItemAdded"' in line)
    event = json.loads(lines[number])
    event["data"]["unit_price_cents"] = 1
    return [*lines[:number], json.dumps(event, separators=(",", ":")), *lines[number + 1 :]], number + 1


def swap_in_a_stream(lines: list[str]) -> tuple[list[str], int]:
    """A stream's versions 2 and 3 swapped, each line as it was: version 3 no longer follows version 1."""
    first = next(n for n, line in enumerate(lines) if '"version":2,' in line)
    second = next(n for n, line in enumerate(lines) if '"version":3,' in line)
    swapped = list(lines)
    swapped[first], swapped[second] = lines[second], lines[first]
    return swapped, first + 1


def swap_two_orders(lines: list[str]) -> tuple[list[str], int]:
    """The last event of the first order and the first of the second swapped: each stream still in order."""
    first = json.loads(lines[0])["stream_id"]
    last = max(n for n, line in enumerate(lines) if json.loads(line)["stream_id"] == first)
    swapped = list(lines)
    swapped[last], swapped[last + 1] = lines[last + 1], lines[last]
    return swapped, last + 2


def delete_a_line(lines: list[str]) -> tuple[list[str], int]:
    """A stream's version 2 gone: its version 3, now on the line version 2 had, no longer follows."""
    number = next(n for n, line in enumerate(lines) if '"version":2,' in line)
    third = next(n for n, line in enumerate(lines) if '"version":3,' in line)
    return [*lines[:number], *lines[number + 1 :]], third


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        (change_amount, "the hash does not match the event and the hash before it"),
        (swap_in_a_stream, "the lines are out of order"),
        (swap_two_orders, "comes after position"),
        (delete_a_line, "goes from version 1 to version 3: an event is missing"),
    ],
)
async def test_a_changed_export_is_refused_at_its_line_and_nothing_is_written(
    database_url: str,
    store: EventStore,
    server_url: str,
    template_database: str,
    tmp_path: Path,
    tamper: object,
    says: str,
) -> None:
    await orders(store, 3)
    lines, line = tamper(await exported(database_url, tmp_path))  # type: ignore[operator]

    async with fresh_database(server_url, "orders_imported", template_database) as url:
        code, out = await import_into(url, lines, tmp_path)

        assert code == 1
        assert f"orders import: refused, nothing written: {tmp_path / 'in.ndjson'}: line {line}: " in out
        assert says in out
        await nothing_written(url)


async def test_an_import_into_a_database_that_holds_events_is_refused(
    database_url: str, pool: asyncpg.Pool, store: EventStore, tmp_path: Path
) -> None:
    await orders(store, 2)
    lines = await exported(database_url, tmp_path)
    before = await pool.fetch(AS_EXPORTED)

    code, out = await import_into(database_url, lines, tmp_path)

    assert code == 1
    assert "the database already holds events; import only into an empty database" in out
    assert await pool.fetch(AS_EXPORTED) == before


async def test_a_line_that_is_no_event_is_refused_by_its_number(
    database_url: str, store: EventStore, server_url: str, template_database: str, tmp_path: Path
) -> None:
    await orders(store, 1)
    lines = await exported(database_url, tmp_path)

    async with fresh_database(server_url, "orders_imported", template_database) as url:
        code, out = await import_into(url, [*lines[:2], '{"position": "two"}', *lines[2:]], tmp_path)

        assert code == 1
        assert "line 3: not an exported event" in out
        await nothing_written(url)
