"""The Tier 2 load section of `report`, the dashboard's JSON, the metrics and the approval request.

Read from the timeline entries of a window (`Store.load_entries`, one range read) and reduced
by `daemon.domain.fatigue`. How the entries become interruptions:

- each responder the Tier 2 page reached, per page of an escalation (a reopened emergency
  paged again interrupts again): the assignees recorded from the Tier 2
  incident's `incident.triggered`, `incident.escalated` and `incident.reassigned` webhooks and
  whoever acknowledged it; interrupted at the later of the page's time and the entry that first
  names them (an acknowledger with no earlier entry was reached by the page itself);
- their time zone is the one recorded with the entry (their PagerDuty profile's); "" (the
  lookup failed) means the business time zone, flagged `time_zone_assumed`; an acknowledgement
  recorded before responders were kept counts its acknowledger by name, the same way;
- an avoided page is an escalation whose approval was asked, then declined or held after the
  timeout, and never paged; bucketed in the business time zone at the moment it was asked;
- a SMOC decision is an `approved` or `declined` entry, bucketed in the business time zone
  (tier2gate knows a SMOC by chat id, not by a PagerDuty profile).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from daemon.clock import to_datetime
from daemon.domain.events import (
    ApprovalRequested,
    ApprovalTimedOut,
    Approved,
    Declined,
    EventKind,
    Paged,
    details_of,
)
from daemon.domain.fatigue import (
    Avoided,
    Bucket,
    Interruption,
    Load,
    SmocDecision,
    compute_load,
    weekend_of,
    zone_or,
)
from daemon.domain.policy import OnTimeout
from daemon.store import Store
from daemon.store.load_reads import LOAD_EVENTS, LoadEntry

_REACHED = (EventKind.PAGE_ASSIGNED, EventKind.PAGE_ESCALATED, EventKind.PAGE_REASSIGNED,
            EventKind.ACKNOWLEDGED)


def _responders(entry: LoadEntry) -> list[dict[str, str]]:
    found = entry.details.get("responders")
    if not isinstance(found, list):
        # An acknowledgement recorded before responders were kept names its acknowledger only
        # by the name PagerDuty gave: counted under that name, in the business time zone.
        if entry.event is EventKind.ACKNOWLEDGED and entry.actor not in ("", "pagerduty"):
            return [{"id": entry.actor, "name": entry.actor, "time_zone": ""}]
        return []
    return [{"id": str(r.get("id", "")), "name": str(r.get("name", "")),
             "time_zone": str(r.get("time_zone", ""))}
            for r in found if isinstance(r, dict) and r.get("id")]


@dataclass
class _Reached:
    name: str
    time_zone: str
    at: datetime  # of the first entry naming them
    acknowledged_at: datetime | None = None


@dataclass
class _Escalation:
    reference: str
    team: str
    pages: list[datetime] = field(default_factory=list)  # each page (a reopen pages again)
    asked_at: datetime | None = None
    spared: bool = False  # declined, or held after the approval timeout

    @property
    def paged_at(self) -> datetime | None:
        return self.pages[0] if self.pages else None


def facts_from(entries: Iterable[LoadEntry]
               ) -> tuple[list[Interruption], list[Avoided], list[SmocDecision]]:
    """Interruptions, avoided pages and SMOC decisions from entries in time order.

    A reopened emergency paged again interrupts its responders again: who a page reached is
    kept per page (the number of `paged` entries so far). The trigger of a page may be
    recorded before the page job's own entry: a `page_assigned` naming someone the current
    page reached already is the trigger of the next page."""
    seen: dict[str, _Escalation] = {}
    reached: dict[tuple[str, int, str], _Reached] = {}
    decisions: list[SmocDecision] = []
    for entry in entries:
        at = to_datetime(entry.at)
        esc = seen.setdefault(entry.escalation_id, _Escalation(entry.reference, entry.team))
        fact = details_of(entry.event, entry.details)
        if isinstance(fact, Paged):
            esc.pages.append(at)
        elif isinstance(fact, ApprovalRequested):
            esc.asked_at = esc.asked_at or at
        elif isinstance(fact, Declined) or (
                isinstance(fact, ApprovalTimedOut) and fact.fallback == OnTimeout.HOLD.value):
            esc.spared = True
        if isinstance(fact, Approved | Declined):
            decisions.append(SmocDecision(approver=entry.actor, at=at,
                                          verdict=entry.event.value))
        if entry.event not in _REACHED:
            continue
        for person in _responders(entry):
            page = max(len(esc.pages), 1)
            key = (entry.escalation_id, page, person["id"])
            if entry.event is EventKind.PAGE_ASSIGNED and key in reached:
                key = (entry.escalation_id, page + 1, person["id"])
            first = reached.setdefault(key, _Reached(person["name"], person["time_zone"], at))
            first.time_zone = first.time_zone or person["time_zone"]
            if entry.event is EventKind.ACKNOWLEDGED and first.acknowledged_at is None:
                first.acknowledged_at = at
    interruptions = []
    for (escalation_id, page, responder_id), one in reached.items():
        esc = seen[escalation_id]
        paged_at = esc.pages[page - 1] if page <= len(esc.pages) else None
        interruptions.append(Interruption(
            escalation_id=escalation_id, reference=esc.reference, responder_id=responder_id,
            responder=one.name, time_zone=one.time_zone,
            at=_reached_at(one.at, paged_at, one.acknowledged_at),
            acknowledged_at=one.acknowledged_at, team=esc.team))
    avoided = [Avoided(escalation_id=escalation_id, at=asked, team=spared.team)
               for escalation_id, spared in seen.items()
               if spared.spared and spared.paged_at is None
               and (asked := spared.asked_at) is not None]
    return interruptions, avoided, decisions


def _reached_at(first_named: datetime, paged_at: datetime | None,
                acknowledged_at: datetime | None) -> datetime:
    """When a responder was interrupted: an acknowledger first named by the acknowledgement
    was reached by the page itself; anyone else when the entry naming them was recorded, never
    before the page went out (a trigger webhook may be recorded before the page job is)."""
    if paged_at is None:
        return first_named
    if acknowledged_at is not None and acknowledged_at == first_named:
        return paged_at
    return max(first_named, paged_at)


def build_load(entries: Sequence[LoadEntry], business_zone: ZoneInfo) -> Load:
    """The load section from the entries of a window (any order)."""
    ordered = sorted((e for e in entries if e.event in LOAD_EVENTS), key=lambda e: e.at)
    return compute_load(*facts_from(ordered), business_zone)


async def load_load(store: Store, since: datetime, until: datetime,
                    business_zone: ZoneInfo, *, pages_only: bool = False) -> Load:
    """The load section for pages dated in [since, until); `pages_only`: the engineers alone
    (no avoided pages, no SMOC decisions), from a read of the page entries only."""
    return build_load(await store.load_entries(since.timestamp(), until.timestamp(),
                                               pages_only=pages_only), business_zone)


STREAK_WEEKS = 13
"""How many weekends back the approval request counts weekends paged in a row: a streak is
longer than the policy's look-back (`fatigue.window_days`, 7 shipped) as soon as it is two."""


