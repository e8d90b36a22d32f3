"""Tier 2 load: who was interrupted by tier2gate's pages, when in their own day, and for what.

Interruptions are bucketed the way PagerDuty's Operational Reviews define them
(https://support.pagerduty.com/pd-support/docs/operational-reviews, "Interruptions"), in the
responder's own time zone (their PagerDuty profile's `time_zone`):

- business hours: 08:00-18:00 Monday to Friday;
- off hours: 18:00-22:00 Monday to Friday, and all day on Saturday and Sunday;
- sleep hours: 22:00-08:00, every day.

PagerDuty's off-hours weekend ("all day") and its sleep hours (22-08) overlap on weekend
nights: there sleep hours win, since being woken is the harder interruption and PagerDuty's own
sleep-hour definition names no weekday. So every moment is in exactly one bucket.

An interruption is one responder paged for one escalation (PagerDuty counts one interruption per
notification; tier2gate sees the page, who it was assigned to and who acknowledged it, not each
phone call). What no on-call tool knows and this module adds: the escalation that caused each
interruption, the pages the SMOC avoided (declined, or held after the approval timeout, and
never paged) by the bucket of the moment they were asked, and the SMOC's own decisions by bucket.

Pure: facts in, figures out; the caller reads them from the timeline and supplies the business
time zone, used for a responder whose time zone is unknown (lookup failed) and for the SMOC and
the avoided pages, who have no PagerDuty responder.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict

from daemon.domain.teams import DEFAULT_TEAM

SLEEP_STARTS_H = 22
SLEEP_ENDS_H = 8
OFF_STARTS_H = 18
SATURDAY = 5


class Bucket(StrEnum):
    BUSINESS = "business_hours"
    OFF = "off_hours"
    SLEEP = "sleep_hours"


def zone_or(name: str, fallback: ZoneInfo) -> tuple[ZoneInfo, bool]:
    """(the IANA zone `name`, False), or (fallback, True) when `name` is empty or unknown:
    not a zone, a folder of zones ("America": IsADirectoryError) or too long for a file
    name (OSError) alike."""
    if name:
        try:
            return ZoneInfo(name), False
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    return fallback, True


def bucket(at: datetime, zone: ZoneInfo) -> Bucket:
    """The Operational Reviews bucket of the aware moment `at` on a wall clock in `zone`."""
    return _bucket(at.astimezone(zone))


def weekend_of(at: datetime, zone: ZoneInfo) -> date | None:
    """The Saturday of the weekend `at` falls on in `zone` (local Saturday or Sunday), or None
    on a weekday."""
    return _weekend(at.astimezone(zone))


def _bucket(local: datetime) -> Bucket:
    if local.hour >= SLEEP_STARTS_H or local.hour < SLEEP_ENDS_H:
        return Bucket.SLEEP
    if local.weekday() >= SATURDAY or local.hour >= OFF_STARTS_H:
        return Bucket.OFF
    return Bucket.BUSINESS


def _weekend(local: datetime) -> date | None:
    day = local.date()
    if day.weekday() < SATURDAY:
        return None
    return day - timedelta(days=day.weekday() - SATURDAY)


def longest_run(saturdays: Iterable[date]) -> int:
    """The most weekends in a row in `saturdays` (each a Saturday)."""
    best = run = 0
    previous: date | None = None
    for saturday in sorted(set(saturdays)):
        run = run + 1 if previous is not None and saturday - previous == timedelta(days=7) else 1
        best, previous = max(best, run), saturday
    return best


@dataclass(frozen=True)
class Interruption:
    """One responder paged for one escalation at `at` (UTC-aware)."""

    escalation_id: str
    reference: str
    responder_id: str  # the PagerDuty user id
    responder: str  # their name as PagerDuty gave it (untrusted text)
    time_zone: str  # IANA name from their PagerDuty profile; "" when the lookup failed
    at: datetime
    acknowledged_at: datetime | None = None
    team: str = DEFAULT_TEAM


@dataclass(frozen=True)
class Avoided:
    """An emergency the SMOC was asked about at `at` that was declined or held, never paged."""

    escalation_id: str
    at: datetime
    team: str = DEFAULT_TEAM


@dataclass(frozen=True)
class SmocDecision:
    """A SMOC's approve or decline at `at`."""

    approver: str  # chat user id
    at: datetime
    verdict: str  # "approved" or "declined"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Buckets(_Model):
    business_hours: int = 0
    off_hours: int = 0
    sleep_hours: int = 0

    @classmethod
    def of(cls, buckets: Iterable[Bucket]) -> Buckets:
        counts = Counter(b.value for b in buckets)
        return cls(**counts)

    @property
    def total(self) -> int:
        return self.business_hours + self.off_hours + self.sleep_hours


class Caused(_Model):
    """An interruption tied to the escalation that caused it."""

    escalation_id: str
    reference: str
    at: AwareDatetime
    bucket: Bucket
    acknowledged_after_minutes: float | None


