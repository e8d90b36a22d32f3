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

from daemon.domain.teams import DEFAULT_TEAM
from daemon.store.records import EscalationRow, TimelineEntry
from daemon.store.units import _ESC_COLUMNS, Row, Sql, Stmt, Unit, escalation_from

NO_OUTCOME = "none"  # the outcome filter's word for "never classified" (outcome IS NULL)

# The events the report counts, each at most once per escalation, and whose first time it uses.
REPORT_EVENTS = ("received", "approval_requested", "approved", "declined", "approval_timed_out",
                 "paged", "acknowledged", "resolved", "retro_opened", "would_have_paged")
DEAD_LETTERED = "job.dead_lettered"  # counted per entry: one per job that died
NOTED_EVENTS = ("declined", "approval_timed_out")  # listed one by one with their details


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
    reached: dict[str, int]
    dead_lettered: int  # timeline entries, not escalations


@dataclass(frozen=True)
class Noted:
    """A decline or an approval timeout, with the escalation it belongs to."""

    escalation_id: str
    reference: str
    title: str
    event: str
    actor: str
    at: float
    details: dict[str, Any]
    team: str = DEFAULT_TEAM


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
                          event=row["event"], actor=row["actor"],
                          details=json.loads(row["details"]))
            for row in rows]
    return found


# --- the report's figures ----------------------------------------------------------------------

def _summary(weekend: str, extract_outcome: str, no_index: str, team: bool = False) -> str:
    """Per escalation in the window: its phase, outcome, weekend and emergency flags and the
    first time of each event (and, `team`, its Tier 1 team). The weekend is the policy's (the
    stored decision), else the weekday of its opening in the business time zone (the first two
    arguments: the IANA zone and the ISO weekdays of the weekend as digits, "67"); an emergency
    is one now or ever classified one, as `build_report` says.

    Driven by the window's range on (opened_at, id), which also orders the groups, and for each
    escalation one range of its timeline (`no_index`: SQLite would otherwise seek once per
    event name, twelve seeks instead of one)."""
    columns = ", ".join(f"min(CASE WHEN t.event = '{event}' THEN t.at END) AS {event}"
                        for event in REPORT_EVENTS)
    events = ", ".join(f"'{event}'" for event in (*REPORT_EVENTS, DEAD_LETTERED, "classified"))
    return (
        f"WITH s AS (SELECT {'e.team, ' if team else ''}e.state, e.outcome,"
        f" {weekend} AS weekend, {columns},"
        f" sum(CASE WHEN t.event = '{DEAD_LETTERED}' THEN 1 ELSE 0 END) AS dead_lettered,"
        f" max(CASE WHEN e.outcome = 'emergency' OR (t.event = 'classified'"
        f" AND {extract_outcome} = 'emergency') THEN 1 ELSE 0 END) AS emergency"
        f" FROM escalations e LEFT JOIN timeline t ON t.escalation_id = e.id"
        f" AND {no_index}t.event IN ({events})"
        f" WHERE e.opened_at >= ? AND e.opened_at < ? AND e.drill = 0 GROUP BY e.opened_at, e.id)")


_SQLITE_WEEKEND = ("COALESCE(json_extract(e.data, '$.gate.decision.facts.weekend'),"
                   " local_weekend(e.opened_at, ?, ?))")
_POSTGRES_WEEKEND = (
    "CASE WHEN COALESCE((e.data::jsonb #>> '{gate,decision,facts,weekend}')::boolean,"
    " position((extract(isodow FROM (to_timestamp(e.opened_at) AT TIME ZONE ?::text)))"
    "::int::text IN ?::text) > 0)"
    " THEN 1 ELSE 0 END")
_SQLITE_SUMMARY = _summary(_SQLITE_WEEKEND, "json_extract(t.details, '$.outcome')", "+")
_POSTGRES_SUMMARY = _summary(_POSTGRES_WEEKEND, "(t.details::jsonb ->> 'outcome')", "")
# Groups and the emergencies' durations in one statement, so the window is read once: rows
# with kind 'g' are groups, rows with kind 'd' one emergency's three durations.
_NONE = ", ".join(["NULL"] * (len(REPORT_EVENTS) + 2))