@dataclass(frozen=True)
class Recent:
    """One engineer's pages over the policy's look-back, as the approval request shows it."""

    name: str
    pages: int
    weekend_pages: int  # on the weekend `now` is in, or the latest one
    sleep_pages: int
    consecutive_weekends: int  # weekends in a row up to the latest with a page
    weekend_now: bool = True  # `now` is on a weekend; False: `weekend_pages` are the last one's


def recent_load(load: Load, responder_id: str, now: datetime,
                since: datetime | None = None) -> Recent | None:
    """The figures the approval request shows for `responder_id`, None if never paged in
    `load`. Pages, sleep-hour pages and this weekend's pages count from `since` (default: all
    of `load`); weekends in a row reach back over the whole of `load`, up to this weekend when
    it has a page already, else up to the last one (a weekend in progress with no page yet
    has not broken the run: a page now would extend it)."""
    found = next((e for e in load.engineers if e.responder_id == responder_id), None)
    if found is None:
        return None
    recent = [c for c in found.caused_by if since is None or c.at >= since]
    zone, _ = zone_or(found.time_zone, ZoneInfo(load.time_zone_fallback))
    this_weekend = weekend_of(now, zone)
    if this_weekend is None:  # on a weekday: the weekend just gone
        local = now.astimezone(zone).date()
        this_weekend = local - timedelta(days=local.weekday() + 2)
    saturdays = {w for c in found.caused_by if (w := weekend_of(c.at, zone)) is not None}
    week = this_weekend if this_weekend in saturdays else this_weekend - timedelta(days=7)
    run = 0
    while week in saturdays:
        run, week = run + 1, week - timedelta(days=7)
    return Recent(name=found.name, pages=len(recent),
                  weekend_pages=sum(weekend_of(c.at, zone) == this_weekend for c in recent),
                  sleep_pages=sum(c.bucket is Bucket.SLEEP for c in recent),
                  consecutive_weekends=run, weekend_now=weekend_of(now, zone) is not None)
