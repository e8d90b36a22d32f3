"""Escalation analytics for a period: the numbers behind `tier2gate report` and the dashboard.

`build_report` is pure (rows + timelines + window -> Report) so that the CLI and the dashboard
cannot disagree and every figure can be checked by hand in a test. The timeline is the source:
the contract makes it the audit log. The stored gate is read only for what the timeline may not
carry (the weekend flag, the criteria of an escalation classified before they were recorded).

Percentiles use the nearest-rank method: p50/p90 is always a duration that actually happened,
which is what people expect when they read "90% were approved within N minutes".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict

from daemon.clock import to_datetime
from daemon.domain.calendar import WEEKDAYS, BusinessHours
from daemon.domain.events import ApprovalTimedOut, Classified, Declined, EventKind
from daemon.domain.fatigue import Load
from daemon.domain.gate import Phase
from daemon.domain.policy import Outcome
from daemon.domain.teams import DEFAULT_TEAM
from daemon.reporting.kpis import Kpis, load_kpis
from daemon.reporting.load import build_load, load_load
from daemon.settings import Settings
from daemon.store import EscalationRow, Store, TimelineEntry
from daemon.store.load_reads import LoadEntry
from daemon.store.mapping import Loaded, loaded
from daemon.store.reads import NOTED_EVENTS, Figures, Group, Noted, weekend_digits
from daemon.store.units import REPORT_EVENTS

PAGE_GOAL_PERCENT = 10  # the program's goal: at most 10% of escalations reach engineering
_MAX_SINCE_MINUTES = 3660 * 24 * 60  # ten years: longer is a typo, and would overflow datetimes
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 24 * 60, "w": 7 * 24 * 60}
# At most 9 digits: more is beyond ten years anyway, and would meet `int`'s digit limit.
_SINCE = re.compile(r"([0-9]{1,9})([mhdw])")
_OUTCOME_KEYS = {Outcome.EMERGENCY.value: "emergency", Outcome.RFH.value: "rfh",
                 Outcome.IGNORE.value: "ignored"}
_EVENT_STEPS = (
    ("approval_requested", EventKind.APPROVAL_REQUESTED),
    ("approved", EventKind.APPROVED),
    ("declined", EventKind.DECLINED),
    ("timed_out", EventKind.APPROVAL_TIMED_OUT),
    ("paged", EventKind.PAGED),
    ("acknowledged", EventKind.ACKNOWLEDGED),
    ("retro_opened", EventKind.RETRO_OPENED),
)  # funnel steps (the report's own labels) after received -> emergency, each with its event


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FunnelStep(_Model):
    step: str
    count: int


class DaySplit(_Model):
    weekend: int
    weekday: int
    ratio: float | None  # weekend per weekday; None when there was no weekday one


class EngineeringShare(_Model):
    """How many escalations reached Tier 2, against the goal. Shadow pages are counted apart:
    in shadow mode nobody is paged, but the share tells whether live mode would meet the goal."""

    escalations: int
    paged: int
    shadow_paged: int
    share: float | None  # None when there were no escalations
    shadow_share: float | None
    goal: float = PAGE_GOAL_PERCENT / 100
    goal_met: bool
    shadow_goal_met: bool


class Durations(_Model):
    samples: int
    p50_minutes: float | None
    p90_minutes: float | None


class Decline(_Model):
    escalation_id: str
    reference: str
    title: str
    by: str
    at: AwareDatetime
    reason: str


class Timeout(_Model):
    escalation_id: str
    reference: str
    title: str
    at: AwareDatetime
    after_minutes: float | None
    fallback: str


class CriterionCount(_Model):
    criterion: str
    count: int


class Report(_Model):
    """Escalations opened in [since, until). Durations are of emergencies only: how fast an
    RFH or a test incident closes says nothing about the emergency path."""

    since: AwareDatetime
    until: AwareDatetime
    escalations: int
    by_outcome: dict[str, int]  # the current outcome: emergency, rfh, ignored, none
    by_phase: dict[str, int]
    funnel: tuple[FunnelStep, ...]  # "emergency" counts escalations ever classified one
    emergencies_by_day: DaySplit
    escalations_by_day: DaySplit
    engineering: EngineeringShare
    time_to_approve: Durations  # approval requested -> approved
    time_to_acknowledge: Durations  # paged -> acknowledged
    time_to_resolve: Durations  # received -> resolved
    declines: tuple[Decline, ...]
    timeouts: tuple[Timeout, ...]
    top_criteria: tuple[CriterionCount, ...]
    dead_lettered_jobs: int  # of jobs that belong to these escalations
    # Tier 2 load: responders reached, pages avoided and decisions dated in the window (by
    # their own time, not by the escalation's opening); None only in a report built without it.
    load: Load | None = None
    kpis: Kpis | None = None  # the program's KPIs against their targets (`daemon.reporting.kpis`)
    # Every figure above again for each Tier 1 team that has escalations in the window, by
    # team name (`domain.teams`; "default" for the implicit team). Empty within a team's own,
    # where `load` and `kpis` are None too (`load.teams` breaks the load down by team).
    teams: dict[str, Report] = {}


@dataclass(frozen=True)
class _Seen:
    """One escalation as the report sees it: its first entry of each event, in time order."""

    current: Loaded
    first: dict[EventKind, TimelineEntry]
    entries: tuple[TimelineEntry, ...]
    emergency: bool
    weekend: bool
    criteria: frozenset[str]

    def seconds(self, start: EventKind, end: EventKind) -> float | None:
        began, ended = self.first.get(start), self.first.get(end)
        if began is None or ended is None or ended.at < began.at:
            return None
        return ended.at - began.at


def _seen(row: EscalationRow, timeline: Sequence[TimelineEntry], hours: BusinessHours) -> _Seen:
    current = loaded(row)
    entries = tuple(sorted(timeline, key=lambda entry: (entry.at, entry.id)))
    first: dict[EventKind, TimelineEntry] = {}
    for entry in entries:
        first.setdefault(entry.event, entry)
    classified = [fact for entry in entries if isinstance(fact := entry.fact, Classified)]
    decision = current.gate.decision
    emergency = row.outcome == Outcome.EMERGENCY.value or any(
        fact.outcome == Outcome.EMERGENCY.value for fact in classified)
    weekend = (decision.facts.weekend if decision is not None
               else WEEKDAYS[hours.local(to_datetime(row.opened_at)).weekday()]
               in hours.weekend_days)
    recorded = [fact.criteria for fact in classified if fact.criteria is not None]
    criteria = {str(name) for names in recorded for name in names}
    if not recorded and decision is not None:
        criteria = {c.value for c, held in decision.facts.criteria.items() if held}
    return _Seen(current, first, entries, emergency, weekend, frozenset(criteria))


def percentile(samples: Sequence[float], p: int) -> float | None:
    """Nearest rank: the smallest sample that at least p% of the samples do not exceed."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in 1..100, not {p}")
    if not samples:
        return None
    ordered = sorted(samples)
    rank = -(-p * len(ordered) // 100)  # ceil in integers: 0.9 * 10 must not become 9.000001
    return ordered[rank - 1]


def _durations(samples: Sequence[float]) -> Durations:
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return Durations(samples=len(samples), p50_minutes=rounded(percentile(samples, 50)),
                     p90_minutes=rounded(percentile(samples, 90)))


def _share(count: int, total: int) -> float | None:
    return round(count / total, 4) if total else None


def _engineering(total: int, paged: int, shadow: int) -> EngineeringShare:
    return EngineeringShare(
        escalations=total, paged=paged, shadow_paged=shadow,
        share=_share(paged, total), shadow_share=_share(shadow, total),
        goal_met=paged * 100 <= PAGE_GOAL_PERCENT * total,
        shadow_goal_met=shadow * 100 <= PAGE_GOAL_PERCENT * total)


def _require_aware(**moments: datetime) -> None:
    for name, moment in moments.items():
        if moment.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware")


def _figures(seen: Sequence[_Seen]) -> Figures:
    """What the store's aggregate queries compute (`reads.report_figures`), from escalations
    and timelines in memory: the two must agree, and the contract tests check that they do."""
    keys: Counter[tuple[str | None, str, bool, bool]] = Counter()
    reached: dict[tuple[str | None, str, bool, bool], Counter[EventKind]] = {}
    dead: Counter[tuple[str | None, str, bool, bool]] = Counter()
    for s in seen:
        key = (s.current.row.outcome, s.current.row.state, s.weekend, s.emergency)
        keys[key] += 1
        reached.setdefault(key, Counter()).update(e for e in REPORT_EVENTS if e in s.first)
        dead[key] += sum(entry.event is EventKind.DEAD_LETTERED for entry in s.entries)
    groups = tuple(Group(outcome=key[0], state=key[1], weekend=key[2], emergency=key[3],
                         count=n, reached={e: reached[key][e] for e in REPORT_EVENTS},
                         dead_lettered=dead[key]) for key, n in keys.items())
    durations = tuple((s.seconds(EventKind.APPROVAL_REQUESTED, EventKind.APPROVED),
                       s.seconds(EventKind.PAGED, EventKind.ACKNOWLEDGED),
                       s.seconds(EventKind.RECEIVED, EventKind.RESOLVED))
                      for s in seen if s.emergency)
    noted = tuple(Noted(escalation_id=s.current.row.id, reference=s.current.escalation.reference,
                        title=s.current.escalation.title, event=entry.event, actor=entry.actor,
                        at=entry.at, details=entry.details, team=s.current.row.team)
                  for s in seen for entry in s.entries if entry.event in NOTED_EVENTS)
    return Figures(groups=groups, durations=durations,
                   criteria=dict(Counter(name for s in seen for name in s.criteria)),
                   noted=tuple(sorted(noted, key=lambda n: n.at)))


def _assemble(figures: Figures, since: datetime, until: datetime) -> Report:
    """The report from its figures, however they were computed."""
    groups = figures.groups
    emergencies = [g for g in groups if g.emergency]
    total = sum(g.count for g in groups)
    by_outcome = dict.fromkeys(("emergency", "rfh", "ignored", "none"), 0)
    by_phase = dict.fromkeys((phase.value for phase in Phase), 0)
    for g in groups:
        key = _OUTCOME_KEYS.get(g.outcome, g.outcome) if g.outcome else "none"
        by_outcome[key] = by_outcome.get(key, 0) + g.count
        by_phase[g.state] = by_phase.get(g.state, 0) + g.count

    def reached(event: EventKind) -> int:
        return sum(g.reached[event] for g in groups)

    def split(of: Sequence[Group]) -> DaySplit:
        weekend = sum(g.count for g in of if g.weekend)
        weekday = sum(g.count for g in of) - weekend
        return DaySplit(weekend=weekend, weekday=weekday,
                        ratio=round(weekend / weekday, 3) if weekday else None)

    def timings(index: int) -> Durations:
        seconds = (d[index] for d in figures.durations)
        return _durations([s / 60.0 for s in seconds if s is not None])

    funnel = [FunnelStep(step="received", count=total),
              FunnelStep(step="emergency", count=sum(g.count for g in emergencies))]
    funnel += [FunnelStep(step=step, count=reached(event)) for step, event in _EVENT_STEPS]
    declines = tuple(
        Decline(escalation_id=n.escalation_id, reference=n.reference, title=n.title, by=n.actor,
                at=to_datetime(n.at), reason=str(fact.reason))
        for n in figures.noted if isinstance(fact := n.fact, Declined))
    timeouts = tuple(
        Timeout(escalation_id=n.escalation_id, reference=n.reference, title=n.title,
                at=to_datetime(n.at), after_minutes=timed_out.after_minutes,
                fallback=str(timed_out.fallback))
        for n in figures.noted if isinstance(timed_out := n.fact, ApprovalTimedOut))
    return Report(
        since=since.astimezone(UTC), until=until.astimezone(UTC), escalations=total,
        by_outcome=by_outcome, by_phase=by_phase, funnel=tuple(funnel),
        emergencies_by_day=split(emergencies), escalations_by_day=split(groups),
        engineering=_engineering(total, reached(EventKind.PAGED),
                                 reached(EventKind.WOULD_HAVE_PAGED)),
        time_to_approve=timings(0), time_to_acknowledge=timings(1), time_to_resolve=timings(2),
        declines=declines, timeouts=timeouts,
        top_criteria=tuple(CriterionCount(criterion=name, count=count) for name, count
                           in sorted(figures.criteria.items(),
                                     key=lambda item: (-item[1], item[0]))),
        dead_lettered_jobs=sum(g.dead_lettered for g in groups),
    )


def build_report(rows: Sequence[EscalationRow], timelines: Mapping[str, Sequence[TimelineEntry]],
                 *, since: datetime, until: datetime,
                 hours: BusinessHours | None = None, team: str | None = None) -> Report:
    """The report for escalations opened in [since, until) (the figures of one Tier 1 team
    when given; the Tier 2 load is every team's), from rows and timelines in memory: the
    definition of every figure, which `load_report` computes in SQL. Other rows are left out.
    `hours` is the policy's business calendar (default: UTC, Saturday and Sunday): an
    escalation never decided is on a weekend by its time zone, and it judges the load of
    whoever has no known time zone."""
    _require_aware(since=since, until=until)
    hours = hours or BusinessHours()
    low, high = since.timestamp(), until.timestamp()
    seen = [_seen(row, timelines.get(row.id, ()), hours) for row in rows
            if low <= row.opened_at < high and team in (None, row.team)]
    drills = {row.id for row in rows if row.drill}
    stored = {row.id: row.data.get("escalation") or {} for row in rows}  # as the SQL reads it
    teams = {row.id: row.team for row in rows}
    entries = [LoadEntry(escalation_id=entry.escalation_id,
                         reference=str(stored.get(escalation_id, {}).get("reference") or ""),
                         team=teams.get(escalation_id, DEFAULT_TEAM),
                         event=entry.event, actor=entry.actor, at=entry.at,
                         details=entry.details)
               for escalation_id, timeline in timelines.items() if escalation_id not in drills
               for entry in timeline]
    by_team: dict[str, list[_Seen]] = {}
    for s in seen:
        by_team.setdefault(s.current.row.team, []).append(s)
    report = _with_teams(_assemble(_figures(seen), since, until),
                         {team: _figures(found) for team, found in by_team.items()},
                         since, until)
    return report.model_copy(update={"load": build_load(entries, hours.zone, low, high)})


def _with_teams(report: Report, teams: Mapping[str, Figures], since: datetime,
                until: datetime) -> Report:
    """The report with every figure broken down by team, team names in order."""
    return report.model_copy(update={"teams": {
        team: _assemble(teams[team], since, until) for team in sorted(teams)}})


def parse_since(text: str) -> timedelta:
    """"30d", "12h", "90m", "2w" -> a period ending now. Refuses anything else by name."""
    match = _SINCE.fullmatch(text.strip().lower())
    minutes = int(match[1]) * _UNIT_MINUTES[match[2]] if match else 0
    if not 0 < minutes <= _MAX_SINCE_MINUTES:
        raise ValueError(
            f"since must be a positive whole number followed by m, h, d or w "
            f"(minutes, hours, days, weeks), at most 10 years, e.g. 90m, 12h, 30d or 2w; "
            f"got {text!r}")
    return timedelta(minutes=minutes)


async def load_report(store: Store, since: datetime, until: datetime,
                      hours: BusinessHours | None = None, *,
                      settings: Settings | None = None, team: str | None = None) -> Report:
    """The report for escalations opened in [since, until), aggregated by the database: its
    cost follows the window's size, and the process holds only the figures. With `settings`
    it carries the KPIs against their targets too; with `team`, the figures are of that Tier
    1 team (the Tier 2 load and the KPIs, which break down by team themselves, are not)."""
    _require_aware(since=since, until=until)
    hours = hours or BusinessHours()
    days = [WEEKDAYS.index(day) + 1 for day in hours.weekend_days]
    figures, teams = await store.figures_with_teams(since.timestamp(), until.timestamp(),
                                                    hours.timezone, weekend_digits(days))
    if team is not None:  # one team's figures: its share of the same single pass
        figures = teams.get(team, Figures())
        teams = {team: figures} if team in teams else {}
    report = _with_teams(_assemble(figures, since, until), teams, since, until)
    updates: dict[str, object] = {"load": await load_load(store, since, until, hours.zone)}
    if settings is not None:
        updates["kpis"] = await load_kpis(store, since.timestamp(), until.timestamp(),
                                          kpi=settings.kpi, followthrough=settings.followthrough)
    return report.model_copy(update=updates)
