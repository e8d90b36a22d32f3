"""Asking the Support Manager on Call, and acting on the answer (or on the silence).

Who may decide: the SMOC resolved from the PagerDuty schedule (email -> Slack user), the
configured backups (user ids, a user group) and a static override, all of them those of the
escalation's Tier 1 team (`jobs.routing`: the team's own, else the settings'), and so is the
channel asked in. A failed lookup never blocks the request: the message says so and the
backups decide. When there is no SMOC and no backup either, the request still goes out (the
timeout fallback still applies), says plainly that nobody can approve it, and the escalation
needs attention at once.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from daemon.clock import to_datetime
from daemon.domain.fatigue import weekend_of
from daemon.domain.gate import Gate, Phase, Verdict
from daemon.domain.policy import Approval, Policy
from daemon.domain.teams import DEFAULT_TEAM, team_of_channel
from daemon.domain.transitions import (
    Step,
    on_approval_posted,
    on_click,
    on_copy_posted,
    on_decline_form_failed,
    on_foreign_click,
    on_nobody_can_approve,
    on_remind,
    on_timeout,
    on_timer_early,
    timing,
)
from daemon.integrations.base import (
    ApprovalView,
    ChannelRefused,
    Chat,
    EscalationFormSpec,
    MessageRef,
    Tier2Load,
)
from daemon.jobs.deps import Deps
from daemon.jobs.ee import EEJobs
from daemon.jobs.escalations import Loaded, changes_for, job_round, loaded
from daemon.jobs.intake import Intake
from daemon.jobs.oncall import WHO, on_call_text
from daemon.jobs.policy import judge_again
from daemon.jobs.routing import Routing, routing
from daemon.jobs.views import approval_view, escalation_subject
from daemon.logging import get_logger
from daemon.reporting.load import STREAK_WEEKS, load_load, recent_load
from daemon.sources.slack import (
    ApprovalClick,
    DeclineReasonSubmitted,
    EEOfferClick,
    EscalationFormSubmitted,
    SlashCommand,
    parse_interaction,
    parse_slash_command,
)
from daemon.store import Changes, Delivery, DeliveryState, Job, NewEvent, TimelineEntry
from daemon.workers.retry import Permanent, Retry
from daemon.workers.runner import Recorder

EVIDENCE = "evidence"  # the key of the evidence pack in `approval_requested` details
TIER2_LOAD = "tier2_load"  # ... and of the Tier 2 load line it showed
_AGREE_SLACK_S = 1.0
"""How far short of its time a timer may measure and still act: rounding between a timer's
wall-clock due time and the process's own count, not a step (steps are seconds and more)."""

log = get_logger("tier2gate.approval")

_DIRECT_MESSAGE_PREFIX = "D"  # Slack's ids of direct-message channels (`D…`)


@dataclass(frozen=True)
class Deciders:
    """Who may decide an approval request right now."""

    ids: tuple[str, ...]  # chat user ids: the SMOC first when resolved, then the backups
    smoc_resolved: bool  # ids[0] is the SMOC; False: every id is a backup
    note: str = ""  # for the message: why there is no SMOC, and who decides instead
    team: str = DEFAULT_TEAM  # the Tier 1 team they approve for


def with_evidence(event: NewEvent, view: ApprovalView) -> NewEvent:
    """The `approval_requested` entry with what the SMOC was shown of the evidence pack
    (`evidence`: present, missing, complete): the source of `report`'s evidence completeness,
    one per request (a reopened incident's new round records its own). A policy that lists
    no evidence showed none: nothing is recorded, so the request counts in no completeness.
    The Tier 2 load line it showed is kept too (`tier2_load`, null for none), so every later
    rendering of the message shows the same."""
    if event.event != "approval_requested":
        return event
    details = {**event.details, TIER2_LOAD: (dataclasses.asdict(view.tier2_load)
                                             if view.tier2_load is not None else None)}
    if view.evidence_present or view.evidence_missing:
        details[EVIDENCE] = {
            "present": list(view.evidence_present), "missing": list(view.evidence_missing),
            "complete": not view.evidence_missing}
    return dataclasses.replace(event, details=details)


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


