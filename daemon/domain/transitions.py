"""The escalation state machine: `(gate, event) -> Step(gate, records, effects)`. Pure.

Records are timeline entries (the audit log); effects are side effects for the job runner,
named so that the job key `kind:escalation:name` makes each one happen at most once. A record
with a `once_key` can exist only once per escalation: the store refuses a second decision, a
second page, a second retro, whatever races produced them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from daemon.domain.gate import (
    ApprovalState,
    DecisionState,
    Gate,
    PageState,
    Phase,
    Problem,
    Verdict,
)
from daemon.domain.models import Escalation, Source, Status
from daemon.domain.policy import Approval, Decision, OnTimeout, Outcome, reevaluate

REQUEST_APPROVAL = "request_approval"
REMIND = "approval_remind"
TIMEOUT = "approval_timeout"
PAGE = "page"
THREAD_NOTE = "thread_note"
UPDATE_APPROVAL = "update_approval"
TELL_USER = "tell_user"
RFH_NOTICE = "rfh_notice"
RFH_ISSUE = "rfh_issue"
RETRO = "retro"
RECHECK = "recheck"
DIRECT_NOTE = "direct_note"
ATTENTION = "needs_attention"

POLICY = "policy"
DAEMON = "tier2gate"

_PHASE_OF = {
    Outcome.EMERGENCY: Phase.AWAITING_APPROVAL,
    Outcome.RFH: Phase.RFH,
    Outcome.IGNORE: Phase.IGNORED,
}
_UNDECIDED = (Phase.RECEIVED, Phase.IGNORED, Phase.RFH, Phase.AWAITING_APPROVAL)


@dataclass(frozen=True)
class Record:
    event: str
    actor: str
    details: dict[str, Any] = field(default_factory=dict)
    once_key: str | None = None


@dataclass(frozen=True)
class Effect:
    kind: str
    name: str  # unique per escalation and kind: the job's idempotency key
    payload: dict[str, Any] = field(default_factory=dict)
    run_at: datetime | None = None


@dataclass(frozen=True)
class Step:
    gate: Gate
    records: tuple[Record, ...] = ()
    effects: tuple[Effect, ...] = ()

    def then(self, other: Step) -> Step:
        return Step(other.gate, self.records + other.records, self.effects + other.effects)


def _timing(gate: Gate) -> Approval:
    return (gate.decision.approval if gate.decision else None) or Approval()


def on_facts(gate: Gate, escalation: Escalation, decision: Decision, now: datetime, *,
             previous: Escalation | None, rfh_due: datetime) -> Step:
    """New or changed facts from the source (a webhook, an API fetch, a timer's re-check)."""
    step = Step(gate)
    if previous is None:
        step = Step(gate, (Record("received", escalation.source.value, {
            "reference": escalation.reference, "title": escalation.title,
            "severity": escalation.severity, "status": escalation.status.value,
            "customer": escalation.customer}),))
    else:
        changed = _changes(previous, escalation)
        if changed:
            step = Step(gate, (Record("updated", escalation.source.value, changed),))
    if gate.phase in _UNDECIDED and gate.resolved_at is None:
        step = step.then(_classify(step.gate, decision, rfh_due, now))
    if escalation.status is Status.RESOLVED and step.gate.resolved_at is None:
        step = step.then(_resolved(step.gate, escalation.source.value, now))
    return step


_WATCHED = ("title", "severity", "status", "customer", "fields", "labels", "test_mode")


def _changes(before: Escalation, after: Escalation) -> dict[str, Any]:
    """What the source changed, as {name: new value}, for the timeline."""
    return {name: getattr(after, name) for name in _WATCHED
            if getattr(before, name) != getattr(after, name)}


def _classify(gate: Gate, decision: Decision, rfh_due: datetime, now: datetime) -> Step:
    if gate.phase is Phase.AWAITING_APPROVAL:
        decision = reevaluate(Outcome.EMERGENCY, gate.approval is not None, decision)
    phase = _PHASE_OF[decision.outcome]
    records: list[Record] = []
    effects: list[Effect] = []
    changed = phase is not gate.phase
    if changed:
        records.append(Record("classified", POLICY, {
            "outcome": decision.outcome.value, "rule": decision.rule, "reason": decision.reason,
            "matched": decision.matched,
            "criteria": [c.value for c, held in decision.facts.criteria.items() if held],
            "severity": decision.facts.severity, "weekend": decision.facts.weekend,
            "off_hours": decision.facts.off_hours, "previous": gate.phase.value,
            **({"due": rfh_due.isoformat()} if phase is Phase.RFH else {})}))
    updates: dict[str, Any] = {"phase": phase, "decision": decision}
    if changed and phase is Phase.AWAITING_APPROVAL:
        # The approval clocks start now, not when Slack accepts the message: a request that
        # cannot be posted must still remind people and reach its timeout fallback.
        timing = decision.approval or Approval()
        effects += [
            Effect(REQUEST_APPROVAL, "request"),
            Effect(REMIND, "1", {"n": 1}, now + timedelta(minutes=timing.remind_after_minutes)),
            Effect(TIMEOUT, "timeout", run_at=now + timedelta(minutes=timing.timeout_minutes)),
        ]
    if changed and phase is Phase.RFH:
        updates["rfh_due_at"] = rfh_due
        effects += [Effect(RFH_NOTICE, "notice"), Effect(RFH_ISSUE, "issue")]
    if decision.recheck_at is not None and phase is not Phase.AWAITING_APPROVAL:
        stamp = int(decision.recheck_at.timestamp())
        effects.append(Effect(RECHECK, f"at-{stamp}", run_at=decision.recheck_at))
    return Step(gate.model_copy(update=updates), tuple(records), tuple(effects))


def _resolved(gate: Gate, actor: str, now: datetime) -> Step:
    """The customer problem is over. A page that went out earns a retro; a pending one is moot."""
    # Once the customer problem is over only the issues still matter: a page, a reminder or a
    # status note that failed is moot now.
    gate = gate.model_copy(update={"resolved_at": now, "problems": tuple(
        p for p in gate.problems if p.effect in (RETRO, RFH_ISSUE))})
    records = [Record("resolved", actor)]
    effects: list[Effect] = []
    if gate.page is not None:
        gate = gate.model_copy(update={"phase": Phase.CLOSED})
        effects.append(Effect(RETRO, "retro"))
    elif gate.phase in (Phase.AWAITING_APPROVAL, Phase.PAGING):
        note = ("The source incident was resolved before a decision: no page will be sent."
                if gate.phase is Phase.AWAITING_APPROVAL else
                "The source incident was resolved as Tier 2 was being paged: a page already on "
                "its way is recorded here, and its retro follows.")
        gate = gate.model_copy(update={"phase": Phase.CLOSED})
        effects += [Effect(UPDATE_APPROVAL, "resolved"),
                    Effect(THREAD_NOTE, "resolved-before-page", {"text": note})]
    return Step(gate, tuple(records), tuple(effects))


def on_approval_posted(gate: Gate, channel: str, ts: str, approvers: tuple[str, ...],
                       smoc_note: str, now: datetime, *,
                       copies: tuple[tuple[str, str], ...] = (), channel_refused: str = ""
                       ) -> Step:
    """The approval request is posted (the reminder and timeout clocks run since the
    classification).

    The message exists whatever happened meanwhile, so it is always recorded: a click (or the
    source resolving) that was processed before this commit only means the message must show
    that outcome at once instead of waiting for a decision. `channel_refused` (the vendor's
    reason) means the approval channel refused the bot and the request went to the approvers
    directly (`channel`/`ts` and `copies` are then direct messages): someone must fix the
    channel, so the escalation needs attention.
    """
    if gate.approval is not None:
        return Step(gate)
    approval = ApprovalState(requested_at=now, channel=channel, ts=ts, approvers=approvers,
                             smoc_note=smoc_note, copies=copies)
    records = [Record("approval_requested", DAEMON, {
        "to": list(approvers), "channel": channel, "ts": ts, "smoc_note": smoc_note,
        **({"direct": True} if channel_refused else {})}, once_key="approval_requested")]
    updates: dict[str, Any] = {"approval": approval}
    if channel_refused:
        reason = (f"The approval channel refused the bot ({channel_refused}): the request was "
                  "sent to the approvers as direct messages. Invite the bot to the channel or "
                  "fix slack.approval_channel.")
        updates["problems"] = (*gate.without_problems(REQUEST_APPROVAL),
                               Problem(effect=REQUEST_APPROVAL, reason=reason, at=now))
        records.append(Record("approval_channel_refused", DAEMON, {"error": channel_refused}))
    effects: tuple[Effect, ...] = ()
    if gate.phase is not Phase.AWAITING_APPROVAL or gate.decided is not None:
        effects = (Effect(UPDATE_APPROVAL, "overtaken"),)
    return Step(gate.model_copy(update=updates), tuple(records), effects)


def on_click(gate: Gate, user_id: str, verdict: Verdict, now: datetime, *, allowed: bool,
             click_id: str, reason: str = "", rfh_due: datetime | None = None) -> Step:
    """An approver pressed Approve, or submitted the Decline form."""
    if gate.phase is not Phase.AWAITING_APPROVAL or gate.decided is not None:
        text = _late_text(gate)
        return Step(gate, (Record("decision_ignored", user_id, {
            "verdict": verdict.value, "why": text}),),
            (Effect(TELL_USER, f"late-{click_id}", {"user": user_id, "text": text}),))
    if not allowed:
        approvers = gate.approval.approvers if gate.approval else ()
        who = " or ".join(f"<@{a}>" for a in approvers[:3]) or "the Support Manager on Call"
        text = f"Only the Support Manager on Call or a backup approver ({who}) can decide this."
        return Step(gate, (Record("approval_refused", user_id, {"verdict": verdict.value}),),
                    (Effect(TELL_USER, f"refused-{click_id}", {"user": user_id, "text": text}),))
    decided = DecisionState(verdict=verdict, by=user_id, at=now, reason=reason,
                            pages=verdict is Verdict.APPROVED)
    # A person decided: a refused approval channel no longer keeps this escalation waiting.
    problems = gate.without_problems(REQUEST_APPROVAL)
    waited = {"waited_s": round((now - gate.approval.requested_at).total_seconds(), 3)} \
        if gate.approval else {}
    if verdict is Verdict.APPROVED:
        return Step(gate.model_copy(update={"phase": Phase.PAGING, "decided": decided,
                                            "problems": problems}),
                    (Record("approved", user_id, waited, once_key="decision"),),
                    (Effect(UPDATE_APPROVAL, "decided"), Effect(PAGE, "page")))
    updates = {"phase": Phase.DECLINED, "decided": decided, "rfh_due_at": rfh_due,
               "problems": problems}
    return Step(gate.model_copy(update=updates),
                (Record("declined", user_id, {"reason": reason, **waited}, once_key="decision"),),
                (Effect(UPDATE_APPROVAL, "decided"), Effect(RFH_NOTICE, "notice"),
                 Effect(RFH_ISSUE, "issue")))


def _late_text(gate: Gate) -> str:
    if gate.decided is None:
        return "This escalation is no longer waiting for a decision."
    by = f"<@{gate.decided.by}>" if gate.decided.by else "the approval timeout"
    return f"Already {gate.decided.verdict.value.replace('_', ' ')} by {by}; nothing changed."


def on_remind(gate: Gate, n: int, now: datetime) -> Step:
    if gate.phase is not Phase.AWAITING_APPROVAL or gate.decided is not None:
        return Step(gate)
    timing = _timing(gate)
    if gate.approval is None:
        # The request is not posted yet (the chat keeps failing): tell the approvers directly,
        # and keep reminding until there is a message to decide on.
        text = ("An emergency is waiting for a decision, but its approval request could not "
                "be posted yet; tier2gate keeps trying. Check the dashboard, and page Tier 2 "
                "by hand if it cannot wait.")
        return Step(gate, (Record("approval_reminded", DAEMON, {"n": n, "posted": False}),),
                    (Effect(DIRECT_NOTE, f"remind-{n}", {"text": text, "to": "approvers"}),
                     Effect(REMIND, str(n + 1), {"n": n + 1},
                            now + timedelta(minutes=timing.remind_after_minutes))))
    approval = gate.approval.model_copy(update={"reminders": n})
    mentions = " ".join(f"<@{a}>" for a in gate.approval.approvers)
    text = f"Reminder: this emergency is still waiting for a decision. {mentions}".strip()
    effects = [Effect(THREAD_NOTE, f"remind-{n}", {"text": text})]
    if approval.holding:
        effects.append(Effect(REMIND, str(n + 1), {"n": n + 1},
                              now + timedelta(minutes=timing.remind_after_minutes)))
    return Step(gate.model_copy(update={"approval": approval}),
                (Record("approval_reminded", DAEMON, {"n": n, "to": list(approval.approvers)}),),
                tuple(effects))


def on_timeout(gate: Gate, now: datetime) -> Step:
    """Nobody decided in time (whether or not the request could be posted): the policy's
    fallback pages or holds."""
    if gate.phase is not Phase.AWAITING_APPROVAL or gate.decided is not None:
        return Step(gate)
    timing = _timing(gate)
    fallback = timing.on_timeout
    details = {"after_minutes": timing.timeout_minutes, "fallback": fallback.value}
    if fallback is OnTimeout.PAGE:
        decided = DecisionState(verdict=Verdict.TIMED_OUT, by="", at=now, pages=True)
        return Step(gate.model_copy(update={
                        "phase": Phase.PAGING, "decided": decided,
                        "problems": gate.without_problems(REQUEST_APPROVAL)}),
                    (Record("approval_timed_out", DAEMON, details, once_key="decision"),),
                    (Effect(UPDATE_APPROVAL, "decided"), Effect(PAGE, "page")))
    if gate.approval is None:
        # Holding with no message to hold on: the reminders (direct) go on by themselves.
        return Step(gate, (Record("approval_timed_out", DAEMON, details, once_key="timeout"),))
    approval = gate.approval.model_copy(update={"holding": True})
    n = approval.reminders + 1
    text = "No decision yet: the policy holds (no page). Reminders continue until someone decides."
    return Step(gate.model_copy(update={"approval": approval}),
                (Record("approval_timed_out", DAEMON, details, once_key="timeout"),),
                (Effect(THREAD_NOTE, "holding", {"text": text}),
                 Effect(REMIND, str(n), {"n": n},
                        now + timedelta(minutes=timing.remind_after_minutes))))


def on_paged(gate: Gate, incident_id: str, url: str, now: datetime, *, shadow: bool,
             retro_on_page: bool = False) -> Step:
    """Tier 2 was paged. Recorded whatever happened meanwhile: if the source resolved while the
    page was in flight, the page still went out, so the emergency still earns its retro."""
    if gate.page is not None:
        return Step(gate)
    page = PageState(incident_id=incident_id, url=url, at=now, shadow=shadow)
    event = "would_have_paged" if shadow else "paged"
    text = ("SHADOW mode: Tier 2 would have been paged now (nobody was paged)." if shadow
            else f"Paged Tier 2: {url or incident_id}")
    effects = [Effect(THREAD_NOTE, "paged", {"text": text})]
    closed = retro_on_page or gate.resolved_at is not None
    if closed:
        effects.append(Effect(RETRO, "retro"))
    phase = Phase.CLOSED if closed else Phase.PAGED
    problems = gate.without_problems(PAGE, REQUEST_APPROVAL)
    return Step(gate.model_copy(update={"phase": phase, "page": page, "problems": problems}),
                (Record(event, DAEMON, {"incident_id": incident_id, "url": url},
                        once_key="paged"),),
                tuple(effects))


def vendor_event_key(event_id: str) -> str:
    """The timeline `once_key` of an entry recording the vendor's event `event_id`."""
    return f"vendor-event:{event_id}"


def on_page_event(gate: Gate, kind: str, who: str, now: datetime, event_id: str, *,
                  source: Source) -> Step:
    """What happened to the Tier 2 page (acknowledged, escalated, reassigned, resolved).

    The entry is unique per vendor event id: PagerDuty delivers at least once, and one event
    delivered twice is still one thing that happened."""
    if gate.page is None:
        return Step(gate)
    updates: dict[str, Any] = {}
    event = "acknowledged" if kind == "acknowledged" else f"page_{kind}"
    if kind == "acknowledged" and gate.acknowledged_at is None:
        updates.update(acknowledged_at=now, acknowledged_by=who)
        if gate.phase is Phase.PAGED:
            updates["phase"] = Phase.ACKNOWLEDGED
    by = f" by {who}" if who else ""
    step = Step(gate.model_copy(update=updates),
                (Record(event, who or "pagerduty", {"event_id": event_id},
                        once_key=vendor_event_key(event_id)),),
                (Effect(THREAD_NOTE, f"page-{event_id}",
                        {"text": f"Tier 2 page {kind.replace('_', ' ')}{by}."}),))
    if kind == "resolved" and source is Source.SLACK and step.gate.resolved_at is None:
        # A Slack-declared escalation has no incident of its own: the page's end is its end.
        step = step.then(_resolved(step.gate, "pagerduty", now))
    return step


def on_retro_opened(gate: Gate, url: str, *, shadow: bool) -> Step:
    event = "would_have_opened_retro" if shadow else "retro_opened"
    text = ("SHADOW mode: a retro issue would have been opened now." if shadow
            else f"Retro issue: {url}")
    return Step(gate.model_copy(update={"retro_url": url,
                                        "problems": gate.without_problems(RETRO)}),
                (Record(event, DAEMON, {"url": url}, once_key="retro"),),
                (Effect(THREAD_NOTE, "retro", {"text": text}),))


def on_noted(gate: Gate, event: str, details: dict[str, Any], once_key: str | None = None
             ) -> Step:
    """Something happened that changes no state but belongs in the audit trail."""
    return Step(gate, (Record(event, DAEMON, details, once_key),))


_HOW_TO_ACT = {
    PAGE: ("Tier 2 has NOT been paged. Page Tier 2 by hand in PagerDuty now if this cannot wait.",
           "runbooks/page-did-not-go-out.md"),
    REQUEST_APPROVAL: ("The SMOC has not been asked. Decide by hand: page Tier 2 in PagerDuty "
                       "if this emergency cannot wait.", "runbooks/job-dead-lettered.md"),
    RETRO: ("Open the retro issue by hand, or retry the job once the tracker is fixed.",
            "runbooks/job-dead-lettered.md"),
    RFH_ISSUE: ("Open the request-for-help issue by hand, or retry the job once the tracker is "
                "fixed.", "runbooks/request-for-help.md"),
}
_WHAT = {
    PAGE: "The Tier 2 page", REQUEST_APPROVAL: "The approval request", RETRO: "The retro issue",
    RFH_ISSUE: "The request-for-help issue", RFH_NOTICE: "The request-for-help notice",
    THREAD_NOTE: "A status update in the approval thread",
    UPDATE_APPROVAL: "An update of the approval message", REMIND: "A reminder",
    TIMEOUT: "The approval timeout", TELL_USER: "A reply to a click", RECHECK: "A policy re-check",
}


def failure_runbook(effect: str) -> str:
    """The runbook (path under runbooks/) that says what to do when `effect` fails."""
    return _HOW_TO_ACT.get(effect, ("", "runbooks/job-dead-lettered.md"))[1]


def on_effect_failed(gate: Gate, effect: str, reason: str, now: datetime, *, final: bool,
                     runbook_url: str = "", lost_text: str = "") -> Step:
    """An effect of this escalation failed for good (`final`, dead-lettered) or keeps failing
    on the emergency path (it is still being retried). Nobody may be left believing it worked:
    the escalation needs attention, the approval message stops promising what did not happen,
    and the approvers are told in words where they look (the approval thread, or directly when
    the thread itself is what fails), with the vendor's reason and what to do by hand.

    `lost_text`: the text of a thread note that could not be posted, passed on to the people.
    """
    known = [p for p in gate.problems if p.effect == effect]
    if known and (known[-1].final or not final):
        return Step(gate)  # they were told already
    problem = Problem(effect=effect, reason=reason, at=now, final=final)
    gate = gate.model_copy(update={"problems": (*gate.without_problems(effect), problem)})
    state = "failed" if final else "keeps failing"
    what = _WHAT.get(effect, f"The {effect.replace('_', ' ')} job")
    how, _runbook = _HOW_TO_ACT.get(effect, ("", ""))
    if not final:
        how = "tier2gate keeps retrying. " + how
    text = f":rotating_light: {what} {state}: {reason}".rstrip(". ") + "."
    if how:
        text += f" {how}"
    if lost_text:
        text += f"\nThe update was: {lost_text}"
    if runbook_url:
        text += f"\nRunbook: {runbook_url}"
    records = (Record("needs_attention", DAEMON,
                      {"effect": effect, "reason": reason, "final": final}),)
    name = f"failed-{effect}" if final else f"failing-{effect}"
    effects: list[Effect] = []
    if effect == DIRECT_NOTE:
        return Step(gate, records)  # telling people failed: the dashboard and the log remain
    if gate.approval is not None:
        effects.append(Effect(UPDATE_APPROVAL, name))  # the message shows the problem
    if gate.approval is not None and effect not in (THREAD_NOTE, UPDATE_APPROVAL):
        mentions = " ".join(f"<@{a}>" for a in gate.approval.approvers)
        effects.append(Effect(THREAD_NOTE, name, {"text": f"{text}\n{mentions}".rstrip()}))
    else:
        to = "approvers" if gate.emergency else "channel"
        effects.append(Effect(DIRECT_NOTE, name, {"text": text, "to": to}))
    return Step(gate, records, tuple(effects))


def on_decline_form_failed(gate: Gate, user_id: str, reason: str, click_id: str) -> Step:
    """The Decline form could not open (Slack's trigger id lives 3 seconds): nothing was
    decided; the clicker is told to press again, and the attempt is on the record."""
    text = ("The decline form could not be opened in time (Slack allows 3 seconds). "
            "Press Decline again.")
    return Step(gate, (Record("decline_form_failed", user_id, {"error": reason}),),
                (Effect(TELL_USER, f"form-{click_id}", {"user": user_id, "text": text}),))
