"""After the page: retros followed until done, and active emergencies kept talking.

Two periodic jobs, each one per period across all replicas (keyed by the period's number, like
`prune`), each scheduling the next:

- `retro_poll` reads open retro issues back from the tracker, a bounded batch per run (the
  next batch follows a minute later, resuming after the last id read), and records
  `retro_closed` (with the sections still empty) once the tracker says closed. One closed
  with a section empty is read on for `retro_overdue_days` after it closed: written then,
  it is recorded closed again, complete. A retro open
  longer than `followthrough.retro_overdue_days` gets one reminder per such period in the
  escalation's Slack thread: the `retro_reminded` entry (once key per period) and the
  `thread_note` job (key per period) are written together, so a restart or a second replica
  can never remind twice in a period. A rate limit or an outage of the tracker ends the batch
  early; the rest waits for the vendor's Retry-After.
- `update_cadence` looks at every active emergency (approved or paged, not resolved): its
  latest update is the latest of the moment Tier 2 was engaged, the source incident's own
  `updated_at`, the timeline's vendor updates (acknowledged, updated, page events, PagerDuty
  notes and status updates) and the newest reply by a person in its Slack thread. Quiet for
  longer than the policy's `update_cadence_minutes` for its severity: one `update_overdue`
  entry and one nudge naming who holds it per quiet spell (both keyed by the moment of the
  last update); the spell ends (`update_resumed`, with how long it was overdue) at the next
  update or when the emergency ends. `report` adds those durations up into the share of
  active time within cadence.
"""

from __future__ import annotations

import math
from typing import Any

from daemon.domain.gate import Phase
from daemon.domain.retro_sections import missing_sections
from daemon.domain.transitions import DAEMON, THREAD_NOTE
from daemon.integrations.base import MessageRef
from daemon.jobs.deps import Deps
from daemon.jobs.intake import INCIDENT_UPDATE
from daemon.jobs.issues import retro_marker
from daemon.logging import get_logger
from daemon.markup import slack_link, slack_literal, slack_mention
from daemon.settings import FollowthroughSettings
from daemon.store import Changes, Job, NewEvent, NewJob, TimelineEntry
from daemon.store.followthrough import (
    RESUMED_PREFIX,
    RETRO_CLOSED,
    RETRO_COMPLETED_KEY,
    UPDATE_OVERDUE,
    UPDATE_RESUMED,
)
from daemon.store.mapping import Loaded
from daemon.workers.retry import Permanent, Retry

RETRO_POLL = "retro_poll"
CADENCE = "update_cadence"
RETRO_REMINDED = "retro_reminded"
ACTIVE = (Phase.PAGING, Phase.PAGED, Phase.ACKNOWLEDGED)
ENGAGED_EVENTS = ("approved", "paged", "would_have_paged")
UPDATE_EVENTS = frozenset({"updated", "acknowledged", "page_escalated", "page_reassigned",
                           "page_resolved", "page_delegated", "reopened", INCIDENT_UPDATE})
"""Timeline entries that are news from the incident's people or vendors (not tier2gate's)."""
NEXT_BATCH_S = 60.0  # a full batch of the retro poll is followed by the next one this soon

log = get_logger("tier2gate.followthrough")


def _periodic(kind: str, interval_s: float, now_s: float, *, next_period: bool,
              payload: dict[str, Any] | None = None, suffix: str = "") -> NewJob:
    period = math.floor(now_s / interval_s) + (1 if next_period else 0)
    run_at = period * interval_s if next_period else now_s
    return NewJob(kind, f"{kind}:{interval_s:g}:{period}{suffix}", payload or {}, run_at)


def retro_poll_job(settings: FollowthroughSettings, now_s: float, *,
                   next_period: bool = False) -> NewJob:
    """The retro poll of the period `now_s` falls in (due now), or of the next one."""
    return _periodic(RETRO_POLL, settings.retro_poll_interval_s, now_s, next_period=next_period)


