"""The report as a compact plain-text table: read in a terminal, pasted into a chat or a doc.

ASCII only, so it survives any terminal, pager or paste target.
"""

from __future__ import annotations

from datetime import datetime

from daemon.domain.fatigue import Buckets, Load
from daemon.markup import terminal_line
from daemon.reporting.kpi_text import render_kpis
from daemon.reporting.report import DaySplit, Durations, Report

_BAR_WIDTH = 30
_WHEN = "%Y-%m-%d %H:%MZ"


def _number(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.1f}{suffix}"


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def _days(name: str, split: DaySplit) -> str:
    return (f"{name:<22}weekend {split.weekend:>4}   weekday {split.weekday:>4}   "
            f"ratio {'-' if split.ratio is None else f'{split.ratio:.2f}'}")


def _duration(name: str, durations: Durations) -> str:
    return (f"  {name:<20}{durations.samples:>5}{_number(durations.p50_minutes):>10}"
            f"{_number(durations.p90_minutes):>10}")


def _pairs(counts: dict[str, int]) -> str:
    return " . ".join(f"{name} {count}" for name, count in counts.items() if count) or "-"


def _when(moment: datetime) -> str:
    return moment.strftime(_WHEN)


def render_text(report: Report) -> str:
    """Every figure of the report, in the order a reader asks about them."""
    eng = report.engineering
    verdict = "met" if eng.goal_met else "MISSED"
    lines = [
        f"tier2gate report: escalations opened {_when(report.since)} -> {_when(report.until)}",
        "",
        f"{'Escalations':<22}{report.escalations:>4}   {_pairs(report.by_outcome)}",
        f"{'Reached engineering':<22}{eng.paged:>4}   {_percent(eng.share)} "
        f"(goal <= {eng.goal * 100:.0f}%: {verdict})",
    ]
    if eng.shadow_paged:
        shadow = "met" if eng.shadow_goal_met else "MISSED"
        lines.append(f"{'  shadow (would page)':<22}{eng.shadow_paged:>4}   "
                     f"{_percent(eng.shadow_share)} (goal: {shadow})")
    lines += [
        _days("Emergencies", report.emergencies_by_day),
        _days("All escalations", report.escalations_by_day),
        f"{'Phases':<22}{_pairs(report.by_phase)}",
        f"{'Dead-lettered jobs':<22}{report.dead_lettered_jobs:>4}",
        "",
        "Emergency funnel",
    ]
    widest = max((step.count for step in report.funnel), default=0)
    for step in report.funnel:
        bar = "#" * round(_BAR_WIDTH * step.count / widest) if widest else ""
        lines.append(f"  {step.step.replace('_', ' '):<20}{step.count:>5}  {bar}")
    lines += [
        "",
        f"  {'Minutes (emergencies)':<20}{'n':>5}{'p50':>10}{'p90':>10}",
        _duration("to approve", report.time_to_approve),
        _duration("to acknowledge", report.time_to_acknowledge),
        _duration("to resolve", report.time_to_resolve),
        "  (percentiles by nearest rank)",
        "",
        f"Declines ({len(report.declines)})",
    ]
    # References and reasons are vendor and SMOC text: one printable line each.
    lines += [f"  {_when(d.at)}  {d.escalation_id}  {terminal_line(d.reference) or '-'}  by "
              f"{terminal_line(d.by) or '-'}: {terminal_line(d.reason) or '(no reason given)'}"
              for d in report.declines]
    lines.append(f"Approval timeouts ({len(report.timeouts)})")
    lines += [f"  {_when(t.at)}  {t.escalation_id}  {terminal_line(t.reference) or '-'}  after "
              f"{_number(t.after_minutes, ' min')}, fallback {t.fallback or '-'}"
              for t in report.timeouts]
    lines.append("Top matched criteria")
    lines += [f"  {c.criterion.replace('_', ' '):<32}{c.count:>4}" for c in report.top_criteria]
    if not report.top_criteria:
        lines.append("  -")
    if report.load is not None:
        lines += _load(report.load)
    if report.kpis is not None:
        lines += render_kpis(report.kpis)
    lines += _by_team(report)
    return "\n".join(lines) + "\n"


