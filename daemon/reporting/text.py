"""The report as a compact plain-text table: read in a terminal, pasted into a chat or a doc.

ASCII only, so it survives any terminal, pager or paste target.
"""

from __future__ import annotations

from datetime import datetime

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
    lines += [f"  {_when(d.at)}  {d.escalation_id}  {d.reference or '-'}  by {d.by or '-'}: "
              f"{d.reason or '(no reason given)'}" for d in report.declines]
    lines.append(f"Approval timeouts ({len(report.timeouts)})")
    lines += [f"  {_when(t.at)}  {t.escalation_id}  {t.reference or '-'}  after "
              f"{_number(t.after_minutes, ' min')}, fallback {t.fallback or '-'}"
              for t in report.timeouts]
    lines.append("Top matched criteria")
    lines += [f"  {c.criterion.replace('_', ' '):<32}{c.count:>4}" for c in report.top_criteria]
    if not report.top_criteria:
        lines.append("  -")
    lines += _by_team(report)
    return "\n".join(lines) + "\n"


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
