"""The Escalation Engineer layer's figures: how much the EEs resolve without Engineering.

The program's goal is to engage Engineering on 10% or less of the issues Support escalates;
its real denominator is the escalations offered to the EEs. From `ee_work` (one row per
offered escalation): counts aggregated by the database per rotation and owner, and one number
per taken escalation for the percentiles, plus the open escalations per EE now (an
aggregate). Times to engagement are from the offer to "Take it", in minutes. Over 100,000
offered escalations on SQLite it takes about 0.3 s (2 cores, 2026-11-29).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from daemon.reporting.report import PAGE_GOAL_PERCENT, Durations, percentile
from daemon.store import Store
from daemon.store.ee_reads import EEGroupRow, EEWindow


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EEGroup(_Model):
    """One rotation's or one EE's share of the EE-offered escalations."""

    key: str  # the rotation id, or the EE's chat user id
    offered: int  # offered to the rotation (per EE: taken by them)
    taken: int
    resolved_without_engineering: int
    reached_engineering: int
    open: int  # owned and not over
    time_to_engagement: Durations


class EELayer(_Model):
    offered: int
    taken: int
    resolved_without_engineering: int
    reached_engineering: int
    engineering_share: float | None  # reached_engineering / offered; None when none offered
    goal: float = PAGE_GOAL_PERCENT / 100
    goal_met: bool
    time_to_engagement: Durations
    by_rotation: tuple[EEGroup, ...]
    by_ee: tuple[EEGroup, ...]
    open_per_ee: dict[str, int]  # now, whatever the window: what each EE owns


class _Tally:
    def __init__(self) -> None:
        self.offered = self.taken = self.resolved = self.engineering = self.open = 0
        self.minutes: list[float] = []

    def add(self, row: EEGroupRow) -> None:
        self.offered += row.offered
        self.taken += row.taken
        self.resolved += row.resolved
        self.engineering += row.engineering
        self.open += row.open

    def group(self, key: str) -> EEGroup:
        return EEGroup(key=key, offered=self.offered, taken=self.taken,
                       resolved_without_engineering=self.resolved,
                       reached_engineering=self.engineering, open=self.open,
                       time_to_engagement=_durations(self.minutes))


def _durations(minutes: list[float]) -> Durations:
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return Durations(samples=len(minutes), p50_minutes=rounded(percentile(minutes, 50)),
                     p90_minutes=rounded(percentile(minutes, 90)))


def ee_layer(window: EEWindow, open_per_ee: Mapping[str, int]) -> EELayer:
    """The figures from the window's aggregates and engagement times."""
    total = _Tally()
    rotations: dict[str, _Tally] = defaultdict(_Tally)
    owners: dict[str, _Tally] = defaultdict(_Tally)
    for row in window.groups:
        for tally in (total, rotations[row.rotation], *([owners[row.owner]] if row.owner
                                                        else [])):
            tally.add(row)
    for rotation, owner, seconds in window.engagements:
        minutes = seconds / 60.0
        total.minutes.append(minutes)
        rotations[rotation].minutes.append(minutes)
        owners[owner].minutes.append(minutes)
    share = round(total.engineering / total.offered, 4) if total.offered else None
    return EELayer(
        offered=total.offered, taken=total.taken, resolved_without_engineering=total.resolved,
        reached_engineering=total.engineering, engineering_share=share,
        goal_met=total.engineering * 100 <= PAGE_GOAL_PERCENT * total.offered,
        time_to_engagement=_durations(total.minutes),
        by_rotation=tuple(t.group(key) for key, t in sorted(rotations.items())),
        by_ee=tuple(t.group(key) for key, t in sorted(owners.items())),
        open_per_ee=dict(sorted(open_per_ee.items())))


async def load_ee_layer(store: Store, since: datetime, until: datetime) -> EELayer:
    window = await store.ee_window(since.timestamp(), until.timestamp())
    return ee_layer(window, await store.ee_open_per_owner())


def render_ee_text(layer: EELayer) -> str:
    """The EE section of `tier2gate report` (text)."""
    share = "-" if layer.engineering_share is None else f"{layer.engineering_share * 100:.1f}%"
    verdict = "met" if layer.goal_met else "MISSED"
    ttl = layer.time_to_engagement

    def minutes(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [
        "",
        "Escalation Engineers",
        f"  {'offered to EEs':<28}{layer.offered:>5}",
        f"  {'taken by an EE':<28}{layer.taken:>5}",
        f"  {'resolved without Eng.':<28}{layer.resolved_without_engineering:>5}",
        f"  {'reached Engineering':<28}{layer.reached_engineering:>5}   {share} "
        f"(goal <= {layer.goal * 100:.0f}%: {verdict})",
        f"  {'minutes to EE engagement':<28}{ttl.samples:>5}  p50 {minutes(ttl.p50_minutes)}"
        f"  p90 {minutes(ttl.p90_minutes)}",
    ]
    for title, groups in (("per rotation", layer.by_rotation), ("per EE", layer.by_ee)):
        lines.append(f"  {title}: offered/taken/resolved/engineering/open, p50 min to take")
        lines += [f"    {g.key:<26}{g.offered:>4}{g.taken:>4}"
                  f"{g.resolved_without_engineering:>4}{g.reached_engineering:>4}{g.open:>4}"
                  f"   {minutes(g.time_to_engagement.p50_minutes)}" for g in groups] or ["    -"]
    lines.append("  open now per EE: " + (" . ".join(
        f"{owner} {n}" for owner, n in layer.open_per_ee.items()) or "-"))
    return "\n".join(lines) + "\n"
