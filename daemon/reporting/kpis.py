"""The escalation program's KPIs for a period, each against its target (`kpi:` settings).

- time to acknowledge, per severity: Tier 2 paged -> acknowledged, p50/p90 (nearest rank);
  the target is met when p90 is within it.
- time to engage: escalation received -> Tier 2 engaged (the page acknowledged: an engineer
  has it), p50/p90; the whole chain of approval, page and acknowledgement.
- reopen rate: escalations reopened after they resolved, of those that resolved (test
  incidents, outcome `ignore`, left out); met at or under `reopen_rate_max`.
- retro completion, per severity and per Tier 1 team and severity: retros closed with every
  follow-through section filled in (`daemon.domain.retro_sections`), of the retros opened;
  and the retros open past `followthrough.retro_overdue_days`, listed.
- update cadence adherence: the share of active emergency time (from Tier 2 engaged to
  resolved, or the end of the period) not spent in a quiet spell past the policy's cadence
  (`update_overdue` -> `update_resumed`).
- evidence completeness, in all and per team: emergencies whose approval request showed a
  complete evidence pack, of those whose request showed one.
- repeat customers (two or more escalations in the period) and the top customers and
  services, test incidents (outcome `ignore`) left out; the top criteria are the report's
  own.

Every share is a fraction with the counts it came from, `None` when nothing was counted, and
`meets` is None then too: no data meets no target.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from daemon.settings import FollowthroughSettings, KpiSettings
from daemon.store import Store
from daemon.store.kpi_reads import EmergencyRow, KpiFigures


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Timing(_Model):
    samples: int
    p50_minutes: float | None
    p90_minutes: float | None


class AckBySeverity(_Model):
    severity: str
    samples: int
    p50_minutes: float | None
    p90_minutes: float | None
    target_minutes: float | None  # p90 within this meets the target
    meets: bool | None


class Share(_Model):
    count: int
    total: int
    share: float | None
    target: float | None = None
    meets: bool | None = None


class RetroCompletion(_Model):
    team: str  # "" for every team together
    severity: str
    opened: int
    closed: int
    complete: int  # closed with every section filled in
    share: float | None  # complete / opened
    target: float | None
    meets: bool | None


class TeamShare(_Model):
    team: str
    count: int
    total: int
    share: float | None
    target: float | None
    meets: bool | None


class OverdueRetro(_Model):
    escalation_id: str
    team: str
    reference: str
    title: str
    severity: str
    url: str
    open_days: float


class Cadence(_Model):
    active_minutes: float
    overdue_minutes: float
    share_within: float | None
    target: float
    meets: bool | None
    quiet_spells: int  # still going at the end of the period


class Named(_Model):
    name: str
    count: int


class Kpis(_Model):
    time_to_acknowledge: tuple[AckBySeverity, ...]
    time_to_engage: Timing
    reopen_rate: Share
    retro_completion: tuple[RetroCompletion, ...]  # per severity, every team together
    retro_completion_by_team: tuple[RetroCompletion, ...]  # per team and severity, with data
    overdue_retros: tuple[OverdueRetro, ...]
    update_cadence: Cadence
    evidence_complete: Share
    evidence_by_team: tuple[TeamShare, ...]
    repeat_customers: tuple[Named, ...]
    top_customers: tuple[Named, ...]
    top_services: tuple[Named, ...]


def _percentile(samples: Sequence[float], p: int) -> float | None:
    """Nearest rank, as the report's timings (`report.percentile`)."""
    if not samples:
        return None
    ordered = sorted(samples)
    return round(ordered[-(-p * len(ordered) // 100) - 1], 2)


def _timing(minutes: Sequence[float]) -> Timing:
    return Timing(samples=len(minutes), p50_minutes=_percentile(minutes, 50),
                  p90_minutes=_percentile(minutes, 90))


def _share(count: int, total: int, target: float | None = None, *, at_most: bool = False
           ) -> Share:
    share = round(count / total, 4) if total else None
    meets = None if share is None or target is None else (
        share <= target if at_most else share >= target)
    return Share(count=count, total=total, share=share, target=target, meets=meets)


def _minutes(start: float | None, end: float | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start) / 60.0


def _severities(rows: Sequence[EmergencyRow], targets: dict[str, float]) -> list[str]:
    """Severities with data or a target, targets' first, in a stable order."""
    seen = {row.severity for row in rows if row.severity}
    return [*targets, *sorted(seen - set(targets))]


def _acknowledge(rows: Sequence[EmergencyRow], kpi: KpiSettings) -> tuple[AckBySeverity, ...]:
    found = []
    for severity in _severities(rows, kpi.ack_minutes):
        minutes = [m for row in rows if row.severity == severity
                   if (m := _minutes(row.paged_at, row.acknowledged_at)) is not None]
        timing, target = _timing(minutes), kpi.ack_minutes.get(severity)
        found.append(AckBySeverity(
            severity=severity, samples=timing.samples, p50_minutes=timing.p50_minutes,
            p90_minutes=timing.p90_minutes, target_minutes=target,
            meets=None if target is None or timing.p90_minutes is None
            else timing.p90_minutes <= target))
    return tuple(found)


def _retros(rows: Sequence[EmergencyRow], kpi: KpiSettings, team: str = ""
            ) -> list[RetroCompletion]:
    """Per severity (targets' first); `team`: only that team's, and only severities with a
    retro."""
    opened = [r for r in rows if r.retro_opened_at is not None and (not team or r.team == team)]
    severities = (_severities(opened, kpi.retro_completion) if not team
                  else sorted({r.severity for r in opened}))
    found = []
    for severity in severities:
        mine = [r for r in opened if r.severity == severity]
        share = _share(sum(r.retro_complete for r in mine), len(mine),
                       kpi.retro_completion.get(severity))
        found.append(RetroCompletion(team=team, severity=severity, opened=len(mine),
                                     closed=sum(r.retro_closed for r in mine),
                                     complete=share.count, share=share.share,
                                     target=share.target, meets=share.meets))
    return found


def _teams(rows: Sequence[EmergencyRow]) -> list[str]:
    return sorted({row.team for row in rows})


def _evidence_by_team(rows: Sequence[EmergencyRow], target: float) -> tuple[TeamShare, ...]:
    found = []
    for team in _teams(rows):
        share = _share(sum(r.evidence_complete for r in rows if r.team == team),
                       sum(1 for r in rows if r.team == team), target)
        found.append(TeamShare(team=team, **share.model_dump()))
    return tuple(found)


def _overdue(rows: Sequence[EmergencyRow], now_s: float, days: float
             ) -> tuple[OverdueRetro, ...]:
    late = [r for r in rows if r.retro_opened_at is not None and not r.retro_closed
            and now_s - r.retro_opened_at > days * 86400]
    late.sort(key=lambda r: (r.retro_opened_at, r.escalation_id))
    return tuple(OverdueRetro(escalation_id=r.escalation_id, team=r.team, reference=r.reference,
                              title=r.title, severity=r.severity, url=r.retro_url,
                              open_days=round((now_s - (r.retro_opened_at or now_s)) / 86400, 1))
                 for r in late)


def _cadence(rows: Sequence[EmergencyRow], end_s: float, target: float) -> Cadence:
    active = overdue = 0.0
    spells = 0
    for row in rows:
        if row.engaged_at is None:
            continue
        ended = row.resolved_at if row.resolved_at and row.resolved_at > row.engaged_at \
            else end_s
        active += max(0.0, min(ended, end_s) - row.engaged_at)
        overdue += row.overdue_s
        if row.open_due_at is not None:
            spells += 1
            overdue += max(0.0, end_s - row.open_due_at)
    overdue = min(overdue, active)
    share = round(1 - overdue / active, 4) if active else None
    return Cadence(active_minutes=round(active / 60, 2), overdue_minutes=round(overdue / 60, 2),
                   share_within=share, target=target,
                   meets=None if share is None else share >= target, quiet_spells=spells)


def build_kpis(figures: KpiFigures, *, now_s: float, until_s: float, kpi: KpiSettings,
               followthrough: FollowthroughSettings) -> Kpis:
    """The KPIs from their figures (pure: every number can be checked by hand). Open
    durations (a quiet spell, an active emergency) run to the end of the period or now,
    whichever comes first."""
    rows = figures.emergencies
    end_s = min(now_s, until_s)
    checked = [r for r in rows if r.evidence_checked]
    top = kpi.top
    return Kpis(
        time_to_acknowledge=_acknowledge(rows, kpi),
        time_to_engage=_timing([m for r in rows
                                if (m := _minutes(r.received_at, r.acknowledged_at))
                                is not None]),
        reopen_rate=_share(figures.reopened, figures.resolved, kpi.reopen_rate_max,
                           at_most=True),
        retro_completion=tuple(_retros(rows, kpi)),
        retro_completion_by_team=tuple(entry for team in _teams(rows)
                                       for entry in _retros(rows, kpi, team)),
        overdue_retros=_overdue(rows, now_s, followthrough.retro_overdue_days),
        update_cadence=_cadence(rows, end_s, kpi.cadence_adherence),
        evidence_complete=_share(sum(r.evidence_complete for r in checked), len(checked),
                                 kpi.evidence_complete),
        evidence_by_team=_evidence_by_team(checked, kpi.evidence_complete),
        repeat_customers=tuple(Named(name=name, count=n) for name, n in figures.customers
                               if n >= 2)[:top],
        top_customers=tuple(Named(name=name, count=n) for name, n in figures.customers[:top]),
        top_services=tuple(Named(name=name, count=n) for name, n in figures.services[:top]),
    )


async def load_kpis(store: Store, since_s: float, until_s: float, *, kpi: KpiSettings,
                    followthrough: FollowthroughSettings) -> Kpis:
    """The KPIs of escalations opened in [since_s, until_s), aggregated by the database."""
    figures = await store.kpi_figures(since_s, until_s, kpi.service_fields)
    return build_kpis(figures, now_s=store.clock.now(), until_s=until_s, kpi=kpi,
                      followthrough=followthrough)
