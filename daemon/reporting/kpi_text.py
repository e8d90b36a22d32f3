"""The KPIs as plain-text lines for `tier2gate report` (ASCII, like the rest of it)."""

from __future__ import annotations

from daemon.markup import terminal_line
from daemon.reporting.kpis import Kpis, Named, Share


def _ascii(text: str, limit: int = 40) -> str:
    """Names that came from incidents or trackers (customers, services, references, links)."""
    return terminal_line(text, limit)


def _verdict(meets: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "no data"}[meets]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def _share(name: str, share: Share, *, at_most: bool = False) -> str:
    target = "-" if share.target is None else f"{'<=' if at_most else '>='} " \
                                              f"{share.target * 100:.0f}%"
    return (f"  {name:<28}{share.count:>4} of {share.total:<4} {_percent(share.share):>7}"
            f"   target {target}: {_verdict(share.meets)}")


def _names(name: str, found: tuple[Named, ...]) -> str:
    return f"  {name:<28}" + (" . ".join(f"{_ascii(n.name)} {n.count}" for n in found)
                                 or "-")


def render_kpis(kpis: Kpis) -> list[str]:
    """Every KPI with its target and whether it is met."""
    lines = ["", "KPIs (targets from the kpi: settings)",
             f"  {'Minutes to acknowledge':<28}{'n':>4}{'p50':>9}{'p90':>9}   target (p90)"]
    for ack in kpis.time_to_acknowledge:
        judged = ("no target" if ack.target_minutes is None
                  else f"<= {ack.target_minutes:g} min: {_verdict(ack.meets)}")
        lines.append(f"    {_ascii(ack.severity) or '(unmapped)':<26}{ack.samples:>4}"
                     f"{_number(ack.p50_minutes):>9}{_number(ack.p90_minutes):>9}   {judged}")
    engage = kpis.time_to_engage
    lines.append(f"  {'Minutes to engage Tier 2':<28}{engage.samples:>4}"
                 f"{_number(engage.p50_minutes):>9}{_number(engage.p90_minutes):>9}")
    lines.append(_share("Reopen rate", kpis.reopen_rate, at_most=True))
    lines.append("  Retros complete")
    for retro in kpis.retro_completion:
        target = "-" if retro.target is None else f">= {retro.target * 100:.0f}%"
        lines.append(f"    {_ascii(retro.severity):<26}{retro.complete:>4} of {retro.opened:<4} "
                     f"{_percent(retro.share):>7}   target {target}: {_verdict(retro.meets)}"
                     f"   ({retro.closed} closed)")
    for retro in kpis.retro_completion_by_team:
        target = "-" if retro.target is None else f">= {retro.target * 100:.0f}%"
        name = _ascii(f"{retro.team} {retro.severity}")
        lines.append(f"    {name:<26}{retro.complete:>4} of {retro.opened:<4} "
                     f"{_percent(retro.share):>7}   target {target}: {_verdict(retro.meets)}"
                     f"   ({retro.closed} closed)")
    lines.append(f"  Overdue retros ({len(kpis.overdue_retros)})")
    lines += [f"    {r.escalation_id}  {_ascii(r.team)}  {_ascii(r.reference) or '-'}  "
              f"{_ascii(r.severity) or '-'}  open {r.open_days:g} days  {_ascii(r.url, 300)}"
              for r in kpis.overdue_retros]
    cadence = kpis.update_cadence
    lines.append(f"  {'Update cadence':<28}{_percent(cadence.share_within):>7} of "
                 f"{cadence.active_minutes:g} active min within cadence   target >= "
                 f"{cadence.target * 100:.0f}%: {_verdict(cadence.meets)}"
                 f"   ({cadence.quiet_spells} quiet now)")
    lines.append(_share("Evidence pack complete", kpis.evidence_complete))
    lines += [_share(f"  {_ascii(team.team)}", Share(count=team.count, total=team.total,
                                             share=team.share, target=team.target,
                                             meets=team.meets))
              for team in kpis.evidence_by_team]
    lines.append(_names("Repeat customers", kpis.repeat_customers))
    lines.append(_names("Top customers", kpis.top_customers))
    lines.append(_names("Top services", kpis.top_services))
    return lines