def _figures_tail(team: bool) -> str:
    key = "team, " if team else ""  # `team`: one group per team too, each duration tagged
    return (
        f" SELECT 'g' AS kind, {key}outcome, state, weekend, emergency, count(*) AS n, "
        + ", ".join(f"count({event}) AS {event}" for event in REPORT_EVENTS)
        + ", sum(dead_lettered) AS dead_lettered, NULL AS to_approve, NULL AS to_acknowledge,"
        f" NULL AS to_resolve FROM s GROUP BY {key}outcome, state, weekend, emergency"
        f" UNION ALL SELECT 'd', {key}NULL, NULL, NULL, NULL, {_NONE},"
        " approved - approval_requested, acknowledged - paged, resolved - received FROM s"
        " WHERE emergency = 1 AND"
        " (approved IS NOT NULL OR acknowledged IS NOT NULL OR resolved IS NOT NULL)"
    )


REPORT_FIGURES = Sql.of(_SQLITE_SUMMARY + _figures_tail(False),
                        _POSTGRES_SUMMARY + _figures_tail(False))


def _criteria_sql(team: bool) -> Sql:
    """Criteria: those every classification recorded, counted once per escalation; an
    escalation classified before criteria were recorded counts those its stored decision
    held. `team`: counted per team."""
    key, e_key, c_key = ("team, ", "e.team, ", "c.team, ") if team else ("", "", "")
    tail = (f" SELECT {key}criterion, count(*) AS n FROM (SELECT id, {key}criterion FROM"
            f" recorded UNION SELECT id, {key}criterion FROM fallback) AS c"
            f" GROUP BY {key}criterion")
    return Sql.of(
        f"WITH classified AS (SELECT t.escalation_id AS id, {e_key}t.details FROM escalations e"
        " JOIN timeline t ON t.escalation_id = e.id"
        " WHERE e.opened_at >= ? AND e.opened_at < ? AND e.drill = 0"
        " AND t.event = 'classified' AND json_type(t.details, '$.criteria') IS NOT NULL),"
        f" recorded AS (SELECT c.id, {c_key}j.value AS criterion FROM classified AS c,"
        " json_each(c.details, '$.criteria') AS j),"
        f" fallback AS (SELECT e.id, {e_key}j.key AS criterion FROM escalations e,"
        " json_each(e.data, '$.gate.decision.facts.criteria') AS j"
        " WHERE e.opened_at >= ? AND e.opened_at < ? AND e.drill = 0 AND j.value = 1"
        " AND e.id NOT IN (SELECT id FROM classified))" + tail,
        f"WITH classified AS (SELECT t.escalation_id AS id, {e_key}t.details::jsonb ->"
        " 'criteria' AS criteria FROM escalations e JOIN timeline t ON t.escalation_id = e.id"
        " WHERE e.opened_at >= ? AND e.opened_at < ? AND e.drill = 0 AND t.event = 'classified'"
        " AND (t.details::jsonb -> 'criteria') IS NOT NULL),"
        f" recorded AS (SELECT c.id, {c_key}j.criterion FROM classified AS c,"
        " jsonb_array_elements_text(c.criteria) AS j (criterion)),"
        f" fallback AS (SELECT e.id, {e_key}j.key AS criterion FROM escalations e,"
        " jsonb_each(e.data::jsonb #> '{gate,decision,facts,criteria}') AS j"
        " WHERE e.opened_at >= ? AND e.opened_at < ? AND e.drill = 0 AND j.value = 'true'::jsonb"
        " AND e.id NOT IN (SELECT id FROM classified))" + tail,
    )


