"""Copying a whole store, row for row: the SQLite -> PostgreSQL path that loses nothing.

`export` writes JSON lines `{"table": ..., "row": {...}}` (bodies base64) in an order that
satisfies foreign keys; `import` refuses a non-empty store, so a half-done move is never merged
into live data by accident.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from daemon.domain.teams import DEFAULT_TEAM
from daemon.store.migrations import refresh_statement
from daemon.store.units import Sql, Stmt, Unit, refresh_due_reaches

TABLES: dict[str, tuple[str, ...]] = {
    "escalations": ("id", "source", "external_id", "state", "outcome", "data", "version",
                    "opened_at", "created_at", "updated_at", "attention",
                    "drill", "team"),
    "timeline": ("id", "escalation_id", "at", "event", "actor", "details", "once_key"),
    "ee_work": ("escalation_id", "rotation", "opened_at", "offered_at", "owner", "assigned_at",
                "outcome", "engineering", "is_open", "drill"),
    "deliveries": ("id", "source", "delivery_id", "event_type", "received_at", "body", "state",
                   "escalation_id", "note"),
    "jobs": ("id", "kind", "key", "payload", "escalation_id", "state", "run_at", "attempts",
             "last_error", "lease_owner", "lease_until", "created_at", "updated_at"),
}
_ORDER_BY = {"escalations": "created_at, id", "ee_work": "escalation_id"}
_ADDED_LATER = {("escalations", "attention"): 0, ("escalations", "drill"): 0,
                ("escalations", "team"): DEFAULT_TEAM}
"""Columns newer than some exports, with the value an older export means."""


class NotEmpty(Exception):
    """Import target already holds data."""


def dump_table(table: str) -> Unit[list[dict[str, Any]]]:
    columns = TABLES[table]
    order = _ORDER_BY.get(table, "id")
    rows = yield Stmt(Sql.of(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}"))
    return [_encode(dict(zip(columns, tuple(row), strict=True))) for row in rows]


def _encode(row: dict[str, Any]) -> dict[str, Any]:
    if isinstance(row.get("body"), bytes | memoryview):
        row["body"] = base64.b64encode(bytes(row["body"])).decode("ascii")
    return row


def load_rows(table: str, rows: list[dict[str, Any]], dialect: str) -> Unit[int]:
    columns = TABLES[table]
    marks = ", ".join("?" for _ in columns)
    insert = Sql.of(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})")
    for row in rows:
        values = dict(row)
        if table == "deliveries":
            values["body"] = base64.b64decode(values["body"])
        yield Stmt(insert, tuple(values[c] if c in values else _ADDED_LATER[table, c]
                                 for c in columns))
    if dialect == "postgres" and table not in ("escalations", "ee_work") and rows:
        yield Stmt(Sql.of(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                          f" (SELECT max(id) FROM {table}))"))
    return len(rows)


def refresh_figures() -> Unit[None]:
    """Recompute the figure columns every escalation carries (migrations 0011, 0012 and
    0014) and who its pages reached (`tier2_reaches`) from its data and timeline: an export
    leaves them out, since they follow from the rows it holds."""
    for statement in _REFRESH:
        yield Stmt(statement)
    while (yield from refresh_due_reaches(_REACHES_BATCH)):
        pass


_REFRESH = tuple(Sql(refresh_statement("sqlite", name), refresh_statement("postgres", name))
                 for name in ("0011_figures.sql", "0012_kpi_columns.sql", "0014_load_facts.sql"))
_REACHES_BATCH = 500  # escalations per statement batch; the import is one transaction anyway


def require_empty() -> Unit[None]:
    for table in TABLES:
        rows = yield Stmt(Sql.of(f"SELECT count(*) AS n FROM {table}"))
        if int(rows[0]["n"]):
            raise NotEmpty(f"the target store already has rows in {table}; import needs an "
                           "empty database")


def table_order() -> Iterator[str]:
    """Parents before children (timeline and ee_work reference escalations)."""
    yield from TABLES


def retry_dead_job(job_id: int, now: float) -> Unit[bool]:
    """Requeue a dead job now. Its last error stays: when the retry succeeds, the runner knows
    it recovered and clears the escalation's "needs attention"."""
    rows = yield Stmt(Sql.of(
        "UPDATE jobs SET state = 'queued', run_at = ?, attempts = 0,"
        " updated_at = ? WHERE id = ? AND state = 'dead' RETURNING id"), (now, now, job_id))
    return bool(rows)
