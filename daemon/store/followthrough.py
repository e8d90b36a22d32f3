"""Read units of the follow-through jobs: open retros and open quiet spells, in both dialects.

Both start from the entries of one event name (`timeline_event`, migration 0009), so a run
costs what is open, not what is stored.
"""

from __future__ import annotations

from daemon.domain.events import EventKind
from daemon.store.units import Sql, Stmt, Unit

# The event names as the statements spell them (constants of the text, not parameters).
_OPENED, _CLOSED = EventKind.RETRO_OPENED.value, EventKind.RETRO_CLOSED.value
_OVERDUE, _RESUMED = EventKind.UPDATE_OVERDUE.value, EventKind.UPDATE_RESUMED.value
RESUMED_PREFIX = "resumed:"  # an `update_resumed` entry's once key: this + its overdue's key

FAR_FUTURE_S = 1e15  # a `closed_since` no close is after (both databases take it as a number)
RETRO_COMPLETED_KEY = f"{_CLOSED}:complete"  # the once key of a close seen complete later


def _open_retros(complete: str) -> str:
    """`complete`: the dialect's test that the closing entry `c` found every section filled."""
    return (
        "SELECT t.escalation_id AS id, min(t.at) AS opened_at,"
        " (SELECT min(c.at) FROM timeline c"
        f" WHERE c.event = '{_CLOSED}' AND c.escalation_id = t.escalation_id) AS closed_at"
        " FROM timeline t JOIN escalations e ON e.id = t.escalation_id"
        f" WHERE t.event = '{_OPENED}' AND t.escalation_id > ? AND e.drill = 0"
        " AND NOT EXISTS (SELECT 1 FROM timeline c"
        f" WHERE c.event = '{_CLOSED}' AND c.escalation_id = t.escalation_id"
        f" AND (c.at < ? OR {complete}))"
        " GROUP BY t.escalation_id ORDER BY t.escalation_id LIMIT ?"
    )


OPEN_RETROS = Sql.of(_open_retros("json_extract(c.details, '$.complete') = 1"),
                     _open_retros("(c.details::jsonb ->> 'complete') = 'true'"))
OPEN_QUIET = Sql.of(
    "SELECT DISTINCT o.escalation_id AS id FROM timeline o"
    f" WHERE o.event = '{_OVERDUE}' AND NOT EXISTS (SELECT 1 FROM timeline r"
    f" WHERE r.event = '{_RESUMED}' AND r.escalation_id = o.escalation_id"
    f" AND r.once_key = '{RESUMED_PREFIX}' || o.once_key) ORDER BY o.escalation_id LIMIT ?"
)


def open_retros(after: str, limit: int, closed_since: float
                ) -> Unit[list[tuple[str, float, float | None]]]:
    """Up to `limit` (escalation id, retro opened at, seen closed at) of the retros still
    followed, by id after `after` ("" from the start): open, or closed with a section still
    empty at or after `closed_since` (its sections may be written after the close); drills
    left out (their retro closes at once)."""
    rows = yield Stmt(OPEN_RETROS, (after, closed_since, limit))
    return [(str(row["id"]), float(row["opened_at"]),
             None if row["closed_at"] is None else float(row["closed_at"])) for row in rows]


def open_quiet(limit: int) -> Unit[list[str]]:
    """Escalations with a quiet spell (`update_overdue`) that has not ended yet."""
    rows = yield Stmt(OPEN_QUIET, (limit,))
    return [str(row["id"]) for row in rows]


_PAGE_EVENTS = (EventKind.PAGED, EventKind.PAGE_ASSIGNED, EventKind.ACKNOWLEDGED,
                EventKind.PAGE_ESCALATED, EventKind.PAGE_REASSIGNED, EventKind.PAGE_RESOLVED,
                EventKind.PAGE_UNACKNOWLEDGED, EventKind.PAGE_REOPENED)
_PAGE_EVENT_NAMES = ", ".join(f"'{event.value}'" for event in _PAGE_EVENTS)
PAGED_ESCALATION = Sql.of(
    "SELECT escalation_id AS id FROM timeline"
    f" WHERE event IN ({_PAGE_EVENT_NAMES}) AND json_extract(details, '$.incident_id') = ?"
    " ORDER BY id DESC LIMIT 1",
    "SELECT escalation_id AS id FROM timeline"
    f" WHERE event IN ({_PAGE_EVENT_NAMES}) AND (details::jsonb ->> 'incident_id') = ?"
    " ORDER BY id DESC LIMIT 1",
)


def paged_escalation(incident_id: str) -> Unit[str | None]:
    """The escalation whose Tier 2 page is PagerDuty's incident `incident_id`: named by the
    page's own entry (an incident created through the REST API) or by the page's webhooks
    (which carry it whichever way the page was sent)."""
    rows = yield Stmt(PAGED_ESCALATION, (incident_id,))
    return str(rows[0]["id"]) if rows else None
