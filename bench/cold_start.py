"""Cold start: seconds from `exec tier2gate serve` to the first `/readyz` 200, with a store that
holds 100,000 escalations and their history.

The store is grown from a real one (a bench run's database: escalations that went through
intake, approval and paging, with their timeline, jobs and stored deliveries) by copying every
row with a suffix on its keys until there are `target` escalations. Copied jobs are `done`, as
they would be in a long-lived store; the template's own rows keep their state.
"""

from __future__ import annotations

import math
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import HOST, PYTHON, free_port, serve_env, spawn

_COPIES = """
WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < :copies)
"""


def grow(template: Path, db: Path, target: int) -> dict[str, int]:
    with sqlite3.connect(f"file:{template}?mode=ro", uri=True) as src, \
            sqlite3.connect(db) as dst:
        src.backup(dst)
    with sqlite3.connect(db, isolation_level=None) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        (base,) = conn.execute("SELECT count(*) FROM escalations").fetchone()
        if base == 0:
            raise RuntimeError(f"{template} has no escalations to copy")
        copies = {"copies": math.ceil(target / base) - 1}
        conn.execute("BEGIN")
        # Every column, whatever migrations added: ids made unique, times moved back an hour
        # per copy (the figure columns' first event times with them).
        columns = [row[1] for row in conn.execute("PRAGMA table_info(escalations)")]
        moved = {"id": "id || '-' || n", "external_id": "external_id || '-' || n"}
        values = [moved.get(c) or (f"{c} - n * 3600" if c.endswith("_at")
                                   or c.startswith("first_") else c) for c in columns]
        conn.execute(_COPIES + f"""
            INSERT INTO escalations ({', '.join(columns)}) SELECT {', '.join(values)}
            FROM escalations, k""", copies)
        conn.execute(_COPIES + """
            INSERT INTO timeline (escalation_id, at, event, actor, details, once_key)
            SELECT escalation_id || '-' || n, at - n * 3600, event, actor, details, once_key
            FROM timeline, k""", copies)
        conn.execute(_COPIES + """
            INSERT INTO jobs (kind, key, payload, escalation_id, state, run_at, attempts,
                last_error, created_at, updated_at)
            SELECT kind, key || '-' || n, payload, escalation_id || '-' || n, 'done',
                run_at - n * 3600, attempts, last_error, created_at - n * 3600,
                updated_at - n * 3600
            FROM jobs, k""", copies)
        conn.execute(_COPIES + """
            INSERT INTO deliveries (source, delivery_id, event_type, received_at, body, state,
                escalation_id, note)
            SELECT source, delivery_id || '-' || n, event_type, received_at - n * 3600, body,
                state, escalation_id || '-' || n, note
            FROM deliveries, k""", copies)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("escalations", "timeline", "jobs", "deliveries")}


def cold_start(tmp: Path, template: Path, target: int = 100_000, runs: int = 3
               ) -> dict[str, Any]:
    db = tmp / "tier2gate.db"
    started = time.monotonic()
    counts = grow(template, db, target)
    grow_s = time.monotonic() - started
    times = []
    for n in range(runs):
        port = free_port()
        began = time.monotonic()
        proc = spawn(f"cold{n}", [PYTHON, "-m", "daemon", "serve"], tmp, tmp / f"cold{n}.log",
                     serve_env(tmp, port), port)
        try:
            proc.wait_http("/readyz", timeout_s=60)
            times.append(time.monotonic() - began)
        finally:
            proc.stop()
    return {"rows": counts, "db_mb": round(db.stat().st_size / 1e6, 1),
            "grow_s": round(grow_s, 1), "runs_s": [round(t, 3) for t in times],
            "median_s": statistics.median(times), "first_s": times[0], "host": HOST}
