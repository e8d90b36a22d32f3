"""The timeline entries behind the Tier 2 load figures, in both dialects.

One range read per window: the entries of `LOAD_EVENTS` whose own time is in [since, until),
of escalations that are not rehearsals, oldest first, with the escalation's reference. Pages
are a small share of escalations, so this stays small where the report's escalations are many;
on SQLite the partial index `timeline_load` (migration 0012) makes it one range in time order,
and `PAGE_EVENTS` a range per event name of `timeline_event_at` (migration 0008).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from daemon.domain.events import EventKind
from daemon.store.units import Sql, Stmt, Unit

# Who the page reached and when (paged, assigned, escalated, reassigned, acknowledged), what
# the SMOC decided, and what was asked but never paged (declined, held after the timeout).
PAGE_EVENTS = (EventKind.PAGED, EventKind.PAGE_ASSIGNED, EventKind.PAGE_ESCALATED,
               EventKind.PAGE_REASSIGNED, EventKind.ACKNOWLEDGED)
# The same names, in the same order, make the partial index `timeline_load` (migration 0012).
LOAD_EVENTS = (*PAGE_EVENTS, EventKind.APPROVAL_REQUESTED, EventKind.APPROVED, EventKind.DECLINED,
               EventKind.APPROVAL_TIMED_OUT)


@dataclass(frozen=True)
class LoadEntry:
    """One timeline entry the load figures read, with its escalation's reference and team."""

    escalation_id: str
    reference: str
    team: str  # the Tier 1 team the escalation belongs to (`domain.teams`)
    event: EventKind
    actor: str
    at: float  # epoch seconds
    details: dict[str, Any]


def _entries_sql(events: tuple[EventKind, ...], indexed: str = "") -> str:
    """The window's entries of `events` with their escalation's reference and team (columns:
    no escalation's JSON is parsed, migration 0012). `indexed`: SQLite's `INDEXED BY` clause
    for the partial index `timeline_load`, which holds the load's entries in time order with
    everything read of them; left alone SQLite picks `timeline_event_at` (one range per event
    name), then reads every entry's row and sorts them."""
    names = ", ".join(f"'{event.value}'" for event in events)
    return (
        "SELECT t.escalation_id, t.event, t.actor, t.at, t.details, e.reference, e.team"
        f" FROM timeline t{indexed} JOIN escalations e ON e.id = t.escalation_id"
        f" WHERE t.event IN ({names}) AND t.at >= ? AND t.at < ? AND e.drill = 0"
        " ORDER BY t.at, t.id")


LOAD_ENTRIES = Sql.of(_entries_sql(LOAD_EVENTS, " INDEXED BY timeline_load"),
                      _entries_sql(LOAD_EVENTS))
PAGE_ENTRIES = Sql.of(_entries_sql(PAGE_EVENTS))


def load_entries(since: float, until: float, *, pages_only: bool = False
                 ) -> Unit[list[LoadEntry]]:
    """The entries of `LOAD_EVENTS` (`PAGE_EVENTS`: who the pages reached, nothing of the
    decisions) dated in [since, until) (epoch seconds), oldest first."""
    rows = yield Stmt(PAGE_ENTRIES if pages_only else LOAD_ENTRIES, (since, until))
    return [LoadEntry(escalation_id=row["escalation_id"], reference=str(row["reference"]),
                      team=str(row["team"]), event=EventKind(row["event"]), actor=row["actor"],
                      at=float(row["at"]), details=json.loads(row["details"]))
            for row in rows]
