"""The Tier 2 load section of `report`, the dashboard's JSON, the metrics and the approval request.

Made of three kinds of facts, each dated by its own time (the window holds the facts dated in
it, whenever the escalation opened), and reduced by `daemon.domain.fatigue`:

- interruptions: each responder a Tier 2 page reached (`daemon.store.load_facts` says who and
  when), at the moment they were reached; their time zone is the one recorded (their
  PagerDuty profile's), "" (the lookup failed, or an acknowledgement recorded before
  responders were kept) means the business time zone, flagged `time_zone_assumed`;
- avoided pages: escalations whose approval was asked, then declined or held after the
  timeout, and never paged; bucketed in the business time zone at the moment first asked;
- SMOC decisions: `approved` and `declined` entries, bucketed in the business time zone
  (tier2gate knows a SMOC by chat id, not by a PagerDuty profile).

`load_load` reads them from the store (`Store.load_facts`: rows kept as the entries were
written, three index ranges); `build_load` defines the same from timeline entries in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from daemon.clock import to_datetime
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
from daemon.store.load_facts import reaches
from daemon.store.load_reads import (
    DECISION_EVENTS,
    LOAD_EVENTS,
    AvoidedPage,
    Decided,
    LoadEntry,
    LoadFacts,
    PageReach,
)


def facts_from(entries: Iterable[LoadEntry]) -> LoadFacts:
    """Every fact of the load from entries in time order, whenever dated: what the store
    keeps as the same entries are written."""
    ordered = list(entries)
    known = {e.escalation_id: (e.reference, e.team) for e in reversed(ordered)}
    asked: dict[str, float] = {}
    spared: set[str] = set()
    paged: set[str] = set()
    decisions = []
    for entry in ordered:
        if entry.event == "paged":
            paged.add(entry.escalation_id)
        elif entry.event == "approval_requested":
            asked.setdefault(entry.escalation_id, entry.at)
        elif entry.event == "declined" or (
                entry.event == "approval_timed_out"
                and entry.details.get("fallback") == OnTimeout.HOLD.value):
            spared.add(entry.escalation_id)
        if entry.event in DECISION_EVENTS:
            decisions.append(Decided(approver=entry.actor, at=entry.at, verdict=entry.event))
    return LoadFacts(
        reaches=tuple(PageReach(reach=reach, reference=known[reach.escalation_id][0],
                                team=known[reach.escalation_id][1])
                      for reach in reaches(ordered)),
        avoided=tuple(AvoidedPage(escalation_id=esc_id, asked_at=at,
                                  team=known[esc_id][1])
                      for esc_id, at in asked.items() if esc_id in spared
                      and esc_id not in paged),
        decisions=tuple(decisions))


def in_window(facts: LoadFacts, since: float, until: float) -> LoadFacts:
    """The facts dated in [since, until) (epoch seconds), as the store reads a window."""
    return LoadFacts(
        reaches=tuple(r for r in facts.reaches if since <= r.reach.at < until),
        avoided=tuple(a for a in facts.avoided if since <= a.asked_at < until),
        decisions=tuple(d for d in facts.decisions if since <= d.at < until))


def load_from(facts: LoadFacts, business_zone: ZoneInfo) -> Load:
    """The load section from its facts (any order: each engineer's interruptions are taken
    in time order, ties by escalation and responder, whichever backend listed them)."""
    reached = sorted(facts.reaches, key=lambda r: (r.reach.at, r.reach.escalation_id,
                                                   r.reach.page, r.reach.responder_id))
    interruptions = [Interruption(
        escalation_id=r.reach.escalation_id, reference=r.reference,
        responder_id=r.reach.responder_id, responder=r.reach.responder,
        time_zone=r.reach.time_zone, at=to_datetime(r.reach.at),
        acknowledged_at=(None if r.reach.acknowledged_at is None
                         else to_datetime(r.reach.acknowledged_at)), team=r.team)
        for r in reached]
    avoided = [Avoided(escalation_id=a.escalation_id, at=to_datetime(a.asked_at), team=a.team)
               for a in facts.avoided]
    decisions = [SmocDecision(approver=d.approver, at=to_datetime(d.at), verdict=d.verdict)
                 for d in facts.decisions]
    return compute_load(interruptions, avoided, decisions, business_zone)


def build_load(entries: Sequence[LoadEntry], business_zone: ZoneInfo,
               since: float = float("-inf"), until: float = float("inf")) -> Load:
    """The load section of the facts dated in [since, until) (epoch seconds; default: all),
    from timeline entries in memory (any order, any events)."""
    ordered = sorted((e for e in entries if e.event in LOAD_EVENTS), key=lambda e: e.at)
    return load_from(in_window(facts_from(ordered), since, until), business_zone)


async def load_load(store: Store, since: datetime, until: datetime,
                    business_zone: ZoneInfo, *, pages_only: bool = False) -> Load:
    """The load section for the facts dated in [since, until); `pages_only`: the engineers
    alone (no avoided pages, no SMOC decisions), from a read of the reaches only."""
    return load_from(await store.load_facts(since.timestamp(), until.timestamp(),
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
