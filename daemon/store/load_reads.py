"""The timeline entries behind the Tier 2 load figures, in both dialects.

One range read per window: the entries of `LOAD_EVENTS` whose own time is in [since, until),
of escalations that are not rehearsals, oldest first, with the escalation's reference. Pages
are a small share of escalations, so this stays small where the report's escalations are many;
the `timeline_event_at` index (migration 0008) makes it a range per event name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from daemon.store.units import Sql, Stmt, Unit

# Who the page reached and when (paged, assigned, escalated, reassigned, acknowledged), what
# the SMOC decided, and what was asked but never paged (declined, held after the timeout).
PAGE_EVENTS = ("paged", "page_assigned", "page_escalated", "page_reassigned", "acknowledged")
LOAD_EVENTS = (*PAGE_EVENTS, "approval_requested", "approved", "declined", "approval_timed_out")


@dataclass(frozen=True)
class LoadEntry:
    """One timeline entry the load figures read, with its escalation's reference and team."""

    escalation_id: str
    reference: str
    team: str  # the Tier 1 team the escalation belongs to (`domain.teams`)
    event: str
    actor: str
    at: float  # epoch seconds
    details: dict[str, Any]


def _entries_sql(reference: str, events: tuple[str, ...] = LOAD_EVENTS) -> str:
    """The window's entries, then their escalations' columns once per escalation: reading the
    reference out of a stored escalation's JSON once per entry would parse it several times.
    `GROUP BY e.id` (the key: one row each) keeps SQLite from folding `x` into the join, which
    would evaluate the JSON path again for every entry."""
    names = ", ".join(f"'{event}'" for event in events)
    return (
        "WITH w AS (SELECT id, escalation_id, event, actor, at, details FROM timeline"
        f" WHERE event IN ({names}) AND at >= ? AND at < ?),"
        f" x AS (SELECT e.id, e.team, COALESCE({reference}, '') AS reference FROM escalations e"
        " WHERE e.id IN (SELECT escalation_id FROM w) AND e.drill = 0 GROUP BY e.id)"
        " SELECT w.escalation_id, w.event, w.actor, w.at, w.details, x.reference, x.team"
        " FROM w JOIN x ON x.id = w.escalation_id ORDER BY w.at, w.id")


_SQLITE_REFERENCE = "json_extract(e.data, '$.escalation.reference')"
_POSTGRES_REFERENCE = "e.data::jsonb #>> '{escalation,reference}'"
LOAD_ENTRIES = Sql.of(_entries_sql(_SQLITE_REFERENCE), _entries_sql(_POSTGRES_REFERENCE))
PAGE_ENTRIES = Sql.of(_entries_sql(_SQLITE_REFERENCE, PAGE_EVENTS),
                      _entries_sql(_POSTGRES_REFERENCE, PAGE_EVENTS))


def load_entries(since: float, until: float, *, pages_only: bool = False
                 ) -> Unit[list[LoadEntry]]:
    """The entries of `LOAD_EVENTS` (`PAGE_EVENTS`: who the pages reached, nothing of the
    decisions) dated in [since, until) (epoch seconds), oldest first."""
    rows = yield Stmt(PAGE_ENTRIES if pages_only else LOAD_ENTRIES, (since, until))
    return [LoadEntry(escalation_id=row["escalation_id"], reference=str(row["reference"]),
                      team=str(row["team"]), event=row["event"], actor=row["actor"],
                      at=float(row["at"]), details=json.loads(row["details"]))
            for row in rows]