class Approvals:
    def __init__(self, deps: Deps, intake: Intake, ee: EEJobs) -> None:
        self.deps = deps
        self.intake = intake
        self.ee = ee
        # Per SMOC schedule: (monotonic time, user id, note) of the last successful lookup.
        self._smoc_cache: dict[str, tuple[float, str | None, str]] = {}

    async def _load(self, job: Job) -> Loaded | None:
        row = await self.deps.store.get_escalation(str(job.escalation_id))
        return loaded(row) if row else None

    def _now(self) -> datetime:
        return to_datetime(self.deps.clock.now())

    def routing(self, team: str) -> Routing:
        """Who approves `team`'s escalations and where, under the policy in force."""
        return routing(self.deps.settings, self.deps.policy.current(), team)

    def _routing_of(self, current: Loaded) -> Routing:
        return self.routing(current.gate.team)

    async def smoc(self, route: Routing) -> tuple[str | None, str]:
        """(Slack user id of the team's SMOC or None, why there is none when it is None)."""
        if route.smoc_user_id:
            return route.smoc_user_id, ""
        schedule = route.smoc_schedule_id or ""
        cached = self._smoc_cache.get(schedule)
        if cached is not None and \
                time.monotonic() - cached[0] < self.deps.settings.approval.smoc_cache_s:
            return cached[1], cached[2]
        user_id, note = await self._resolve_smoc(schedule)
        if user_id is not None:  # a failed lookup is asked again next time, never remembered
            self._smoc_cache[schedule] = (time.monotonic(), user_id, note)
        return user_id, note

    async def _resolve_smoc(self, schedule: str) -> tuple[str | None, str]:
        """The SMOC, or None and why not (who decides instead is `approvers`' to say)."""
        if self.deps.pager is None or not schedule:
            return None, "No SMOC schedule is configured."
        try:
            email = await self.deps.pager.smoc_email(schedule)
            if email is None:
                return None, "Nobody is on call on the SMOC schedule."
            user_id = await self.deps.need_chat().user_id_for_email(email)
        except (Retry, Permanent) as exc:
            log.warning("approval.smoc_unresolved", error=str(exc))
            return None, f"The SMOC could not be resolved ({exc})."
        if user_id is None:
            return None, "The SMOC's email has no Slack account."
        return user_id, ""

    async def approvers(self, route: Routing) -> Deciders:
        """Who may decide a request of the routing's team now."""
        smoc, why = await self.smoc(route)
        backups = list(route.backup_user_ids)
        if route.backup_group_id:
            try:
                backups += await self.deps.need_chat().group_members(route.backup_group_id)
            except (Retry, Permanent) as exc:
                log.warning("approval.backup_group_unresolved", error=str(exc))
        ids = tuple(dict.fromkeys([smoc, *backups] if smoc else backups))
        if smoc:
            return Deciders(ids, smoc_resolved=True, team=route.team)
        # Never "backup approvers decide" when there are none: the message must not promise a
        # decision nobody can make.
        instead = ("Backup approvers decide." if ids else
                   "There is no backup approver either: nobody can approve this request.")
        return Deciders(ids, smoc_resolved=False, note=f"{why} {instead}", team=route.team)

    def _posted(self, current: Loaded, deciders: Deciders, ref: MessageRef, now: datetime, *,
                copies: tuple[tuple[str, str], ...] = (), channel_refused: str = "",
                missing: tuple[str, ...] = ()) -> Step:
        """The approval request exists; with nobody who may decide it, the operator is told."""
        step = on_approval_posted(current.gate, ref.channel, ref.ts, deciders.ids,
                                  deciders.note, now, copies=copies,
                                  channel_refused=channel_refused, missing=missing,
                                  smoc_resolved=deciders.smoc_resolved, team=deciders.team,
                                  channel_setting=self.routing(deciders.team).channel_setting)
        if deciders.ids or not step.records:
            return step
        log.error("approval.nobody_can_approve", escalation_id=current.row.id,
                  why=deciders.note, channel=ref.channel)
        return step.then(on_nobody_can_approve(
            step.gate, deciders.note, escalation_subject(current), now))

    async def shown_tier2_load(self, current: Loaded) -> Tier2Load | None:
        """The load the request showed when posted; worked out again (as of then) only for
        a request recorded before it was kept."""
        approval = current.gate.approval
        assert approval is not None
        found, load = shown_load(await self.deps.store.timeline(current.row.id),
                                 approval.channel, approval.ts)
        return load if found else await self.tier2_load(approval.requested_at)

    async def tier2_load(self, until: datetime) -> Tier2Load | None:
        """The recent pages of the Tier 2 engineer who would be paged, as of `until`: whoever
        is on call on `pagerduty.tier2_schedule_id`, else (no schedule, nobody on call, or the
        lookup failed) whoever tier2gate paged last in the window. None when neither is known.
        One range read of the window's page entries; never holds up the request."""
        policy = self.deps.policy.current()
        fatigue = policy.fatigue
        since = until - timedelta(days=fatigue.window_days)
        # Weekends in a row reach further back than the window: read that far, the page
        # entries only (on the request's way to the SMOC: the decisions are not wanted here).
        load = await load_load(self.deps.store,
                               min(since, until - timedelta(weeks=STREAK_WEEKS)),
                               until, policy.business_hours.zone, pages_only=True)
        on_call = None
        if self.deps.pager is not None:
            try:
                on_call = await self.deps.pager.tier2_on_call()
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

    async def approver_ids(self) -> tuple[str, ...]:
        """Who may decide now for the implicit team, SMOC first (the people told when a failure
        belongs to no escalation and nothing else can be used)."""
        return (await self.approvers(self.routing(DEFAULT_TEAM))).ids

    async def request(self, job: Job) -> Recorder | None:
        current = await self._load(job)
        if current is None or current.gate.approval is not None:
            return None
        # Still posted when the approval timeout paged meanwhile (the chat was down): the
        # message then shows that outcome at once and carries the thread of the page.
        if not current.gate.emergency or current.gate.phase in (Phase.CLOSED, Phase.DECLINED):
            return None
        route = self._routing_of(current)
        channel = route.approval_channel
        if not channel:
            raise Permanent(f"{route.channel_setting} is not set")
        chat = self.deps.need_chat()
        deciders = await self.approvers(route)
        now = self._now()
        policy = self.deps.policy.current()
        view = approval_view(current, self.deps.settings, now, deciders.ids, deciders.note,
                             smoc_resolved=deciders.smoc_resolved, policy=policy,
                             tier2_load=await self.tier2_load(now))
        # An earlier attempt may have posted and died before recording it: look first.
        found = await self._posted_before(chat, channel, current.row.id) \
            if job.attempts > 1 else None
        if found is not None and current.gate.asked_earlier(found.channel, found.ts):
            found = None  # the request of a round before the incident was reopened
        copies: tuple[tuple[str, str], ...] = ()
        missing: tuple[str, ...] = ()
        refused = ""
        try:
            ref = found or await chat.post_approval(channel, view)
        except ChannelRefused as exc:
            refused = exc.code or str(exc)
            ref, copies, missing = await self._post_directly(chat, channel, deciders.ids, view,
                                                             exc)

        async def record() -> Changes | None:
            fresh = await self._load(job)
            if fresh is None:
                return None
            at = self._now()
            step = self._posted(fresh, deciders, ref, at, copies=copies, channel_refused=refused,
                                missing=missing)
            changes = changes_for(fresh.row.id, fresh.escalation, step, at, previous=fresh.row)
            return dataclasses.replace(changes, events=tuple(
                with_evidence(event, view) for event in changes.events))

        return record

    async def _post_directly(self, chat: Chat, channel: str, approvers: tuple[str, ...],
                             view: ApprovalView, refusal: ChannelRefused
                             ) -> tuple[MessageRef, tuple[tuple[str, str], ...], tuple[str, ...]]:
        """The approval channel refused the bot: the same request, buttons included, goes to
        every approver as a direct message; a click there decides like one in the channel.
        Returns the first message, the other copies, and the approvers not reached yet."""
        log.error("approval.channel_refused", channel=channel, error=str(refusal),
                  approvers=len(approvers))
        self.deps.metrics.approval_channel_refusals.labels(refusal.code or "other").inc()
        sent: list[MessageRef] = []
        later: list[str] = []
        for user_id in approvers:
            # One approver's temporary failure must not cost the others their request:
            # retrying the whole fallback would post their copies a second time. Their copy
            # becomes a job of its own once the request is recorded.
            try:
                sent.append(await chat.post_approval(user_id, view))
            except Retry as exc:
                later.append(user_id)
                log.warning("approval.direct_message_delayed", user=user_id, error=str(exc))
            except Permanent as exc:
                log.error("approval.direct_message_failed", user=user_id, error=str(exc))
        if not sent:
            why = (f"{refusal}; no approver could be reached by direct message "
                   f"({len(approvers)} tried)")
            if later:
                raise Retry(why)
            raise Permanent(why, code=refusal.code)
        first, *rest = sent
        return first, tuple((m.channel, m.ts) for m in rest), tuple(later)

    async def copy(self, job: Job) -> Recorder | None:
        """A direct-message copy of the approval request for one approver, after a temporary
        failure when the channel refused the bot."""
        current = await self._load(job)
        if current is None or current.gate.approval is None:
            return None
        if current.gate.phase is not Phase.AWAITING_APPROVAL or current.gate.decided:
            return None  # decided meanwhile: a request now would only be noise
        user_id = str(job.payload["user"])
        view = approval_view(current, self.deps.settings, self._now(),
                             policy=self.deps.policy.current(),
                             tier2_load=await self.shown_tier2_load(current))
        ref = await self.deps.need_chat().post_approval(user_id, view)

        async def record() -> Changes | None:
            fresh = await self._load(job)
            if fresh is None:
                return None
            at = self._now()
            step = on_copy_posted(fresh.gate, user_id, ref.channel, ref.ts)
            return changes_for(fresh.row.id, fresh.escalation, step, at, previous=fresh.row)

        return record

    async def _posted_before(self, chat: Chat, channel: str, escalation_id: str
                             ) -> MessageRef | None:
        try:
            return await chat.find_approval(channel, escalation_id)
        except Permanent as exc:  # e.g. no channels:history scope: post again, maybe twice
            log.warning("approval.lookup_failed", error=str(exc))
            return None

    async def update(self, job: Job) -> None:
        current = await self._load(job)
        if current is None or current.gate.approval is None:
            return
        approval = current.gate.approval
        # The load the SMOC was shown when asked: this escalation's own page is no news.
        view = approval_view(current, self.deps.settings, self._now(),
                             policy=self.deps.policy.current(),
                             tier2_load=await self.shown_tier2_load(current))
        chat = self.deps.need_chat()
        for channel, ts in ((approval.channel, approval.ts), *approval.copies):
            await chat.update_approval(MessageRef(channel, ts), view)

    async def direct_note(self, job: Job) -> None:
        """A note for the approvers that cannot go in the approval thread (there is none yet,
        or the thread is what fails): a direct message to each; `to: channel` posts it in the
        approval channel instead (no approvers are involved, e.g. a request for help)."""
        text = str(job.payload["text"])
        chat = self.deps.need_chat()
        current = await self._load(job) if job.escalation_id else None
        route = self._routing_of(current) if current else self.routing(DEFAULT_TEAM)
        channel = route.approval_channel
        approvers: tuple[str, ...] = ()
        if job.payload.get("to") != "channel":
            approvers = (current.gate.approval.approvers if current and current.gate.approval
                         else (await self.approvers(route)).ids)
        if not approvers:
            if not channel:
                raise Permanent(f"nobody to tell: no approver and no {route.channel_setting}")
            await chat.post_notice(channel, text)
            return
        failures = []
        for user_id in approvers:
            try:
                await chat.post_notice(user_id, text)
            except Permanent as exc:
                failures.append(str(exc))
        if len(failures) == len(approvers):
            raise Permanent("no approver could be told: " + "; ".join(failures))

    async def remind(self, job: Job) -> Changes | None:
        n = int(job.payload.get("n", 1))
        return await self._timer(job, lambda gate, now: on_remind(gate, n, now),
                                 lambda timings: timings.remind_after_minutes)

    async def timeout(self, job: Job) -> Changes | None:
        return await self._timer(job, on_timeout, lambda timings: timings.timeout_minutes)

    async def _timer(self, job: Job, act: Callable[[Gate, datetime], Step],
                     minutes: Callable[[Approval], float]) -> Changes | None:
        """A reminder or the timeout: only under the policy in force, and only once the time
        it stands for has passed by the process's own measure.

        The escalation is first judged again if the policy changed since it was judged (the
        fallback and timings are the new policy's). Then the time since the timer was set
        (`since` in its payload) is measured with the clock watch, which discounts wall-clock
        steps seen while running: a timer made due by a step, or by a policy that now asks
        for longer, is set again for the rest of its time instead of acting.
        """
        current = await self._load(job)
        if current is None or job_round(job) != current.gate.round:
            return None
        now = self._now()
        step = judge_again(self.deps.policy.current(), current, now, self.deps.calendar())
        gate = step.gate
        early = self._early(job, gate, 60 * minutes(timing(gate)), now)
        step = step.then(early if early is not None else act(gate, now))
        if not step.records:
            return None
        return changes_for(current.row.id, current.escalation, step, now, previous=current.row)

    def _early(self, job: Job, gate: Gate, needed_s: float, now: datetime) -> Step | None:
        """A step that sets the timer again, or None when it may act (or has nothing to do)."""
        if gate.phase is not Phase.AWAITING_APPROVAL or gate.decided is not None:
            return None
        # Timers set before `since` was recorded count from when their job was stored.
        since = float(job.payload.get("since", job.created_at))
        measured_s = self.deps.clock_watch.elapsed_since(since)
        if measured_s + _AGREE_SLACK_S >= needed_s:
            return None
        wall_s = now.timestamp() - since
        log.warning("approval.timer_deferred", timer=job.kind, needed_s=round(needed_s, 3),
                    measured_s=round(measured_s, 3), wall_clock_s=round(wall_s, 3))
        self.deps.metrics.fallbacks_deferred.labels(job.kind).inc()
        return on_timer_early(gate, job.kind, {**job.payload, "since": since},
                              measured_s=measured_s, needed_s=needed_s, wall_s=wall_s, now=now)

    async def thread_note(self, job: Job) -> None:
        current = await self._load(job)
        if current is None:
            return
        if current.gate.approval is None:
            if current.gate.emergency:
                # The request is being posted (or Slack is down): reply once it is recorded.
                raise Retry("the approval message is not recorded yet", after_s=1.0)
            return  # no approval message (an RFH): nothing to reply under
        chat = self.deps.need_chat()
        thread = MessageRef(current.gate.approval.channel, current.gate.approval.ts)
        # An earlier attempt may have posted and died before recording it: look first.
        if job.attempts > 1:
            try:
                if await chat.find_in_thread(thread, job.key) is not None:
                    return
            except Permanent as exc:  # e.g. no channels:history scope: post, maybe twice
                log.warning("thread_note.lookup_failed", error=str(exc))
        await chat.post_in_thread(thread, str(job.payload["text"]), job.key)

    async def tell_user(self, job: Job) -> None:
        current = await self._load(job)
        # `channel`: where the person clicked, when that is not the escalation's own message.
        channel = str(job.payload.get("channel") or "") or (
            current.gate.approval.channel if current and current.gate.approval
            else self.routing(current.gate.team if current else DEFAULT_TEAM).approval_channel)
        if channel:
            await self.deps.need_chat().tell_user(channel, str(job.payload["user"]),
                                                  str(job.payload["text"]))

    async def interaction(self, job: Job) -> Changes | None:
        """A verified Slack click or form submission, stored by the ingress."""
        delivery = await self.deps.store.get_delivery(int(job.payload["delivery"]))
        if delivery is None:
            raise Permanent("interaction delivery is not in the store")
        action = parse_interaction(delivery.body)
        if action is None:
            return Changes(delivery_done=(delivery.id, DeliveryState.IGNORED, "not ours"))
        if isinstance(action, EscalationFormSubmitted):
            return await self.intake.declare(action, delivery)
        if isinstance(action, EEOfferClick):
            return await self.ee.click(action, delivery)
        return await self.click(action, delivery)

    async def click(self, action: ApprovalClick | DeclineReasonSubmitted, delivery: Delivery
                    ) -> Changes:
        """Approve, Decline or the decline reason, from any chat, on the request message the
        value names: decided for that escalation only (`_from_its_message`); `delivery` is
        the stored request it came in, marked done with the changes."""
        row = await self.deps.store.get_escalation(action.escalation_id)
        if row is None:
            return Changes(delivery_done=(delivery.id, DeliveryState.IGNORED,
                                          f"unknown escalation {action.escalation_id}"))
        current = loaded(row)
        now = self._now()
        done = (delivery.id, DeliveryState.PROCESSED, "")
        verdict = action.verdict if isinstance(action, ApprovalClick) else Verdict.DECLINED
        earlier = current.gate.asked_earlier(action.channel, action.message_ts)
        if not earlier and not await self._from_its_message(current, action):
            log.warning("approval.click_mismatch", user=action.user_id,
                        channel=action.channel, ts=action.message_ts)
            foreign = on_foreign_click(current.gate, action.user_id, verdict,
                                       click_id=_click_id(action), channel=action.channel,
                                       ts=action.message_ts)
            return changes_for(current.row.id, current.escalation, foreign, now,
                               previous=current.row, delivery=done)
        allowed = await self._allowed(current, action.user_id)
        if isinstance(action, ApprovalClick) and action.verdict is Verdict.DECLINED:
            pending = current.gate.phase is Phase.AWAITING_APPROVAL and not current.gate.decided \
                and not earlier
            if allowed and pending:
                try:
                    await self.deps.need_chat().ask_decline_reason(
                        action.trigger_id, current.row.id,
                        MessageRef(action.channel, action.message_ts))
                except (Retry, Permanent) as exc:
                    # Slack's trigger id lives 3 seconds: a retry later could never open the
                    # form. Nothing is decided; the clicker is asked to press again.
                    log.warning("approval.decline_form_failed", error=str(exc))
                    failed = on_decline_form_failed(current.gate, action.user_id, str(exc),
                                                     _click_id(action))
                    return changes_for(current.row.id, current.escalation, failed, now,
                                       previous=current.row, delivery=done)
                return Changes(delivery_done=done)
        reason = action.reason if isinstance(action, DeclineReasonSubmitted) else ""
        policy = self.deps.policy.current()
        adopted = Step(current.gate)
        if current.gate.approval is None and current.gate.phase is Phase.AWAITING_APPROVAL \
                and not earlier:
            # A click on a message we never recorded (the process died between Slack's answer
            # and our commit) proves that message exists and, past `_from_its_message`, that
            # it can only be this request: it becomes the approval message.
            adopted = self._posted(current, await self.approvers(self._routing_of(current)),
                                   MessageRef(action.channel, action.message_ts), now)
        step = adopted.then(on_click(
            adopted.gate, action.user_id, verdict, now, allowed=allowed,
            click_id=_click_id(action), reason=reason,
            rfh_due=policy.business_hours.next_business_start(now), earlier_round=earlier,
            declared_by=current.escalation.declared_by,
            forbid_self_approval=policy.approval.forbid_self_approval))
        return changes_for(current.row.id, current.escalation, step, now, previous=current.row,
                           delivery=done)

    async def open_form(self, job: Job) -> Changes:
        """`/tier2`: open the escalation form while Slack's trigger id is still valid (~3 s)."""
        delivery = await self.deps.store.get_delivery(int(job.payload["delivery"]))
        if delivery is None:
            raise Permanent("command delivery is not in the store")
        command = parse_slash_command(delivery.body)
        policy = self.deps.policy.current()
        if command.text.strip().casefold() == WHO:
            await self._tell_who(command, policy)
            return Changes(delivery_done=(delivery.id, DeliveryState.PROCESSED, WHO))
        spec = EscalationFormSpec(
            severities=tuple(policy.severity_aliases),
            criteria=tuple((c.value, names[0]) for c, names in policy.criteria_fields.items()
                           if names),
            title=command.text.strip()[:150], channel=command.channel_id,
            evidence=tuple((item.fields[0], item.shown) for item in policy.evidence))
        await self.deps.need_chat().open_escalation_form(command.trigger_id, spec)
        return Changes(delivery_done=(delivery.id, DeliveryState.PROCESSED, ""))

    async def _tell_who(self, command: SlashCommand, policy: Policy) -> None:
        """`/tier2 who`, answered to the person only: ephemeral where they asked, or a direct
        message when the bot may not post there (a channel it was never invited to)."""
        team = team_of_channel(policy.teams or (), command.channel_id,
                               policy.default_team or DEFAULT_TEAM)
        text = await on_call_text(self.deps, team, await self.approvers(self.routing(team)))
        chat = self.deps.need_chat()
        try:
            await chat.tell_user(command.channel_id, command.user_id, text)
        except Permanent as exc:
            log.info("approval.who_direct", error=str(exc))
            await chat.post_notice(command.user_id, text)

    async def _from_its_message(self, current: Loaded,
                                action: ApprovalClick | DeclineReasonSubmitted) -> bool:
        """Whether a click naming this escalation may be its own: it came from a message
        recorded for this round (the request or a direct-message copy), or, when none is
        recorded yet, from a message that can be nothing but its unrecorded request.

        The process can die between Slack's answer to the post and our commit (crash recovery
        then adopts the clicked message). A message is taken for that lost post only when
        nothing says it is another's: it is in the approval channel or a direct message (the
        only places a request is posted) and no escalation records it, in any round. What
        passes is a message no escalation knows whose button names this one, which only our
        lost post is; a payload forged with the signing secret could pass anything.
        """
        gate = current.gate
        channel, ts = action.channel, action.message_ts
        if gate.approval is not None:
            return gate.asked_on(channel, ts)
        if channel != self._routing_of(current).approval_channel and \
                not channel.startswith(_DIRECT_MESSAGE_PREFIX):
            return False
        others = await self.deps.store.escalations_quoting(ts)
        return not any(loaded(row).gate.owns_message(channel, ts)
                       for row in others if row.id != current.row.id)

    async def _allowed(self, current: Loaded, user_id: str) -> bool:
        listed = current.gate.approval.approvers if current.gate.approval else ()
        if user_id in listed:
            return True
        # The on-call may have changed since.
        return user_id in (await self.approvers(self._routing_of(current))).ids


def _click_id(action: ApprovalClick | DeclineReasonSubmitted) -> str:
    if isinstance(action, ApprovalClick):
        return f"{action.user_id}-{action.action_ts}"
    return f"{action.user_id}-form-{action.message_ts}"
