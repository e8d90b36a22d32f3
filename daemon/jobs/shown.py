"""What an approval request showed the SMOC, kept with it: the evidence pack and the Tier 2
load line, recorded on `approval_requested` so that every later rendering of the message (an
update, a direct-message copy) shows the same, and `report` can count evidence completeness."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from daemon.domain.fatigue import weekend_of
from daemon.domain.transitions import Record
from daemon.integrations.base import ApprovalView, Tier2Load
from daemon.jobs.deps import Deps
from daemon.logging import get_logger
from daemon.reporting.load import STREAK_WEEKS, load_load, recent_load
from daemon.store import TimelineEntry
from daemon.store.mapping import Loaded
from daemon.workers.retry import Permanent, Retry

EVIDENCE = "evidence"  # the key of the evidence pack in `approval_requested` details
TIER2_LOAD = "tier2_load"  # ... and of the Tier 2 load line it showed

log = get_logger("tier2gate.approval")


def with_evidence(record: Record, view: ApprovalView) -> Record:
    """The `approval_requested` entry with what the SMOC was shown of the evidence pack
    (`evidence`: present, missing, complete): the source of `report`'s evidence completeness,
    one per request (a reopened incident's new round records its own). A policy that lists
    no evidence showed none: nothing is recorded, so the request counts in no completeness.
    The Tier 2 load line it showed is kept too (`tier2_load`, null for none), so every later
    rendering of the message shows the same."""
    if record.event != "approval_requested":
        return record
    details = {**record.details, TIER2_LOAD: (dataclasses.asdict(view.tier2_load)
                                             if view.tier2_load is not None else None)}
    if view.evidence_present or view.evidence_missing:
        details[EVIDENCE] = {
            "present": list(view.evidence_present), "missing": list(view.evidence_missing),
            "complete": not view.evidence_missing}
    return dataclasses.replace(record, details=details)


def shown_load(entries: list[TimelineEntry], channel: str, ts: str
               ) -> tuple[bool, Tier2Load | None]:
    """(found, the load) the request posted as `channel`/`ts` showed; found is False for a
    request recorded before the load was kept."""
    for entry in reversed(entries):
        if (entry.event == "approval_requested" and entry.details.get("ts") == ts
                and entry.details.get("channel") == channel and TIER2_LOAD in entry.details):
            kept = entry.details[TIER2_LOAD]
            if not isinstance(kept, dict):
                return True, None
            try:
                return True, Tier2Load(**{**kept,
                                          "warnings": tuple(kept.get("warnings") or ())})
            except TypeError:  # kept by another version: worked out again instead
                return False, None
    return False, None




async def shown_tier2_load(deps: Deps, current: Loaded) -> Tier2Load | None:
    """The load the request showed when posted; worked out again (as of then) only for
    a request recorded before it was kept."""
    approval = current.gate.approval
    assert approval is not None
    found, load = shown_load(await deps.store.timeline(current.row.id),
                             approval.channel, approval.ts)
    return load if found else await tier2_load(deps, approval.requested_at)


async def tier2_load(deps: Deps, until: datetime) -> Tier2Load | None:
    """The recent pages of the Tier 2 engineer who would be paged, as of `until`: whoever
    is on call on `pagerduty.tier2_schedule_id`, else (no schedule, nobody on call, or the
    lookup failed) whoever tier2gate paged last in the window. None when neither is known.
    One range read of the window's page entries; never holds up the request."""
    policy = deps.policy.current()
    fatigue = policy.fatigue
    since = until - timedelta(days=fatigue.window_days)
    # Weekends in a row reach further back than the window: read that far, the page
    # entries only (on the request's way to the SMOC: the decisions are not wanted here).
    load = await load_load(deps.store,
                           min(since, until - timedelta(weeks=STREAK_WEEKS)),
                           until, policy.business_hours.zone, pages_only=True)
    on_call = None
    if deps.pager is not None:
        try:
            on_call = await deps.pager.tier2_on_call()
        except (Retry, Permanent) as exc:
            log.warning("approval.tier2_on_call_unresolved", error=str(exc))
    if on_call is not None:
        responder_id, name = on_call
    else:
        paged = [(c.at, e.responder_id, e.name) for e in load.engineers for c in e.caused_by
                 if c.at >= since]
        if not paged:
            return None
        _, responder_id, name = max(paged)
    recent = recent_load(load, responder_id, until, since)
    if recent is None:  # on call, and never paged by tier2gate as far back as read
        return Tier2Load(name=name, on_call=True, pages=0, weekend_pages=0, sleep_pages=0,
                         weekends_in_a_row=0, window_days=fatigue.window_days,
                         weekend_now=weekend_of(until, policy.business_hours.zone)
                         is not None)
    return Tier2Load(
        name=recent.name if on_call is None else name, on_call=on_call is not None,
        pages=recent.pages, weekend_pages=recent.weekend_pages,
        sleep_pages=recent.sleep_pages, weekends_in_a_row=recent.consecutive_weekends,
        window_days=fatigue.window_days,
        weekend_now=recent.weekend_now,
        warnings=fatigue.warnings(recent.sleep_pages, recent.weekend_pages,
                                  recent.consecutive_weekends,
                                  weekend_now=recent.weekend_now))