def _buckets(b: Buckets) -> str:
    return f"{b.business_hours:>5}{b.off_hours:>5}{b.sleep_hours:>7}"


def _ascii(text: str) -> str:
    """Names come from PagerDuty: kept to one printable ASCII line, as the rest of the table."""
    return terminal_line(text, 24)


def _load(load: Load) -> list[str]:
    """Interruptions bucketed as PagerDuty's Operational Reviews do (business 08-18 Mon-Fri,
    off 18-22 and weekends, sleep 22-08), per engineer in their own time zone."""
    lines = ["", "Tier 2 load (pages in the period, each engineer's own time zone)",
             "  bus 08-18 Mon-Fri . off 18-22 Mon-Fri and weekends . sleep 22-08 (wins)",
             f"  {'engineer':<26}{'pages':>5}{'bus':>5}{'off':>5}{'sleep':>7}"
             f"{'wkend':>7}{'wkends':>7}{'in a row':>9}  time zone"]
    for e in load.engineers:
        zone = f"{e.time_zone} (assumed)" if e.time_zone_assumed else e.time_zone
        lines.append(f"  {_ascii(e.name) or e.responder_id:<26}{e.interruptions:>5}"
                     f"{_buckets(e.by_bucket)}{e.weekend_pages:>7}{e.weekends_paged:>7}"
                     f"{e.longest_weekend_streak:>9}  {zone}")
        lines += [f"    {c.at.strftime(_WHEN)}  {c.escalation_id}  {_ascii(c.reference) or '-'}  "
                  f"{c.bucket.value.replace('_', ' ')}" for c in e.caused_by]
    if not load.engineers:
        lines.append("  -")
    lines.append(f"  {'team':<26}{'pages':>5}{'bus':>5}{'off':>5}{'sleep':>7}"
                 f"{'wkend':>7}{'wkday':>7}{'ratio':>9}  avoided bus/off/sleep")
    for t in load.teams:
        ratio = "-" if t.weekend_weekday_ratio is None else f"{t.weekend_weekday_ratio:.2f}"
        lines.append(f"  {_ascii(t.team) or '(no team)':<26}{t.interruptions:>5}"
                     f"{_buckets(t.by_bucket)}{t.weekend_pages:>7}{t.weekday_pages:>7}"
                     f"{ratio:>9}  {t.avoided.business_hours}/{t.avoided.off_hours}/"
                     f"{t.avoided.sleep_hours}")
    avoided = load.avoided
    lines.append(f"Pages avoided (declined or held, never paged; {load.time_zone_fallback}): "
                 f"business {avoided.business_hours}, off {avoided.off_hours}, "
                 f"sleep {avoided.sleep_hours}")
    lines.append(f"SMOC decisions ({load.time_zone_fallback})")
    lines += [f"  {_ascii(a.approver):<26}{a.decisions:>5}{_buckets(a.by_bucket)}"
              for a in load.approvers]
    if not load.approvers:
        lines.append("  -")
    return lines


def _by_team(report: Report) -> list[str]:
    """The main figures per Tier 1 team, one line each (`--format json` has every figure)."""
    lines = ["", "By team (minutes p50: to approve, to acknowledge)",
             f"  {'team':<20}{'esc':>5}{'emerg':>7}{'paged':>7}{'share':>8}{'approve':>9}"
             f"{'ack':>7}{'declined':>10}{'timeouts':>10}"]
    for name, team in report.teams.items():
        lines.append(
            f"  {name:<20}{team.escalations:>5}{team.by_outcome['emergency']:>7}"
            f"{team.engineering.paged:>7}{_percent(team.engineering.share):>8}"
            f"{_number(team.time_to_approve.p50_minutes):>9}"
            f"{_number(team.time_to_acknowledge.p50_minutes):>7}"
            f"{len(team.declines):>10}{len(team.timeouts):>10}")
    if not report.teams:
        lines.append("  -")
    return lines