REPORT_CRITERIA = _criteria_sql(False)
_NOTED = (
    " FROM escalations e JOIN timeline t ON t.escalation_id = e.id"
    " WHERE e.opened_at >= ? AND e.opened_at < ? AND e.drill = 0 AND t.event IN ("
    + ", ".join(f"'{event}'" for event in NOTED_EVENTS)
    + ") ORDER BY t.at, e.opened_at DESC, t.id"
)
REPORT_NOTED = Sql.of(
    "SELECT t.escalation_id, t.event, t.actor, t.at, t.details, e.team,"
    " COALESCE(json_extract(e.data, '$.escalation.reference'), '') AS reference,"
    " COALESCE(json_extract(e.data, '$.escalation.title'), '') AS title" + _NOTED,
    "SELECT t.escalation_id, t.event, t.actor, t.at, t.details, e.team,"
    " COALESCE(e.data::jsonb #>> '{escalation,reference}', '') AS reference,"
    " COALESCE(e.data::jsonb #>> '{escalation,title}', '') AS title" + _NOTED,
)


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


def report_figures(since: float, until: float, zone: str = "UTC",
                   weekend: str = "67") -> Unit[Figures]:
    """The report's figures for escalations opened in [since, until), in one snapshot; an
    escalation without a stored decision is on a weekend by `weekend` (ISO weekday digits) in
    the IANA `zone`, the business time zone."""
    window = (since, until)
    rows = yield Stmt(REPORT_FIGURES, (zone, weekend, *window))
    groups = tuple(
        Group(outcome=row["outcome"], state=row["state"], weekend=bool(row["weekend"]),
              emergency=bool(row["emergency"]), count=int(row["n"]),
              reached={event: int(row[event]) for event in REPORT_EVENTS},
              dead_lettered=int(row["dead_lettered"]))
        for row in rows if row["kind"] == "g")
    durations = tuple((_forward(row["to_approve"]), _forward(row["to_acknowledge"]),
                       _forward(row["to_resolve"])) for row in rows if row["kind"] == "d")
    rows = yield Stmt(REPORT_CRITERIA, window + window)
    criteria = {str(row["criterion"]): int(row["n"]) for row in rows}
    rows = yield Stmt(REPORT_NOTED, window)
    noted = tuple(_noted(row) for row in rows)
    return Figures(groups, durations, criteria, noted)


def _noted(row: Row) -> Noted:
    return Noted(escalation_id=row["escalation_id"], reference=row["reference"],
                 title=row["title"], event=row["event"], actor=row["actor"], at=row["at"],
                 details=json.loads(row["details"]), team=row["team"])


# --- the report's figures per Tier 1 team --------------------------------------------------------
# The same statements with the team as one more grouping key: one pass over the window for all
# teams, not one per team, and nothing but aggregates (and one duration row per emergency, as
# above) travels back.

TEAM_FIGURES = Sql.of(_summary(_SQLITE_WEEKEND, "json_extract(t.details, '$.outcome')", "+",
                               team=True) + _figures_tail(True),
                      _summary(_POSTGRES_WEEKEND, "(t.details::jsonb ->> 'outcome')", "",
                               team=True) + _figures_tail(True))
TEAM_CRITERIA = _criteria_sql(True)


def team_figures(since: float, until: float, noted: Sequence[Noted], zone: str = "UTC",
                 weekend: str = "67") -> Unit[dict[str, Figures]]:
    """The report's figures for escalations opened in [since, until), per team; `noted` are
    the window's declines and timeouts (`REPORT_NOTED`); `zone` and `weekend` as for
    `report_figures`."""
    window = (since, until)
    rows = yield Stmt(TEAM_FIGURES, (zone, weekend, *window))
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
    rows = yield Stmt(TEAM_CRITERIA, window + window)
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
    rows = yield Stmt(REPORT_NOTED, (since, until))
    noted = tuple(_noted(row) for row in rows)
    teams = yield from team_figures(since, until, noted, zone, weekend)
    criteria: dict[str, int] = {}
    for figures in teams.values():
        for name, n in figures.criteria.items():
            criteria[name] = criteria.get(name, 0) + n
    whole = Figures(tuple(g for f in teams.values() for g in f.groups),
                    tuple(d for f in teams.values() for d in f.durations), criteria, noted)
    return whole, teams
