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

from daemon.domain.gate import ApprovalState, DecisionState, Gate, PageState, Phase, Verdict
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
        step = step.then(_classify(step.gate, decision, rfh_due))
    if escalation.status is Status.RESOLVED and step.gate.resolved_at is None:
        step = step.then(_resolved(step.gate, escalation.source.value, now))
    return step


_WATCHED = ("title", "severity", "status", "customer", "fields", "labels", "test_mode")


def _changes(before: Escalation, after: Escalation) -> dict[str, Any]:
    """What the source changed, as {name: new value}, for the timeline."""
    return {name: getattr(after, name) for name in _WATCHED
            if getattr(before, name) != getattr(after, name)}


def _classify(gate: Gate, decision: Decision, rfh_due: datetime) -> Step:
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
        effects.append(Effect(REQUEST_APPROVAL, "request"))
    if changed and phase is Phase.RFH:
        updates["rfh_due_at"] = rfh_due
        effects += [Effect(RFH_NOTICE, "notice"), Effect(RFH_ISSUE, "issue")]
    if decision.recheck_at is not None and phase is not Phase.AWAITING_APPROVAL:
        stamp = int(decision.recheck_at.timestamp())
        effects.append(Effect(RECHECK, f"at-{stamp}", run_at=decision.recheck_at))
    return Step(gate.model_copy(update=updates), tuple(records), tuple(effects))


def _resolved(gate: Gate, actor: str, now: datetime) -> Step:
    """The customer problem is over. A page that went out earns a retro; a pending one is moot."""
    gate = gate.model_copy(update={"resolved_at": now})
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
                       smoc_note: str, now: datetime) -> Step:
    """The approval request is in the channel: start the reminder and timeout clocks.

    The message exists whatever happened meanwhile, so it is always recorded: a click (or the
    source resolving) that was processed before this commit only means the message must show
    that outcome at once instead of waiting for a decision.
    """
    if gate.approval is not None:
        return Step(gate)
    timing = _timing(gate)
    approval = ApprovalState(requested_at=now, channel=channel, ts=ts, approvers=approvers,
                             smoc_note=smoc_note)
    record = Record("approval_requested", DAEMON, {
        "to": list(approvers), "channel": channel, "ts": ts, "smoc_note": smoc_note},
        once_key="approval_requested")
    if gate.phase is not Phase.AWAITING_APPROVAL or gate.decided is not None:
        effects: tuple[Effect, ...] = (Effect(UPDATE_APPROVAL, "overtaken"),)
    else:
        effects = (
            Effect(REMIND, "1", {"n": 1}, now + timedelta(minutes=timing.remind_after_minutes)),
            Effect(TIMEOUT, "timeout", run_at=now + timedelta(minutes=timing.timeout_minutes)),
        )
    return Step(gate.model_copy(update={"approval": approval}), (record,), effects)


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
    waited = {"waited_s": round((now - gate.approval.requested_at).total_seconds(), 3)} \
        if gate.approval else {}
    if verdict is Verdict.APPROVED:
        return Step(gate.model_copy(update={"phase": Phase.PAGING, "decided": decided}),
                    (Record("approved", user_id, waited, once_key="decision"),),
                    (Effect(UPDATE_APPROVAL, "decided"), Effect(PAGE, "page")))
    updates = {"phase": Phase.DECLINED, "decided": decided, "rfh_due_at": rfh_due}
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
    if gate.phase is not Phase.AWAITING_APPROVAL or gate.approval is None:
        return Step(gate)
    timing = _timing(gate)
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
    if gate.phase is not Phase.AWAITING_APPROVAL or gate.approval is None:
        return Step(gate)
    timing = _timing(gate)
    fallback = timing.on_timeout
    details = {"after_minutes": timing.timeout_minutes, "fallback": fallback.value}
    if fallback is OnTimeout.PAGE:
        decided = DecisionState(verdict=Verdict.TIMED_OUT, by="", at=now, pages=True)
        return Step(gate.model_copy(update={"phase": Phase.PAGING, "decided": decided}),
                    (Record("approval_timed_out", DAEMON, details, once_key="decision"),),
                    (Effect(UPDATE_APPROVAL, "decided"), Effect(PAGE, "page")))
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
    return Step(gate.model_copy(update={"phase": phase, "page": page}),
                (Record(event, DAEMON, {"incident_id": incident_id, "url": url},
                        once_key="paged"),),
                tuple(effects))


def on_page_event(gate: Gate, kind: str, who: str, now: datetime, event_id: str, *,
                  source: Source) -> Step:
    """What happened to the Tier 2 page (acknowledged, escalated, reassigned, resolved)."""
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
                (Record(event, who or "pagerduty", {"event_id": event_id}),),
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
    return Step(gate.model_copy(update={"retro_url": url}),
                (Record(event, DAEMON, {"url": url}, once_key="retro"),),
                (Effect(THREAD_NOTE, "retro", {"text": text}),))


def on_noted(gate: Gate, event: str, details: dict[str, Any], once_key: str | None = None
             ) -> Step:
    """Something happened that changes no state but belongs in the audit trail."""
    return Step(gate, (Record(event, DAEMON, details, once_key),))