class EngineerLoad(_Model):
    responder_id: str
    name: str
    time_zone: str  # the zone the buckets were judged in
    time_zone_assumed: bool  # True: PagerDuty's was unknown, the business time zone was used
    interruptions: int
    by_bucket: Buckets
    weekend_pages: int
    weekday_pages: int
    weekends_paged: int
    longest_weekend_streak: int  # consecutive weekends with at least one page
    caused_by: tuple[Caused, ...]


class TeamLoad(_Model):
    team: str  # the Tier 1 team of the escalations (`domain.teams`)
    interruptions: int
    by_bucket: Buckets
    weekend_pages: int
    weekday_pages: int
    weekend_weekday_ratio: float | None  # None when there was no weekday page
    avoided: Buckets


class ApproverLoad(_Model):
    approver: str  # chat user id
    decisions: int
    by_bucket: Buckets  # judged in the business time zone


class Load(_Model):
    """The load section of `report` (per engineer, per team), over the report's window."""

    time_zone_fallback: str  # the business time zone, used where a responder's is unknown
    engineers: tuple[EngineerLoad, ...]
    teams: tuple[TeamLoad, ...]
    avoided: Buckets
    approvers: tuple[ApproverLoad, ...]


def _ratio(weekend: int, weekday: int) -> float | None:
    return round(weekend / weekday, 3) if weekday else None


def compute_load(interruptions: Sequence[Interruption], avoided: Sequence[Avoided],
                 decisions: Sequence[SmocDecision], business_zone: ZoneInfo) -> Load:
    """Every figure of the load section, in one pass over each input."""
    # Each interruption's moment is judged once (its bucket and weekend on the responder's
    # wall clock): a month's thousand interruptions were converted five times each.
    per_engineer: dict[str, list[tuple[Interruption, ZoneInfo, bool, Bucket, date | None]]] = (
        defaultdict(list))
    team_buckets: dict[str, list[Bucket]] = defaultdict(list)
    team_weekend: Counter[str] = Counter()
    for item in interruptions:
        zone, assumed = zone_or(item.time_zone, business_zone)
        local = item.at.astimezone(zone)
        judged = _bucket(local)
        saturday = _weekend(local)
        per_engineer[item.responder_id].append((item, zone, assumed, judged, saturday))
        team_buckets[item.team].append(judged)
        team_weekend[item.team] += saturday is not None
    engineers = []
    for responder_id, items in per_engineer.items():
        items.sort(key=lambda entry: entry[0].at)
        latest, zone, assumed, _, _ = items[-1]
        weekends = [w for *_, w in items if w is not None]
        engineers.append(EngineerLoad(
            responder_id=responder_id, name=latest.responder, time_zone=zone.key,
            time_zone_assumed=assumed, interruptions=len(items),
            by_bucket=Buckets.of(b for *_, b, _ in items),
            weekend_pages=len(weekends), weekday_pages=len(items) - len(weekends),
            weekends_paged=len(set(weekends)), longest_weekend_streak=longest_run(weekends),
            caused_by=tuple(Caused(
                escalation_id=i.escalation_id, reference=i.reference, at=i.at, bucket=b,
                acknowledged_after_minutes=(round((i.acknowledged_at - i.at).total_seconds()
                                                  / 60, 2)
                                            if i.acknowledged_at is not None else None))
                for i, _, _, b, _ in items)))
    engineers.sort(key=lambda e: (-e.by_bucket.sleep_hours, -e.interruptions, e.responder_id))
    avoided_by_team: dict[str, list[Bucket]] = defaultdict(list)
    for spared in avoided:
        avoided_by_team[spared.team].append(bucket(spared.at, business_zone))
    teams = []
    for team in sorted(set(team_buckets) | set(avoided_by_team)):
        count = len(team_buckets[team])
        weekend = team_weekend[team]
        teams.append(TeamLoad(
            team=team, interruptions=count, by_bucket=Buckets.of(team_buckets[team]),
            weekend_pages=weekend, weekday_pages=count - weekend,
            weekend_weekday_ratio=_ratio(weekend, count - weekend),
            avoided=Buckets.of(avoided_by_team[team])))
    per_approver: dict[str, list[Bucket]] = defaultdict(list)
    for decision in decisions:
        per_approver[decision.approver].append(bucket(decision.at, business_zone))
    approvers = sorted(
        (ApproverLoad(approver=who, decisions=len(found), by_bucket=Buckets.of(found))
         for who, found in per_approver.items()),
        key=lambda a: (-a.by_bucket.sleep_hours, -a.decisions, a.approver))
    return Load(time_zone_fallback=business_zone.key, engineers=tuple(engineers),
                teams=tuple(teams),
                avoided=Buckets.of(b for found in avoided_by_team.values() for b in found),
                approvers=tuple(approvers))
