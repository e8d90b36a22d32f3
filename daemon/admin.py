"""Operator commands that work on the store directly: migrate, export/import, jobs, prune."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

from daemon.clock import iso
from daemon.settings import Settings, prune_cutoffs
from daemon.store import JobState, Store, StoreUnavailable, open_store, transfer


async def _with_store(settings: Settings, work: Callable[[Store], Awaitable[int]],
                      *, existing: bool = False) -> int:
    """`existing`: a command that only looks at what is stored must not create an empty SQLite
    file (and answer "no jobs") when the path is wrong; it refuses like `report`."""
    store = open_store(settings.database_url)
    try:
        if existing and store.backend.dialect == "sqlite":
            store.backend.check()
        await store.open()
    except StoreUnavailable as exc:
        print(f"tier2gate: {exc}", file=sys.stderr)
        return 1
    try:
        return await work(store)
    finally:
        await store.close()


def migrate(settings: Settings) -> int:
    async def work(store: Store) -> int:
        print(f"schema is up to date ({store.backend.dialect})")
        return 0

    return asyncio.run(_with_store(settings, work))


def export(settings: Settings, path: Path) -> int:
    async def work(store: Store) -> int:
        counts = {}
        with path.open("w", encoding="utf-8") as out:
            for table in transfer.table_order():
                rows = await store.backend.run(partial(transfer.dump_table, table))
                for row in rows:
                    out.write(json.dumps({"table": table, "row": row}, sort_keys=True) + "\n")
                counts[table] = len(rows)
        print(f"exported {_counts(counts)} to {path}", file=sys.stderr)
        return 0

    return asyncio.run(_with_store(settings, work))


def import_(settings: Settings, path: Path) -> int:
    try:
        tables = _read_export(path)
    except (OSError, ValueError, KeyError) as exc:
        print(f"tier2gate: cannot read {path}: {exc}", file=sys.stderr)
        return 1

    async def work(store: Store) -> int:
        dialect = store.backend.dialect
        try:
            await store.backend.run(transfer.require_empty)
        except transfer.NotEmpty as exc:
            print(f"tier2gate: {exc}", file=sys.stderr)
            return 1
        counts = {}
        for table in transfer.table_order():
            rows = tables.get(table, [])
            counts[table] = await store.backend.run(
                partial(transfer.load_rows, table, rows, dialect))
        await store.backend.run(transfer.refresh_figures)
        print(f"imported {_counts(counts)} from {path}", file=sys.stderr)
        return 0

    return asyncio.run(_with_store(settings, work))


def _read_export(path: Path) -> dict[str, list[dict[str, object]]]:
    tables: dict[str, list[dict[str, object]]] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                table = record["table"]
            except (json.JSONDecodeError, TypeError, KeyError):
                raise ValueError(f"line {number} is not an export record") from None
            if table not in transfer.TABLES:
                raise ValueError(f"line {number}: unknown table {table!r}")
            tables.setdefault(table, []).append(record["row"])
    return tables


def jobs(settings: Settings, state: str, limit: int) -> int:
    async def work(store: Store) -> int:
        found = await store.list_jobs(JobState(state), limit)
        print(f"{'id':>6}  {'kind':<20} {'escalation':<14} {'attempts':>8}  {'run at':<20} error")
        for job in found:
            print(f"{job.id:>6}  {job.kind:<20} {job.escalation_id or '':<14} {job.attempts:>8}"
                  f"  {iso(job.run_at):<20} {job.last_error[:80]}")
        return 0

    return asyncio.run(_with_store(settings, work, existing=True))


def retry_job(settings: Settings, job_id: int) -> int:
    async def work(store: Store) -> int:
        now = store.clock.now()
        if await store.backend.run(lambda: transfer.retry_dead_job(job_id, now)):
            print(f"job {job_id} requeued; a running daemon picks it up within a second")
            return 0
        print(f"tier2gate: job {job_id} is not dead-lettered (see `tier2gate jobs`)",
              file=sys.stderr)
        return 1

    return asyncio.run(_with_store(settings, work, existing=True))


def prune(settings: Settings, dry_run: bool) -> int:
    """What the periodic `prune` job does, now: safe beside running daemons (short batches)."""
    async def work(store: Store) -> int:
        cutoffs = prune_cutoffs(settings.retention, store.clock.now())
        counts = await store.prune(*cutoffs, dry_run=dry_run)
        verb = "would remove" if dry_run else "removed"
        kept = "" if cutoffs[2] is not None else " (escalations are kept: retention." \
            "escalations_days is 0)"
        print(f"{verb} {_counts(counts)}{kept}")
        return 0

    return asyncio.run(_with_store(settings, work))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {table}" for table, n in counts.items())
