"""Read units for the dashboard, `/api/escalations` and `report`, in both dialects.

Their cost follows what is shown, not what is stored: escalations come a page at a time by
the keyset (opened_at, id), newest first, narrowed in SQL; the report's figures are aggregated
by the database over the window and only the durations of emergencies (three numbers each),
the criteria counts and the declines and timeouts travel back. Kept apart from `units` (the
write path) so that reads and intake can change independently.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from daemon.domain.events import EventKind, Fact, details_of
from daemon.domain.teams import DEFAULT_TEAM
from daemon.store.records import EscalationRow, TimelineEntry
from daemon.store.units import (
    _ESC_COLUMNS,
    EMERGENCY,
    REPORT_EVENTS,
    Row,
    Sql,
    Stmt,
    Unit,
    escalation_from,
)

NO_OUTCOME = "none"  # the outcome filter's word for "never classified" (outcome IS NULL)

# Listed one by one with their details.
NOTED_EVENTS = (EventKind.DECLINED, EventKind.APPROVAL_TIMED_OUT)


@dataclass(frozen=True)
class EscalationFilter:
    """Which escalations a page shows: opened in [since, until) (epoch seconds) and, when
    given, of one source, phase (`state`), outcome (`NO_OUTCOME`: unclassified) and Tier 1
    team."""

    since: float
    until: float
    source: str | None = None
    state: str | None = None
    outcome: str | None = None
    team: str | None = None


Cursor = tuple[float, str]  # (opened_at, id) of the last escalation of the previous page


@dataclass(frozen=True)
class Group:
    """How many escalations in the window share an outcome, a phase, the weekend flag and the
    emergency flag, and how many of them reached each of `REPORT_EVENTS`."""

    outcome: str | None
    state: str
    weekend: bool
    emergency: bool
    count: int
    reached: dict[EventKind, int]
    dead_lettered: int  # timeline entries, not escalations


@dataclass(frozen=True)
class Noted:
    """A decline or an approval timeout, with the escalation it belongs to."""

    escalation_id: str
    reference: str
    title: str
    event: EventKind
    actor: str
    at: float
    details: dict[str, Any]
    team: str = DEFAULT_TEAM

    @property
    def fact(self) -> Fact:
        return details_of(self.event, self.details)


@dataclass(frozen=True)
class Figures:
    """Everything `report` needs about a window, already reduced. `durations` holds, per
    emergency, the seconds from approval requested to approved, paged to acknowledged and
    received to resolved (None when either end is missing or the end came first)."""

    groups: tuple[Group, ...] = ()
    durations: tuple[tuple[float | None, float | None, float | None], ...] = ()
    criteria: dict[str, int] = field(default_factory=dict)
    noted: tuple[Noted, ...] = ()


# --- pages -------------------------------------------------------------------------------------

@functools.cache
def _page_sql(source: bool, state: bool, outcome: str | None, after: bool, team: bool = False
              ) -> Sql:
    """One fixed statement per combination of filters (at most 32, built once): every value
    is a bound argument, and each single-column filter has an index led by that column."""
    where = ["opened_at >= ?", "opened_at < ?", "drill = 0"]  # a rehearsal is no escalation
    where += ["source = ?"] if source else []
    where += ["state = ?"] if state else []
    where += ["team = ?"] if team else []
    if outcome == NO_OUTCOME:
        where.append("outcome IS NULL")
    elif outcome is not None:
        where.append("outcome = ?")
    # Strictly older than the cursor in (opened_at, id) order: an escalation that arrives
    # while someone pages lands before their cursor or after it, never on both sides.
    where += ["(opened_at < ? OR (opened_at = ? AND id < ?))"] if after else []
    return Sql.of(f"SELECT {_ESC_COLUMNS} FROM escalations WHERE {' AND '.join(where)}"
                  " ORDER BY opened_at DESC, id DESC LIMIT ?")


def page_escalations(flt: EscalationFilter, after: Cursor | None, limit: int
                     ) -> Unit[tuple[list[EscalationRow], Cursor | None]]:
    """Up to `limit` escalations newest first, after the cursor; and the cursor of the next
    page (None on the last one)."""
    outcome_value = flt.outcome if flt.outcome not in (None, NO_OUTCOME) else None
    sql = _page_sql(flt.source is not None, flt.state is not None,
                    NO_OUTCOME if flt.outcome == NO_OUTCOME else outcome_value,
                    after is not None, flt.team is not None)
    args: list[object] = [flt.since, flt.until]
    args += [value for value in (flt.source, flt.state, flt.team, outcome_value)
             if value is not None]
    if after is not None:
        args += [after[0], after[0], after[1]]
    rows = yield Stmt(sql, (*args, limit + 1))  # one more tells whether another page follows
    found = [escalation_from(row) for row in rows[:limit]]
    more = len(rows) > limit and found
    return found, ((found[-1].opened_at, found[-1].id) if more else None)


_TIMELINE = Sql.of(
    "SELECT id, escalation_id, at, event, actor, details FROM timeline"
    " WHERE escalation_id = ? ORDER BY id"
)


def timelines(escalation_ids: Sequence[str]) -> Unit[dict[str, list[TimelineEntry]]]:
    """The timelines of one page of escalations, read in one transaction."""
    found: dict[str, list[TimelineEntry]] = {}
    for escalation_id in escalation_ids:  # one indexed statement each; a page is small
        rows = yield Stmt(_TIMELINE, (escalation_id,))
        found[escalation_id] = [
            TimelineEntry(id=row["id"], escalation_id=row["escalation_id"], at=row["at"],
                          event=EventKind(row["event"]), actor=row["actor"],
                          details=json.loads(row["details"]))
            for row in rows]
    return found


# --- the report's figures ----------------------------------------------------------------------
# Read from the figure columns each escalation carries (migration 0011, kept by `units`), all
# of them in the covering index `escalations_figures`: a window is one index range, never the
# rows' JSON or their timelines. A new figure should be a column there (and in that index), an
# aggregate over the window here, and a field of `Figures`: its cost then grows with the
# window's escalations, a few bytes each, and not with what else the store holds.

# The window, and one team or every team: `team IS NULL` keeps one statement for both, and the
# team is tested inside the index range (the index holds it), so neither needs another index.
def _in_window(e: str = "") -> str:
    """Opened in [?, ?), no drill, of team ? (or every team when ? is NULL); `e`: an alias."""
    return (f"{e}opened_at >= ? AND {e}opened_at < ? AND {e}drill = 0"
            f" AND ({e}team = CAST(? AS TEXT) OR CAST(? AS TEXT) IS NULL)")


_WINDOW = f"FROM escalations WHERE {_in_window()}"
_IS_EMERGENCY = f"(outcome = '{EMERGENCY}' OR ever_emergency = 1)"  # now or ever classified one
# An escalation's weekend: its stored decision's (`decided_weekend`), else the weekday of its
# opening in the business time zone (two arguments: the IANA zone and the ISO weekdays of the
# weekend as digits, "67"), judged at read time because the calendar is the policy's now. Only
# escalations never decided (a handful) need the function; the rest read the index.
_SQLITE_WEEKEND = "COALESCE(decided_weekend, local_weekend(opened_at, ?, ?))"
_POSTGRES_WEEKEND = (
    "COALESCE(decided_weekend, CASE WHEN position((extract(isodow FROM"
    " (to_timestamp(opened_at) AT TIME ZONE ?::text)))::int::text IN ?::text) > 0"
    " THEN 1 ELSE 0 END)")
_NONE = ", ".join(["NULL"] * (len(REPORT_EVENTS) + 2))


def _figures_sql(weekend: str, team: bool = False) -> str:
    """Groups and the emergencies' durations in one statement (one snapshot): rows with kind
    'g' are groups, rows with kind 'd' one emergency's three durations; `team`: one group per
    team too, each duration tagged with its team."""
    key = "team, " if team else ""
    return (
        f"SELECT 'g' AS kind, {key}outcome, state, weekend, emergency, count(*) AS n, "
        + ", ".join(f"count(first_{event}) AS {event}" for event in REPORT_EVENTS)
        + ", sum(dead_letters) AS dead_lettered, NULL AS to_approve, NULL AS to_acknowledge,"
        f" NULL AS to_resolve FROM (SELECT {key}outcome, state, {weekend} AS weekend,"
        " dead_letters, " + ", ".join(f"first_{event}" for event in REPORT_EVENTS)
        + f", CASE WHEN {_IS_EMERGENCY} THEN 1 ELSE 0 END AS emergency {_WINDOW}) AS s"
        f" GROUP BY {key}outcome, state, weekend, emergency"
        f" UNION ALL SELECT 'd', {key}NULL, NULL, NULL, NULL, {_NONE},"
        " first_approved - first_approval_requested, first_acknowledged - first_paged,"
        f" first_resolved - first_received {_WINDOW} AND {_IS_EMERGENCY} AND"
        " (first_approved IS NOT NULL OR first_acknowledged IS NOT NULL"
        " OR first_resolved IS NOT NULL)")


REPORT_FIGURES = Sql.of(_figures_sql(_SQLITE_WEEKEND), _figures_sql(_POSTGRES_WEEKEND))
# Criteria: those every classification recorded, counted once per escalation; an escalation
# classified before criteria were recorded counts those its stored decision held.
def _criteria_sql(team: bool) -> Sql:
    """Criteria: those every classification recorded, counted once per escalation; an
    escalation classified before criteria were recorded counts those its stored decision
    held. `team`: counted per team."""
    key = "e.team, " if team else ""
    # SQLite, left alone, walks all of `escalations_team_page` (the team test is an OR): told
    # to take the window's range of the covering index instead, as the groups do.
    return Sql.of(
        f"SELECT {key}j.value AS criterion, count(*) AS n"
        " FROM escalations e INDEXED BY escalations_figures,"
        " json_each(COALESCE(e.recorded_criteria, e.decision_criteria)) AS j"
        f" WHERE {_in_window('e.')} GROUP BY {key}j.value",
        f"SELECT {key}j.criterion, count(*) AS n FROM escalations e,"
        " jsonb_array_elements_text(COALESCE(e.recorded_criteria, e.decision_criteria)::jsonb)"
        f" AS j (criterion) WHERE {_in_window('e.')} GROUP BY {key}j.criterion",
    )


REPORT_CRITERIA = _criteria_sql(False)
# Declines and timeouts: the window's escalations that had one (from the index), then their
# entries.
_NOTED = (
    " FROM escalations e JOIN timeline t ON t.escalation_id = e.id"
    f" WHERE e.id IN (SELECT id {_WINDOW} AND (first_declined IS NOT NULL"
    " OR first_approval_timed_out IS NOT NULL)) AND t.event IN ("
    + ", ".join(f"'{event}'" for event in NOTED_EVENTS)
    + ") ORDER BY t.at, e.opened_at DESC, t.id"
)
# The reference and title are the escalation's columns (migration 0012), not its JSON.
REPORT_NOTED = Sql.of(
    "SELECT t.escalation_id, t.event, t.actor, t.at, t.details, e.team, e.reference, e.title"
    + _NOTED)


def _forward(seconds: float | None) -> float | None:
    """A duration whose end came before its start is no duration (clocks of two vendors)."""
    return None if seconds is None or seconds < 0 else float(seconds)


def weekend_digits(days: Sequence[int]) -> str:
    """ISO weekdays (Monday 1 .. Sunday 7) as the digits the weekend test takes: "67"."""
    return "".join(str(day) for day in sorted(set(days)))


def local_weekend(epoch_s: float, zone: str, digits: str) -> int:
    """SQLite's `local_weekend(opened_at, zone, digits)`: 1 when the moment falls on one of
    the weekdays in `digits` on a wall clock in `zone` (SQLite has no time zones of its own)."""
    moment = datetime.fromtimestamp(epoch_s, UTC).astimezone(ZoneInfo(zone))
    return int(str(moment.isoweekday()) in digits)


def report_figures(since: float, until: float, zone: str = "UTC", weekend: str = "67",
                   team: str | None = None) -> Unit[Figures]:
    """The report's figures for escalations opened in [since, until), of one Tier 1 team when
    given, in one snapshot; an escalation without a stored decision is on a weekend by
    `weekend` (ISO weekday digits) in the IANA `zone`, the business time zone."""
    window = (since, until, team, team)
    rows = yield Stmt(REPORT_FIGURES, (zone, weekend, *window, *window))
    groups = tuple(
        Group(outcome=row["outcome"], state=row["state"], weekend=bool(row["weekend"]),
              emergency=bool(row["emergency"]), count=int(row["n"]),
              reached={event: int(row[event]) for event in REPORT_EVENTS},
              dead_lettered=int(row["dead_lettered"]))
        for row in rows if row["kind"] == "g")
    durations = tuple((_forward(row["to_approve"]), _forward(row["to_acknowledge"]),
                       _forward(row["to_resolve"])) for row in rows if row["kind"] == "d")
    rows = yield Stmt(REPORT_CRITERIA, window)
    criteria = {str(row["criterion"]): int(row["n"]) for row in rows}
    rows = yield Stmt(REPORT_NOTED, window)
    noted = tuple(_noted(row) for row in rows)
    return Figures(groups, durations, criteria, noted)


def _noted(row: Row) -> Noted:
    return Noted(escalation_id=row["escalation_id"], reference=row["reference"],
                 title=row["title"], event=EventKind(row["event"]), actor=row["actor"],
                 at=row["at"],
                 details=json.loads(row["details"]), team=row["team"])


# --- the report's figures per Tier 1 team --------------------------------------------------------
# The same statements with the team as one more grouping key: one pass over the window for all
# teams, not one per team, and nothing but aggregates (and one duration row per emergency, as
# above) travels back.

TEAM_FIGURES = Sql.of(_figures_sql(_SQLITE_WEEKEND, team=True),
                      _figures_sql(_POSTGRES_WEEKEND, team=True))
TEAM_CRITERIA = _criteria_sql(True)


def team_figures(since: float, until: float, noted: Sequence[Noted], zone: str = "UTC",
                 weekend: str = "67") -> Unit[dict[str, Figures]]:
    """The report's figures for escalations opened in [since, until), per team; `noted` are
    the window's declines and timeouts (`REPORT_NOTED`); `zone` and `weekend` as for
    `report_figures`."""
    window = (since, until, None, None)  # every team, grouped by team
    rows = yield Stmt(TEAM_FIGURES, (zone, weekend, *window, *window))
    groups: dict[str, list[Group]] = {}
    durations: dict[str, list[tuple[float | None, float | None, float | None]]] = {}
    for row in rows:
        if row["kind"] == "g":
            groups.setdefault(row["team"], []).append(Group(
                outcome=row["outcome"], state=row["state"], weekend=bool(row["weekend"]),
                emergency=bool(row["emergency"]), count=int(row["n"]),
                reached={event: int(row[event]) for event in REPORT_EVENTS},
                dead_lettered=int(row["dead_lettered"])))
        else:
            durations.setdefault(row["team"], []).append((
                _forward(row["to_approve"]), _forward(row["to_acknowledge"]),
                _forward(row["to_resolve"])))
    rows = yield Stmt(TEAM_CRITERIA, window)
    criteria: dict[str, dict[str, int]] = {}
    for row in rows:
        criteria.setdefault(row["team"], {})[str(row["criterion"])] = int(row["n"])
    return {team: Figures(tuple(found), tuple(durations.get(team, ())), criteria.get(team, {}),
                          tuple(n for n in noted if n.team == team))
            for team, found in groups.items()}


def figures_with_teams(since: float, until: float, zone: str = "UTC", weekend: str = "67"
                       ) -> Unit[tuple[Figures, dict[str, Figures]]]:
    """The report's figures for the window, whole and per team, in one snapshot and one pass
    over the window: the whole is the teams' figures together (a report only ever sums
    groups, so a group split by team counts the same as the group). `zone` and `weekend` as
    for `report_figures`."""
    rows = yield Stmt(REPORT_NOTED, (since, until, None, None))
    noted = tuple(_noted(row) for row in rows)
    teams = yield from team_figures(since, until, noted, zone, weekend)
    criteria: dict[str, int] = {}
    for figures in teams.values():
        for name, n in figures.criteria.items():
            criteria[name] = criteria.get(name, 0) + n
    whole = Figures(tuple(g for f in teams.values() for g in f.groups),
                    tuple(d for f in teams.values() for d in f.durations), criteria, noted)
    return whole, teams