def cadence_job(settings: FollowthroughSettings, now_s: float, *,
                next_period: bool = False) -> NewJob:
    """The cadence check of the period `now_s` falls in (due now), or of the next one."""
    return _periodic(CADENCE, settings.cadence_check_interval_s, now_s,
                     next_period=next_period)


def _days(seconds: float) -> str:
    days = int(seconds // 86400)
    return f"{days} day{'s' if days != 1 else ''}"


class Followthrough:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.settings = deps.settings.followthrough

    # --- retros ---------------------------------------------------------------------------

    async def retro_poll(self, job: Job) -> Changes:
        now_s = self.deps.clock.now()
        settings = self.settings
        after = str(job.payload.get("after", ""))
        # A later batch of the same period is keyed by the period and where it starts.
        period_key = job.key.split(">", 1)[0]
        nxt = retro_poll_job(settings, now_s, next_period=True)
        tracker = self.deps.tracker
        if tracker is None or self.deps.shadow:
            return Changes(jobs=(nxt,))
        overdue_s = settings.retro_overdue_days * 86400
        # A retro closed with a section empty is read on for as long as an open one is given:
        # its sections may be written after the close.
        batch = await self.deps.store.open_retros(after, settings.retro_poll_batch,
                                                  closed_since=now_s - overdue_s)
        events: list[NewEvent] = []
        jobs: list[NewJob] = []
        last = after
        for escalation_id, opened_at, closed_at in batch:
            try:
                state = await tracker.find_state(retro_marker(escalation_id))
            except Retry as exc:
                # Rate-limited or down: the rest of this batch waits for the tracker.
                wait_s = max(exc.after_s or 0.0, NEXT_BATCH_S)
                log.warning("retro_poll.deferred", escalation_id=escalation_id,
                            reason=exc.reason, wait_s=wait_s)
                jobs.append(NewJob(RETRO_POLL, f"{period_key}>{last}@{now_s:.0f}",
                                   {"after": last}, now_s + wait_s))
                return Changes(events=tuple(events), jobs=(*jobs, nxt))
            except Permanent as exc:
                log.warning("retro_poll.unreadable", escalation_id=escalation_id,
                            reason=exc.reason)
                last = escalation_id
                continue
            last = escalation_id
            if state is None:
                log.warning("retro_poll.not_found", escalation_id=escalation_id)
                continue
            missing = missing_sections(state.body)
            if closed_at is not None:
                # Seen closed before with a section empty: now complete, it counts as such
                # (a second `retro_closed`, once); reopened in the tracker, it is not
                # reminded of (it was closed once).
                if state.closed and not missing:
                    events.append(NewEvent(escalation_id, RETRO_CLOSED, "tracker", now_s, {
                        "url": state.ref.url, "complete": True, "missing": [],
                        "completed_after_close": True}, RETRO_COMPLETED_KEY))
                continue
            if state.closed:
                events.append(NewEvent(escalation_id, RETRO_CLOSED, "tracker", now_s, {
                    "url": state.ref.url, "complete": not missing, "missing": list(missing)},
                    RETRO_CLOSED))
                continue
            period = math.floor((now_s - opened_at) / overdue_s)
            if period >= 1:
                reminder = await self._reminder(escalation_id, period, now_s - opened_at,
                                                state.ref.url, state.assignee, state.body)
                if reminder is not None:
                    events.append(reminder[0])
                    jobs.append(reminder[1])
        if len(batch) == settings.retro_poll_batch:
            jobs.append(NewJob(RETRO_POLL, f"{period_key}>{last}", {"after": last},
                               now_s + NEXT_BATCH_S))
        return Changes(events=tuple(events), jobs=(*jobs, nxt))

    async def _reminder(self, escalation_id: str, period: int, open_s: float, url: str,
                        assignee: str, body: str) -> tuple[NewEvent, NewJob] | None:
        """The reminder of `period` for an overdue retro, unless it was given already."""
        once = f"{RETRO_REMINDED}:{period}"
        entries = await self.deps.store.timeline(escalation_id)
        if any(e.event == RETRO_REMINDED and e.details.get("period") == period
               for e in entries):
            return None
        missing = missing_sections(body)
        # The tracker's name for the assignee, as code: never a Slack mention or markup.
        shown = slack_literal(" ".join(assignee.replace("`", "'").split()))
        who = f"`{shown}` (assignee)" if shown else "Whoever owns it"
        still = (f" Still to fill in: {', '.join(missing)}." if missing
                 else " Every section is filled in: close it when it is done.")
        text = (f":memo: The retro {slack_link(url, 'issue')} has been open for "
                f"{_days(open_s)}. {who}: please finish it.{still}")
        now_s = self.deps.clock.now()
        event = NewEvent(escalation_id, RETRO_REMINDED, DAEMON, now_s,
                         {"period": period, "url": url, "assignee": assignee,
                          "missing": list(missing)}, once)
        note = NewJob(THREAD_NOTE, f"{THREAD_NOTE}:{escalation_id}:retro-reminder-{period}",
                      {"text": text}, 0.0, escalation_id)
        return event, note

    # --- update cadence -------------------------------------------------------------------

    async def cadence(self, _job: Job) -> Changes:
        now_s = self.deps.clock.now()
        nxt = cadence_job(self.settings, now_s, next_period=True)
        if self.deps.shadow:
            return Changes(jobs=(nxt,))  # nobody was paged: nobody owes an update
        watched = {current.row.id: current for current in await self.deps.store.load_in(
            [phase.value for phase in ACTIVE])}
        for escalation_id in await self.deps.store.open_quiet():
            if escalation_id not in watched:
                quiet = await self.deps.store.load_escalation(escalation_id)
                if quiet is not None:
                    watched[escalation_id] = quiet
        events: list[NewEvent] = []
        jobs: list[NewJob] = []
        for current in watched.values():
            if current.row.drill:
                continue
            entries = await self.deps.store.timeline(current.row.id)
            found = await self._check(current, entries, now_s)
            events += found[0]
            jobs += found[1]
        return Changes(events=tuple(events), jobs=(*jobs, nxt))

    async def _check(self, current: Loaded, entries: list[TimelineEntry], now_s: float
                     ) -> tuple[list[NewEvent], list[NewJob]]:
        gate, escalation_id = current.gate, current.row.id
        keys = {e.details.get("once_key") for e in entries if e.event == UPDATE_RESUMED}
        quiet = [e for e in entries if e.event == UPDATE_OVERDUE
                 and e.details.get("once_key") not in keys]
        spell = quiet[-1] if quiet else None
        active = gate.phase in ACTIVE and gate.resolved_at is None
        round_start = max((e.at for e in entries if e.event == "reopened"), default=0.0)
        engaged = [e.at for e in entries if e.event in ENGAGED_EVENTS and e.at >= round_start]
        events: list[NewEvent] = []
        if not active or not engaged:
            if spell is not None:
                ended_s = gate.resolved_at.timestamp() if gate.resolved_at else now_s
                events.append(self._resumed(escalation_id, spell, ended_s, now_s, "ended"))
            return events, []
        latest = max([min(engaged), current.escalation.updated_at.timestamp(),
                      *(e.at for e in entries if e.event in UPDATE_EVENTS)])
        replied, unseen = await self._thread_activity(current, latest)
        latest = max(latest, replied or latest)
        if spell is not None:
            if latest <= float(spell.details["last_update_at"]):
                return events, []  # still quiet: it was nudged once, that is enough
            events.append(self._resumed(escalation_id, spell, latest, now_s, "update"))
        # The incident's severity now (raised or lowered since the page), else the decision's.
        policy = self.deps.policy.current()
        facts = gate.decision.facts if gate.decision else None
        severity = (policy.canonical_severity(current.escalation.severity)
                    or (facts.severity if facts else None))
        minutes = policy.cadence_minutes(severity)
        # A thread Slack would not show just now (rate-limited, down) may be where people
        # talk: its silence is not taken for a quiet spell until twice the cadence.
        # Quiet for as long as really passed: a wall clock stepped forward is no silence.
        quiet_s = self.deps.clock_watch.elapsed_since(latest)
        if minutes is None or quiet_s < minutes * 60 * (2 if unseen else 1):
            return events, []
        once = f"{UPDATE_OVERDUE}:{latest:.3f}"
        if any(e.details.get("once_key") == once for e in entries):
            return events, []
        due_s = latest + minutes * 60
        events.append(NewEvent(escalation_id, UPDATE_OVERDUE, DAEMON, now_s, {
            "once_key": once, "last_update_at": latest, "due_at": due_s,
            "cadence_minutes": minutes, "severity": severity}, once))
        quiet_min = round(quiet_s / 60)
        text = (f":speech_balloon: No update on this {slack_literal(severity or '')} emergency "
                f"for {quiet_min} min (the cadence is every {minutes:g} min). "
                f"{await self._holder(current, entries)}: please post an update in the incident "
                "or in this "
                "thread.")
        note = NewJob(THREAD_NOTE, f"{THREAD_NOTE}:{escalation_id}:cadence-{latest:.3f}",
                      {"text": text}, 0.0, escalation_id)
        return events, [note]

    @staticmethod
    def _resumed(escalation_id: str, spell: TimelineEntry, until_s: float, now_s: float,
                 why: str) -> NewEvent:
        once = RESUMED_PREFIX + str(spell.details["once_key"])
        overdue_s = max(0.0, until_s - float(spell.details["due_at"]))
        return NewEvent(escalation_id, UPDATE_RESUMED, DAEMON, now_s, {
            "once_key": spell.details["once_key"], "overdue_s": round(overdue_s, 3),
            "why": why}, once)

    async def _thread_activity(self, current: Loaded, since_s: float
                               ) -> tuple[float | None, bool]:
        """(a person's newest reply in the thread, whether the thread could not be read just
        now). Slack refusing for good (no scope, no channel) leaves the other updates to judge
        by (a nudge it causes goes to the same Slack); a rate limit or an outage is `True`:
        people may be talking there."""
        approval = current.gate.approval
        activity = self.deps.thread_activity
        if activity is None or approval is None:
            return None, False
        try:
            return await activity.thread_activity(
                MessageRef(approval.channel, approval.ts), since_s), False
        except (Retry, Permanent) as exc:
            log.warning("cadence.thread_unreadable", escalation_id=current.row.id,
                        reason=exc.reason)
            return None, isinstance(exc, Retry)

    async def _holder(self, current: Loaded, entries: list[TimelineEntry]) -> str:
        """Who holds the emergency: whoever acknowledged the page (mentioned, so Slack tells
        them, when their PagerDuty email is a Slack user's), else who approved it, else the
        approvers."""
        gate = current.gate
        if gate.acknowledged_by:
            who = await self._responder_mention(entries) or slack_literal(gate.acknowledged_by)
            return f"{who} (acknowledged the page)"
        if gate.decided is not None and gate.decided.by:
            return f"{slack_mention(gate.decided.by)} (approved the page)"
        if gate.approval is not None and gate.approval.approvers:
            return f"{slack_mention(gate.approval.approvers[0])} (approver)"
        return "Whoever holds this emergency"

    async def _responder_mention(self, entries: list[TimelineEntry]) -> str | None:
        """A Slack mention of the engineer who acknowledged the page: their PagerDuty profile's
        email looked up in Slack (`users.lookupByEmail`). None when either side does not know
        them or cannot answer now: the nudge then names them in words and still goes out."""
        acks = [e for e in entries if e.event == "acknowledged" and e.details.get("responders")]
        identity = self.deps.identity
        if not acks or self.deps.pager is None or identity is None:
            return None
        responder = acks[-1].details["responders"][0]
        try:
            email = await self.deps.pager.user_email(str(responder.get("id", "")))
            user_id = await identity.user_id_for_email(email) if email else None
        except (Retry, Permanent) as exc:
            log.warning("cadence.responder_unresolved", reason=exc.reason)
            return None
        return slack_mention(user_id) if user_id else None
