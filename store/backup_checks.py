"""What a restore proves before it says "restored": the log is the one backed up, and sound.

1. `orders verify`'s checks (store/log/integrity.py): hash chains, versions,
   commands, order_read_model against a fold.
2. Every stream's head (version and hash), the event count and the last
   position equal the manifest's, recorded in the backup's own snapshot.
3. Each read model equals a replay of the log: the projections first catch
   up from their restored checkpoints (they may have lagged when the backup
   was taken), then their tables' contents are compared with a rebuild's.
"""

from __future__ import annotations

import time

import msgspec

from store.backup import HEADS, Head, Manifest
from store.database import connect_pool
from store.log.integrity import verify
from store.read.projections import PROJECTIONS
from store.read.replay import CUSTOMERS, ORDER_READ_MODEL, READ_MODELS, rebuild
from store.read.subscriptions import SubscriptionRunner

SHOWN = 20


class Check(msgspec.Struct, frozen=True):
    what: str
    differences: list[str]

    @property
    def ok(self) -> bool:
        return not self.differences


# A digest of a table's rows that does not depend on their order.
_CONTENTS = """
SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0) FROM {table} t
"""


async def check_restored(url: str, manifest: Manifest) -> list[Check]:
    pool = await connect_pool(url, min_size=1, max_size=3)
    try:
        started = time.monotonic()
        report = await verify(pool)
        checks = [
            Check(
                f"verify: {report.streams:,} streams, {report.events:,} events ({_since(started)})",
                [f"{f.kind} {f.stream_id}: {f.detail}" for f in report.findings],
            )
        ]
        heads = {r[0]: Head(r[1], r[2]) for r in await pool.fetch(HEADS)}
        checks.append(
            Check(
                f"hash heads of {len(manifest.streams):,} orders equal the manifest's",
                _head_differences(manifest.streams, heads),
            )
        )
        count, last = await pool.fetchrow("SELECT count(*), coalesce(max(position), 0) FROM events") or (0, 0)
        checks.append(
            Check(
                f"{manifest.events:,} events up to position {manifest.last_position:,}",
                [f"the log has {count:,} events up to position {last:,}"]
                if (count, last) != (manifest.events, manifest.last_position)
                else [],
            )
        )
        for projection in PROJECTIONS.values():
            runner = SubscriptionRunner(url, pool, projection)
            while await runner.catch_up():
                pass
        for name in READ_MODELS:
            started = time.monotonic()
            tables = (name,) if name in (ORDER_READ_MODEL, CUSTOMERS) else PROJECTIONS[name].tables
            before = {t: tuple(await pool.fetchrow(_CONTENTS.format(table=t)) or ()) for t in tables}
            await rebuild(pool, name)
            after = {t: tuple(await pool.fetchrow(_CONTENTS.format(table=t)) or ()) for t in tables}
            checks.append(
                Check(
                    f"{name} equals a replay ({_since(started)})",
                    [
                        f"{t} had {before[t][0]:,} rows, a replay gives {after[t][0]:,}"
                        + ("" if before[t][0] != after[t][0] else " with other contents")
                        for t in tables
                        if before[t] != after[t]
                    ],
                )
            )
    finally:
        await pool.close()
    return checks


def _since(started: float) -> str:
    return f"{time.monotonic() - started:.1f} s"


def _head_differences(expected: dict[str, Head], found: dict[str, Head]) -> list[str]:
    out = [
        f"{s}: missing; the backup had it at version {h.version}"
        for s, h in expected.items()
        if s not in found
    ]
    out += [f"{s}: not in the backup (version {h.version})" for s, h in found.items() if s not in expected]
    out += [
        f"{s}: version {found[s].version} hash {found[s].hash[:16]}…; the backup had version {h.version} "
        f"hash {h.hash[:16]}…"
        for s, h in expected.items()
        if s in found and found[s] != h
    ]
    return out


def report_lines(checks: list[Check]) -> list[str]:
    lines = []
    for check in checks:
        lines.append(f"  {'ok' if check.ok else len(check.differences):<5} {check.what}")
        lines += [f"        {d}" for d in check.differences[:SHOWN]]
        if len(check.differences) > SHOWN:
            lines.append(f"        … and {len(check.differences) - SHOWN:,} more")
    problems = sum(len(c.differences) for c in checks)
    lines.append(f"{problems:,} difference{'s' * (problems != 1)} found" if problems else "no differences")
    return lines
