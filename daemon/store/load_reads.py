"""The facts behind the Tier 2 load figures, in both dialects.

Three reads per window [since, until), none of them decoding an entry's details, none of
drills: who the pages reached (`tier2_reaches`, kept as page entries are written, migration
0014) with the escalation's reference and team; the avoided pages (asked, declined or held
after the approval timeout, never paged: the escalation's columns, by the time it was asked);
and the SMOC's decisions (`approved` / `declined` entries: who and when).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from daemon.store.load_facts import PAGE_EVENTS, Reach
from daemon.store.units import Sql, Stmt, Unit

# The load's entry names; in this order they make the partial index `timeline_load`
# (migration 0012), which the decisions are read from.
LOAD_EVENTS = (*PAGE_EVENTS, "approval_requested", "approved", "declined", "approval_timed_out")
DECISION_EVENTS = ("approved", "declined")


@dataclass(frozen=True)
class LoadEntry:
    """One timeline entry the load is defined from (`daemon.reporting.load`'s in-memory
    path), with its escalation's reference and team."""

    escalation_id: str
    reference: str
    team: str  # the Tier 1 team the escalation belongs to (`domain.teams`)
    event: str
    actor: str
    at: float  # epoch seconds
    details: dict[str, Any]


@dataclass(frozen=True)
class PageReach:
    """A responder reached by a page, with the escalation's reference and team."""

    reach: Reach
    reference: str
    team: str


@dataclass(frozen=True)
class AvoidedPage:
    escalation_id: str
    asked_at: float  # the first approval request
    team: str


@dataclass(frozen=True)
class Decided:
    approver: str  # chat user id
    at: float
    verdict: str  # "approved" or "declined"


@dataclass(frozen=True)
class LoadFacts:
    reaches: tuple[PageReach, ...] = ()
    avoided: tuple[AvoidedPage, ...] = ()
    decisions: tuple[Decided, ...] = ()


def _names(events: tuple[str, ...]) -> str:
    return ", ".join(f"'{event}'" for event in events)


REACHES = Sql.of(
    "SELECT r.escalation_id, r.page, r.responder_id, r.responder, r.time_zone, r.at,"
    " r.acknowledged_at, e.reference, e.team FROM tier2_reaches r"
    " JOIN escalations e ON e.id = r.escalation_id"
    " WHERE r.at >= ? AND r.at < ? AND e.drill = 0")
# Matches the partial index `escalations_avoided` (migration 0014) term for term.
AVOIDED = Sql.of(
    "SELECT id, team, first_approval_requested AS asked_at FROM escalations"
    " WHERE first_paged IS NULL AND (first_declined IS NOT NULL OR approval_held = 1)"
    " AND first_approval_requested >= ? AND first_approval_requested < ? AND drill = 0")


def _decisions_sql(indexed: str) -> str:
    """`indexed`: SQLite's `INDEXED BY` the partial index `timeline_load`, whose condition the
    first IN repeats so that SQLite may use it; left alone it picks `timeline_event_at`."""
    return (
        "SELECT t.actor, t.at, t.event FROM timeline t" + indexed
        + " JOIN escalations e ON e.id = t.escalation_id"
        f" WHERE t.event IN ({_names(LOAD_EVENTS)}) AND t.event IN ({_names(DECISION_EVENTS)})"
        " AND t.at >= ? AND t.at < ? AND e.drill = 0")


DECISIONS = Sql.of(_decisions_sql(" INDEXED BY timeline_load"), _decisions_sql(""))


def load_facts(since: float, until: float, *, pages_only: bool = False) -> Unit[LoadFacts]:
    """The load's facts dated in [since, until) (epoch seconds): responders reached then,
    pages avoided (asked then), decisions taken then; `pages_only`: the reaches alone."""
    rows = yield Stmt(REACHES, (since, until))
    reached = tuple(PageReach(
        reach=Reach(escalation_id=row["escalation_id"], page=int(row["page"]),
                    responder_id=row["responder_id"], responder=row["responder"],
                    time_zone=row["time_zone"], at=float(row["at"]),
                    acknowledged_at=(None if row["acknowledged_at"] is None
                                     else float(row["acknowledged_at"]))),
        reference=str(row["reference"]), team=str(row["team"])) for row in rows)
    if pages_only:
        return LoadFacts(reaches=reached)
    rows = yield Stmt(AVOIDED, (since, until))
    avoided = tuple(AvoidedPage(escalation_id=row["id"], asked_at=float(row["asked_at"]),
                                team=str(row["team"])) for row in rows)
    rows = yield Stmt(DECISIONS, (since, until))
    decisions = tuple(Decided(approver=row["actor"], at=float(row["at"]), verdict=row["event"])
                      for row in rows)
    return LoadFacts(reaches=reached, avoided=avoided, decisions=decisions)
