"""Read units of the follow-through jobs: open retros and open quiet spells, in both dialects.

Both start from the entries of one event name (`timeline_event`, migration 0009), so a run
costs what is open, not what is stored.
"""

from __future__ import annotations

from daemon.store.units import Sql, Stmt, Unit

RETRO_OPENED, RETRO_CLOSED = "retro_opened", "retro_closed"
UPDATE_OVERDUE, UPDATE_RESUMED = "update_overdue", "update_resumed"
RESUMED_PREFIX = "resumed:"  # an `update_resumed` entry's once key: this + its overdue's key

OPEN_RETROS = Sql.of(
    "SELECT t.escalation_id AS id, min(t.at) AS opened_at FROM timeline t"
    " JOIN escalations e ON e.id = t.escalation_id"
    f" WHERE t.event = '{RETRO_OPENED}' AND t.escalation_id > ? AND e.drill = 0"
    " AND NOT EXISTS (SELECT 1 FROM timeline c"
    f" WHERE c.event = '{RETRO_CLOSED}' AND c.escalation_id = t.escalation_id)"
    " GROUP BY t.escalation_id ORDER BY t.escalation_id LIMIT ?"
)
OPEN_QUIET = Sql.of(
    "SELECT DISTINCT o.escalation_id AS id FROM timeline o"
    f" WHERE o.event = '{UPDATE_OVERDUE}' AND NOT EXISTS (SELECT 1 FROM timeline r"
    f" WHERE r.event = '{UPDATE_RESUMED}' AND r.escalation_id = o.escalation_id"
    f" AND r.once_key = '{RESUMED_PREFIX}' || o.once_key) ORDER BY o.escalation_id LIMIT ?"
)


def open_retros(after: str, limit: int) -> Unit[list[tuple[str, float]]]:
    """Up to `limit` (escalation id, retro opened at) whose retro is not seen closed, by id
    after `after` ("" from the start); drills left out (their retro closes at once)."""
    rows = yield Stmt(OPEN_RETROS, (after, limit))
    return [(str(row["id"]), float(row["opened_at"])) for row in rows]


def open_quiet(limit: int) -> Unit[list[str]]:
    """Escalations with a quiet spell (`update_overdue`) that has not ended yet."""
    rows = yield Stmt(OPEN_QUIET, (limit,))
    return [str(row["id"]) for row in rows]
