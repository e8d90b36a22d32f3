"""The escalation state machine: `(gate, event) -> Step(gate, records, effects)`. Pure.

Records are timeline entries (the audit log); effects are side effects for the job runner,
named so that the job key `kind:escalation:name` makes each one happen at most once. A record
with a `once_key` can exist only once per escalation: the store refuses a second decision, a
second page, a second retro, whatever races produced them.

Rounds: a source incident that is resolved and then reopened is decided again. When the SMOC
had been involved (the escalation rests declined or closed), the reopen starts a new round of
the gate (`Gate.round`): a new classification, approval request, decision and page. Names and
once keys here are written per round; `jobs.escalations.changes_for` makes them unique per
round (round 1 keeps the plain names), so every round has the same exactly-once guarantees and
an earlier round's records and jobs stay as they were.

The text of a chat effect (thread note, direct note, reply to a click) is a `Message`: facts
for the chat adapter to render. A value from outside (a PagerDuty agent's name, a vendor's URL
or error) is literal `Text` like our own words, and only people tier2gate chose (approvers,
whoever decided) are `Mention`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.domain.effects import (
    ApprovalCopy,
    Audience,
    DirectNote,
    EEOffer,
    Effect,
    EffectKind,
    Remind,
    Retro,
    RetroNote,
    RfhNote,
    TellUser,
    ThreadNote,
    Timeout,
)
from daemon.domain.gate import (
    ApprovalState,
    DecisionState,
    EarlierRound,
    Gate,
    MergedIn,
    PageState,
    Phase,
    Problem,
    Verdict,
)
from daemon.domain.messages import Message, mention, mentions, message
from daemon.domain.models import Escalation, Person, Source, Status
from daemon.domain.policy import Approval, Decision, OnTimeout, Outcome, reevaluate

APPROVAL_CHANNEL = "approval_channel"  # a problem, not an effect: the channel refused the bot
APPROVERS = "approvers"  # a problem, not an effect: nobody may decide the request

POLICY = "policy"
DAEMON = "tier2gate"

_PHASE_OF = {
    Outcome.EMERGENCY: Phase.AWAITING_APPROVAL,
    Outcome.RFH: Phase.RFH,
    Outcome.IGNORE: Phase.IGNORED,
}
_UNDECIDED = (Phase.RECEIVED, Phase.IGNORED, Phase.RFH, Phase.AWAITING_APPROVAL)
OPEN = (Phase.RECEIVED, Phase.RFH, Phase.AWAITING_APPROVAL)
"""Escalations that a change of policy judges again: ignored ones wait for news from their
source (there are many, and an edit should not wake every test incident ever filed)."""


@dataclass(frozen=True)
class Record:
    event: str
    actor: str
    details: dict[str, Any] = field(default_factory=dict)
    once_key: str | None = None


@dataclass(frozen=True)
class Step:
    gate: Gate
    records: tuple[Record, ...] = ()
    effects: tuple[Effect, ...] = ()

    def then(self, other: Step) -> Step:
        return Step(other.gate, self.records + other.records, self.effects + other.effects)


def timing(gate: Gate) -> Approval:
    """The approval timings in force for this escalation (the program's defaults if none)."""
    return (gate.decision.approval if gate.decision else None) or Approval()


def on_facts(gate: Gate, escalation: Escalation, decision: Decision, now: datetime, *,
             previous: Escalation | None, rfh_due: datetime) -> Step:
    """New or changed facts from the source (a webhook, an API fetch, a timer's re-check).

    A reopen is the source saying the incident is active again after it said resolved
    (`previous` resolved, `escalation` open, and we recorded `resolved_at`). Comparing with the
    previous facts, not with our own state, keeps a timer's re-check (same facts) and a
    chat-declared escalation (which ends with its page, its facts stay open) from looking like
    one; the intake applies only facts newer than the stored ones, so a late "live" delivery
    arriving after "closed" cannot fake one either.
    """
    step = Step(gate)
    if previous is None:
        step = Step(gate, (Record("received", escalation.source.value, {
            "reference": escalation.reference, "title": escalation.title,
            "severity": escalation.severity, "status": escalation.status.value,
            "customer": escalation.customer,
            **({"declared_by": escalation.declared_by.model_dump(exclude_defaults=True)}
               if escalation.declared_by else {})}),))
    else:
        changed = _changes(previous, escalation)
        if changed:
            step = Step(gate, (Record("updated", escalation.source.value, changed),))
    if (previous is not None and previous.status.ended
            and escalation.status is Status.OPEN and gate.resolved_at is not None):
        step = step.then(_reopened(step.gate, escalation.source.value, now))
    # A withdrawn or merged incident asks nobody anything new: what it would have been is moot.
    # Nor does an emergency not yet put to the SMOC (say, held back for its EE) whose incident
    # is resolved: it is over, not a request for help for Tier 2 to pick up on Monday.
    if (step.gate.phase in _UNDECIDED and step.gate.resolved_at is None
            and (escalation.status is Status.OPEN or (escalation.status is Status.RESOLVED
                                                      and step.gate.phase
                                                      is not Phase.AWAITING_APPROVAL))):
        step = step.then(_classify(step.gate, decision, rfh_due, now))
    if escalation.status.ended and step.gate.resolved_at is None:
        step = step.then(_ended(step.gate, escalation, now))
    return step


_WATCHED = ("title", "severity", "status", "customer", "fields", "labels", "test_mode")


def _changes(before: Escalation, after: Escalation) -> dict[str, Any]:
    """What the source changed, as {name: new value}, for the timeline."""
    return {name: getattr(after, name) for name in _WATCHED
            if getattr(before, name) != getattr(after, name)}


def _reopened(gate: Gate, actor: str, now: datetime) -> Step:
    """The source incident is active again: it is no longer resolved, and the policy decides it
    again as for new facts (the caller classifies next).

    An escalation that never reached the SMOC (ignored, or a request for help) is simply
    classified again, so an RFH reopened as an emergency asks the SMOC like any RFH that
    becomes one. One that did (declined, or closed after a request, a decision or a page) starts
    a new round: the earlier round's approval, decision and page move to `earlier`, and a
    reopened emergency asks the SMOC again rather than reusing a decision made about an
    incident that was over. The retro is not reset: a page in the new round is noted on the
    retro issue that exists already.
    """
    assert gate.resolved_at is not None
    details: dict[str, Any] = {
        "previous": gate.phase.value,
        "outcome": gate.decision.outcome.value if gate.decision else None,
        "resolved_at": gate.resolved_at.isoformat()}
    updates: dict[str, Any] = {"resolved_at": None, "reopened_at": now, "ended_as": ""}
    if gate.emergency:
        closed = EarlierRound(round=gate.round, phase=gate.phase, approval=gate.approval,
                              decided=gate.decided, page=gate.page,
                              acknowledged_at=gate.acknowledged_at, resolved_at=gate.resolved_at)
        updates.update(round=gate.round + 1, phase=Phase.RECEIVED, approval=None, decided=None,
                       page=None, acknowledged_at=None, acknowledged_by="", rfh_due_at=None,
                       earlier=(*gate.earlier, closed))
        details["round"] = gate.round + 1
    return Step(gate.model_copy(update=updates), (Record("reopened", actor, details),))


def _human(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _retro(gate: Gate) -> Effect:
    """The retro for the page of this round. In a later round, whose incident was reopened, the
    retro issue exists already (or is on its way), so the effect carries the note that tells it
    of this round instead of asking for a second issue."""
    if gate.round == 1 or gate.page is None:
        return Effect(EffectKind.RETRO, "retro")
    page = gate.page
    paged = ("would have been paged again (SHADOW mode)" if page.shadow
             else f"was paged again at {_human(page.at)}: {page.url or page.incident_id}")
    decided = ""
    if gate.decided is not None:
        by = gate.decided.by or "the approval timeout"
        decided = f" ({gate.decided.verdict.value.replace('_', ' ')} by {by})"
    reopened = _human(gate.reopened_at) if gate.reopened_at else "an unknown time"
    note = (f"The incident was reopened at {reopened} (round {gate.round}); Tier 2 "
            f"{paged}{decided}.")
    return Effect(EffectKind.RETRO, "retro", Retro(note=note))


def smoc_effects(decision: Decision | None, now: datetime) -> tuple[Effect, ...]:
    """Ask the SMOC. The approval clocks start now, not when the chat accepts the message: a
    request that cannot be posted must still remind people and reach its timeout fallback."""
    timings = (decision.approval if decision else None) or Approval()
    since = now.timestamp()
    return (
        Effect(EffectKind.REQUEST_APPROVAL, "request"),
        Effect(EffectKind.REMIND, "1", Remind(n=1, since=since),
               now + timedelta(minutes=timings.remind_after_minutes)),
        Effect(EffectKind.TIMEOUT, "timeout", Timeout(since=since),
               now + timedelta(minutes=timings.timeout_minutes)),
    )


def rfh_effects() -> tuple[Effect, ...]:
    """Today's request-for-help path: the chat notice and the RFH issue."""
    return (Effect(EffectKind.RFH_NOTICE, "notice"), Effect(EffectKind.RFH_ISSUE, "issue"))


def _classify(gate: Gate, decision: Decision, rfh_due: datetime, now: datetime) -> Step:
    if gate.phase is Phase.AWAITING_APPROVAL:
        kept = reevaluate(Outcome.EMERGENCY, gate.approval is not None, decision)
        if kept is not decision and gate.decision is not None:
            # A refused downgrade keeps the timings the SMOC was asked under, not defaults.
            kept = kept.model_copy(update={"approval": gate.decision.approval})
        decision = kept
    phase = _PHASE_OF[decision.outcome]
    # Once the request is posted its approvers are the team's: a later change of the facts
    # (say, the "Tier 1 team" field) must not hand the decision to people nobody asked.
    team = gate.team if gate.approval is not None else decision.team
    records: list[Record] = []
    effects: list[Effect] = []
    changed = phase is not gate.phase
    if changed:
        records.append(Record("classified", POLICY, {
            "outcome": decision.outcome.value, "rule": decision.rule, "reason": decision.reason,
            "matched": decision.matched,
            "criteria": [c.value for c, held in decision.facts.criteria.items() if held],
            "severity": decision.facts.severity, "weekend": decision.facts.weekend,
            "off_hours": decision.facts.off_hours, "previous": gate.phase.value, "team": team,
            **({"due": rfh_due.isoformat()} if phase is Phase.RFH else {}),
            **({"customer_events": [e.model_dump(mode="json")
                                    for e in decision.facts.customer_events]}
               if decision.facts.customer_events else {})}))
    elif team != gate.team:
        records.append(Record("team_changed", POLICY, {"from": gate.team, "to": team}))
    updates: dict[str, Any] = {"phase": phase, "decision": decision, "team": team}
    route = decision.ee
    if changed and phase is Phase.AWAITING_APPROVAL:
        wait = route.wait_minutes if route is not None and gate.approval is None else 0
        if route is not None:
            # The offer job asks the SMOC at once when nobody is on the rotation: an
            # emergency never waits on an empty rotation.
            effects.append(Effect(EffectKind.EE_OFFER, "offer-emergency",
                                      EEOffer(wait_minutes=wait)))
        if wait:
            effects.append(Effect(EffectKind.EE_WAIT, "wait", run_at=now + timedelta(minutes=wait)))
        else:
            effects += smoc_effects(decision, now)
    if changed and phase is Phase.RFH:
        updates["rfh_due_at"] = rfh_due
        if route is not None and gate.ee is None:
            effects.append(Effect(EffectKind.EE_OFFER, "offer"))
        elif gate.ee is not None and gate.ee.owner and gate.ee.outcome is None:
            # An emergency its EE holds became a request for help: the EE still decides
            # whether Engineering is needed ("Needs Engineering" sends it on).
            updates["ee"] = gate.ee.model_copy(update={"waiting": False})
        else:
            effects += rfh_effects()
    if changed and phase is Phase.IGNORED and gate.ee is not None and gate.ee.message_id:
        # Now ignored (say, marked a test): the EE offer stops offering.
        effects.append(Effect(EffectKind.EE_UPDATE, f"ignored-{int(now.timestamp())}"))
    if decision.recheck_at is not None and phase is not Phase.AWAITING_APPROVAL:
        stamp = int(decision.recheck_at.timestamp())
        effects.append(Effect(EffectKind.RECHECK, f"at-{stamp}", run_at=decision.recheck_at))
    return Step(gate.model_copy(update=updates), tuple(records), tuple(effects))


def _resolved(gate: Gate, actor: str, now: datetime) -> Step:
    """The customer problem is over. A page that went out earns a retro; a pending one is moot."""
    # Once the customer problem is over only the issues still matter: a page, a reminder or a
    # status note that failed is moot now.
    gate = gate.model_copy(update={"resolved_at": now, "problems": tuple(
        p for p in gate.problems if p.effect in (EffectKind.RETRO, EffectKind.RFH_ISSUE))})
    records = [Record("resolved", actor)]
    effects: list[Effect] = []
    if gate.page is not None:
        gate = gate.model_copy(update={"phase": Phase.CLOSED})
        effects.append(_retro(gate))
    elif gate.phase in (Phase.AWAITING_APPROVAL, Phase.PAGING):
        note = ("The source incident was resolved before a decision: no page will be sent."
                if gate.phase is Phase.AWAITING_APPROVAL else
                "The source incident was resolved as Tier 2 was being paged: a page already on "
                "its way is recorded here, and its retro follows.")
        gate = gate.model_copy(update={"phase": Phase.CLOSED})
        effects += [Effect(EffectKind.UPDATE_APPROVAL, "resolved"),
                    Effect(EffectKind.THREAD_NOTE, "resolved-before-page",
                           ThreadNote(text=message(note)))]
    if gate.page is None and any(m.page is not None for m in gate.merged_in):
        # The outage paged, through a merged duplicate.
        effects.append(Effect(EffectKind.RETRO, "retro"))
    if gate.ee is not None and gate.ee.message_id:
        effects.append(Effect(EffectKind.EE_UPDATE, "ended"))  # the EE offer stops offering
    return Step(gate, tuple(records), tuple(effects))


def _ended(gate: Gate, escalation: Escalation, now: datetime) -> Step:
    """The source incident ended: resolved, withdrawn (declined in triage or canceled) or
    merged into another incident.

    A withdrawn or merged incident wants no decision any more: a pending request is taken back
    (the message loses its buttons and says why) and a request for help already made is told on
    its issue. A page that went out stays a page: a withdrawn incident still earns its retro
    (Dev was woken), while a merged one hands its page to the incident it was merged into, so
    the outage has one retro (`EffectKind.MERGE_INTO`).
    """
    actor = escalation.source.value
    status = escalation.status
    if status is Status.RESOLVED:
        return _resolved(gate, actor, now)
    target = escalation.merged_into
    what = (f"was merged into {target or 'another incident'}" if status is Status.MERGED
            else "was declined or canceled")
    gate = gate.model_copy(update={"resolved_at": now, "ended_as": status.value, "problems": tuple(
        p for p in gate.problems if p.effect in (EffectKind.RETRO, EffectKind.RFH_ISSUE))})
    details = {"merged_into": target} if status is Status.MERGED else {}
    effects: list[Effect] = []
    if gate.phase in (Phase.AWAITING_APPROVAL, Phase.PAGING):
        note = (f"The source incident {what} before a decision: the request is withdrawn and "
                "no page will be sent." if gate.phase is Phase.AWAITING_APPROVAL else
                f"The source incident {what} as Tier 2 was being paged: a page already on its "
                "way is recorded here.")
        effects += [Effect(EffectKind.UPDATE_APPROVAL, "ended"),
                    Effect(EffectKind.THREAD_NOTE, "ended-before-page",
                           ThreadNote(text=message(note)))]
    if gate.page is not None or gate.phase in (Phase.AWAITING_APPROVAL, Phase.PAGING):
        gate = gate.model_copy(update={"phase": Phase.CLOSED})
    if gate.page is not None:
        effects.append(_earned(gate))
    elif gate.phase in (Phase.RFH, Phase.DECLINED):
        # The request for help (an issue due next business morning) is no longer wanted, or
        # continues on the incident it was merged into: whoever picks it up must know.
        text = (f"The source incident {escalation.reference or escalation.external_id} {what} "
                f"at {_human(now)}: this request for help is withdrawn"
                + (" and continues there." if status is Status.MERGED else
                   ". Close this issue unless something is still wanted."))
        effects.append(Effect(EffectKind.RFH_NOTE, "ended", RfhNote(text=text)))
    if gate.ee is not None and gate.ee.message_id:
        effects.append(Effect(EffectKind.EE_UPDATE, "ended"))  # the EE offer stops offering
    return Step(gate, (Record(status.value, actor, details),), tuple(effects))


def _earned(gate: Gate) -> Effect:
    """What a page of an ended incident earns: its retro, or, when the incident was merged into
    another one, a place in that incident's retro."""
    if gate.ended_as == Status.MERGED.value:
        return Effect(EffectKind.MERGE_INTO, "merge")
    return _retro(gate)


def on_merged_in(gate: Gate, from_id: str, reference: str, page: PageState | None) -> Step:
    """The incident of escalation `from_id` was merged into this one's: the outage is one, and
    so is its retro. A page sent for the merged incident is this outage's page: it is told in
    this escalation's retro (its body shows this timeline entry), as a note when the retro
    issue exists already, or it earns the retro when this incident is over without one."""
    if any(m.escalation_id == from_id for m in gate.merged_in):
        return Step(gate)
    gate = gate.model_copy(update={"merged_in": (*gate.merged_in, MergedIn(
        escalation_id=from_id, reference=reference, page=page))})
    details: dict[str, Any] = {"escalation_id": from_id, "reference": reference}
    effects: list[Effect] = []
    if page is not None:
        details.update(page_url=page.url or page.incident_id, paged_at=page.at.isoformat())
        note = (f"{reference or from_id} (tier2gate {from_id}) was merged into this incident. "
                f"Tier 2 was paged for it at {_human(page.at)}: {page.url or page.incident_id}.")
        if gate.retro_url:
            effects.append(Effect(EffectKind.RETRO_NOTE, f"merged-{from_id}", RetroNote(note=note)))
        elif gate.resolved_at is not None and gate.page is None:
            effects.append(Effect(EffectKind.RETRO, "retro"))
    return Step(gate, (Record("merged_in", DAEMON, details, once_key=f"merged_in-{from_id}"),),
                tuple(effects))


def on_merge_target_unknown(gate: Gate, into: str) -> Step:
    """A paged incident was merged into one tier2gate does not know (or cannot tell): its page
    keeps its own retro, which says it was merged."""
    return Step(gate, (Record("merge_target_unknown", DAEMON, {"merged_into": into}),),
                (_retro(gate),))


def on_approval_posted(gate: Gate, channel: str, ts: str, approvers: tuple[str, ...],
                       smoc_note: str, now: datetime, *,
                       copies: tuple[tuple[str, str], ...] = (), channel_refused: str = "",
                       missing: tuple[str, ...] = (), smoc_resolved: bool = False,
                       team: str | None = None,
                       channel_setting: str = "the approval channel setting") -> Step:
    """The approval request is posted (the reminder and timeout clocks run since the
    classification).

    The message exists whatever happened meanwhile, so it is always recorded: a click (or the
    source resolving) that was processed before this commit only means the message must show
    that outcome at once instead of waiting for a decision. `channel_refused` (the vendor's
    reason) means the approval channel refused the bot and the request went to the approvers
    directly (`channel`/`ts` and `copies` are then direct messages): someone must fix the
    channel, so the escalation needs attention. `missing`: approvers whose direct message could
    not be sent yet; each gets its own retried job, so nobody else's copy is posted twice.
    `smoc_resolved`: `approvers[0]` is the SMOC, not a backup. `team`: the Tier 1 team whose
    approvers were asked, which the escalation keeps from now on (facts that moved it while the
    request was being posted do not move the people asked); None: its current team.
    `channel_setting` names where the channel is configured (the settings, or the team's).
    """
    if gate.approval is not None:
        return Step(gate)
    approval = ApprovalState(requested_at=now, channel=channel, message_id=ts, approvers=approvers,
                             smoc_note=smoc_note, copies=copies,
                             smoc_resolved=smoc_resolved)
    team = team or gate.team
    records = [Record("approval_requested", DAEMON, {
        "to": list(approvers), "channel": channel, "ts": ts, "smoc_note": smoc_note,
        "team": team,
        **({"direct": True} if channel_refused else {})}, once_key="approval_requested")]
    updates: dict[str, Any] = {"approval": approval, "team": team}
    if channel_refused:
        reason = (f"The approval channel refused the bot ({channel_refused}): the request was "
                  "sent to the approvers as direct messages. Invite the bot to the channel or "
                  f"fix {channel_setting}.")
        updates["problems"] = (*gate.without_problems(APPROVAL_CHANNEL),
                               Problem(effect=APPROVAL_CHANNEL, reason=reason, at=now))
        records.append(Record("approval_channel_refused", DAEMON, {"error": channel_refused}))
    effects: tuple[Effect, ...] = tuple(
        Effect(EffectKind.APPROVAL_COPY, f"copy-{user}", ApprovalCopy(user=user))
        for user in missing)
    if gate.phase is not Phase.AWAITING_APPROVAL or gate.decided is not None:
        effects = (Effect(EffectKind.UPDATE_APPROVAL, "overtaken"),)
    return Step(gate.model_copy(update=updates), tuple(records), effects)


def on_copy_posted(gate: Gate, user_id: str, channel: str, ts: str) -> Step:
    """A late direct-message copy of the approval request reached `user_id`. Recorded whatever
    happened meanwhile; if a decision came first, the copy shows it at once."""
    if gate.approval is None or (channel, ts) in gate.approval.copies:
        return Step(gate)
    approval = gate.approval.model_copy(
        update={"copies": (*gate.approval.copies, (channel, ts))})
    effects: tuple[Effect, ...] = ()
    if gate.phase is not Phase.AWAITING_APPROVAL or gate.decided is not None:
        effects = (Effect(EffectKind.UPDATE_APPROVAL, f"copy-{user_id}"),)
    return Step(gate.model_copy(update={"approval": approval}),
                (Record("approval_copy_posted", DAEMON, {"to": user_id, "channel": channel}),),
                effects)


def on_click(gate: Gate, user_id: str, verdict: Verdict, now: datetime, *, allowed: bool,
             click_id: str, reason: str = "", rfh_due: datetime | None = None,
             earlier_round: bool = False, declared_by: Person | None = None,
             forbid_self_approval: bool = False) -> Step:
    """An approver pressed Approve, or submitted the Decline form.

    `earlier_round`: on the request of a round before the incident was reopened. That request
    was about an incident that was over; a decision on the new round must be made on the new
    request, which says what the incident is now.

    An approval by whoever declared the escalation (`declared_by`) is refused when the policy
    forbids self-approval, and flagged (`self_approved`) when it allows it. Declining one's own
    escalation pages nobody, so it is always allowed.
    """
    if earlier_round or gate.phase is not Phase.AWAITING_APPROVAL or gate.decided is not None:
        text = (message(_EARLIER_ROUND_TEXT) if earlier_round else _late_text(gate))
        return Step(gate, (Record("decision_ignored", user_id, {
            "verdict": verdict.value, "why": text.plain}),),
            (Effect(EffectKind.TELL_USER, f"late-{click_id}", TellUser(user=user_id, text=text)),))
    if not allowed:
        approvers = gate.approval.approvers if gate.approval else ()
        who = mentions(approvers[:3], " or ") or message("the Support Manager on Call")
        text = message("Only the Support Manager on Call or a backup approver (", who,
                       ") can decide this.")
        return Step(gate, (Record("approval_refused", user_id, {
            "verdict": verdict.value, "why": "not_an_approver"}),),
                    (Effect(EffectKind.TELL_USER, f"refused-{click_id}",
                            TellUser(user=user_id, text=text)),))
    self_approved = (verdict is Verdict.APPROVED and declared_by is not None
                     and declared_by.is_chat_user(user_id))
    if self_approved and forbid_self_approval:
        others = [a for a in (gate.approval.approvers if gate.approval else ()) if a != user_id]
        who = mentions(others[:3], " or ") or message("a backup approver")
        text = message("You declared this escalation, and the policy requires someone else to "
                       "approve it (approval.forbid_self_approval): ask ", who, ".")
        return Step(gate, (Record("approval_refused", user_id, {
            "verdict": verdict.value, "why": "self_approval_forbidden"}),),
                    (Effect(EffectKind.TELL_USER, f"refused-{click_id}",
                            TellUser(user=user_id, text=text)),))
    decided = DecisionState(verdict=verdict, by=user_id, at=now, reason=reason,
                            pages=verdict is Verdict.APPROVED, self_approved=self_approved)
    # A person decided: a refused approval channel no longer keeps this escalation waiting.
    problems = gate.without_problems(EffectKind.REQUEST_APPROVAL, APPROVAL_CHANNEL, APPROVERS)
    waited = {"waited_s": round((now - gate.approval.requested_at).total_seconds(), 3)} \
        if gate.approval else {}
    if verdict is Verdict.APPROVED:
        records = [Record("approved", user_id,
                          {**waited, **({"self_approved": True} if self_approved else {})},
                          once_key="decision")]
        if self_approved and declared_by is not None:
            records.append(Record("self_approved", user_id, {
                "declared_by": declared_by.model_dump(exclude_defaults=True)}))
        return Step(gate.model_copy(update={"phase": Phase.PAGING, "decided": decided,
                                            "problems": problems}),
                    tuple(records),
                    (Effect(EffectKind.UPDATE_APPROVAL, "decided"),
                     Effect(EffectKind.PAGE, "page")))
    updates = {"phase": Phase.DECLINED, "decided": decided, "rfh_due_at": rfh_due,
               "problems": problems}
    return Step(gate.model_copy(update=updates),
                (Record("declined", user_id, {"reason": reason, **waited}, once_key="decision"),),
                (Effect(EffectKind.UPDATE_APPROVAL, "decided"),
                 Effect(EffectKind.RFH_NOTICE, "notice"), Effect(EffectKind.RFH_ISSUE, "issue")))


def on_foreign_click(gate: Gate, user_id: str, verdict: Verdict, *, click_id: str,
                     channel: str, ts: str) -> Step:
    """A click (or decline form) naming this escalation came from a message that is not one
    of its approval messages: decided nothing, audited here, and the clicker is told where it
    happened. Honouring it would let one escalation's buttons decide, and rewrite the message
    of, another."""
    text = ("These buttons do not belong to this message, so nothing was decided. Decide on "
            "the escalation's own approval request.")
    return Step(gate, (Record("click_mismatch", user_id, {
        "verdict": verdict.value, "channel": channel, "ts": ts}),),
        (Effect(EffectKind.TELL_USER, f"mismatch-{click_id}",
                TellUser(user=user_id, text=message(text), channel=channel)),))


_EARLIER_ROUND_TEXT = ("This request is from before the incident was reopened; nothing changed. "
                       "Decide on the new request for it.")


def _late_text(gate: Gate) -> Message:
    if gate.decided is None:
        return message("This escalation is no longer waiting for a decision.")
    by = mention(gate.decided.by) if gate.decided.by else message("the approval timeout")
    return message(f"Already {gate.decided.verdict.value.replace('_', ' ')} by ", by,
                   "; nothing changed.")


def on_remind(gate: Gate, n: int, now: datetime) -> Step:
    if gate.phase is not Phase.AWAITING_APPROVAL or gate.decided is not None:
        return Step(gate)
    timings = timing(gate)
    if gate.approval is None:
        # The request is not posted yet (the chat keeps failing): tell the approvers directly,
        # and keep reminding until there is a message to decide on.
        text = ("An emergency is waiting for a decision, but its approval request could not "
                "be posted yet; tier2gate keeps trying. Check the dashboard, and page Tier 2 "
                "by hand if it cannot wait.")
        return Step(gate, (Record("approval_reminded", DAEMON, {"n": n, "posted": False}),),
                    (Effect(EffectKind.DIRECT_NOTE, f"remind-{n}",
                            DirectNote(text=message(text), to=Audience.APPROVERS)),
                     Effect(EffectKind.REMIND, str(n + 1), Remind(n=n + 1, since=now.timestamp()),
                            now + timedelta(minutes=timings.remind_after_minutes))))
    approval = gate.approval.model_copy(update={"reminders": n})
    asked = mentions(gate.approval.approvers)
    reminder = message("Reminder: this emergency is still waiting for a decision.",
                       " " if asked else "", asked)
    effects = [Effect(EffectKind.THREAD_NOTE, f"remind-{n}", ThreadNote(text=reminder))]
    if approval.holding:
        effects.append(Effect(EffectKind.REMIND, str(n + 1),
                              Remind(n=n + 1, since=now.timestamp()),
                              now + timedelta(minutes=timings.remind_after_minutes)))
    return Step(gate.model_copy(update={"approval": approval}),
                (Record("approval_reminded", DAEMON, {"n": n, "to": list(approval.approvers)}),),
                tuple(effects))


def on_timeout(gate: Gate, now: datetime) -> Step:
    """Nobody decided in time (whether or not the request could be posted): the policy's
    fallback pages or holds."""
    if gate.phase is not Phase.AWAITING_APPROVAL or gate.decided is not None:
        return Step(gate)
    timings = timing(gate)
    fallback = timings.on_timeout
    details = {"after_minutes": timings.timeout_minutes, "fallback": fallback.value}
    if fallback is OnTimeout.PAGE:
        decided = DecisionState(verdict=Verdict.TIMED_OUT, by="", at=now, pages=True)
        return Step(gate.model_copy(update={
                        "phase": Phase.PAGING, "decided": decided,
                        "problems": gate.without_problems(
                            EffectKind.REQUEST_APPROVAL, APPROVAL_CHANNEL, APPROVERS)}),
                    (Record("approval_timed_out", DAEMON, details, once_key="decision"),),
                    (Effect(EffectKind.UPDATE_APPROVAL, "decided"),
                     Effect(EffectKind.PAGE, "page")))
    if gate.approval is None:
        # Holding with no message to hold on: the reminders (direct) go on by themselves.
        return Step(gate, (Record("approval_timed_out", DAEMON, details, once_key="timeout"),))
    approval = gate.approval.model_copy(update={"holding": True})
    n = approval.reminders + 1
    text = "No decision yet: the policy holds (no page). Reminders continue until someone decides."
    return Step(gate.model_copy(update={"approval": approval}),
                (Record("approval_timed_out", DAEMON, details, once_key="timeout"),),
                (Effect(EffectKind.THREAD_NOTE, "holding", ThreadNote(text=message(text))),
                 Effect(EffectKind.REMIND, str(n), Remind(n=n, since=now.timestamp()),
                        now + timedelta(minutes=timings.remind_after_minutes))))


def on_timer_early(gate: Gate, payload: Remind | Timeout, *, measured_s: float,
                   needed_s: float, wall_s: float, now: datetime) -> Step:
    """A reminder or the timeout came due by the wall clock before the time it stands for
    really passed: the wall clock was stepped forward (`wall_s`, what the wall clock says,
    exceeds `measured_s`, what the process measured), or the policy in force now asks for
    longer. It is set again for the rest of the time, on the record; nothing else happens."""
    rest_s = needed_s - measured_s
    due = now + timedelta(seconds=rest_s)
    reason = "clock_stepped" if wall_s >= needed_s else "policy_asks_longer"
    if isinstance(payload, Remind):
        kind, label = EffectKind.REMIND, f"remind-{payload.n}"
    else:
        kind, label = EffectKind.TIMEOUT, "timeout"
    return Step(gate, (Record("timer_deferred", DAEMON, {
        "timer": label, "reason": reason, "needed_s": round(needed_s, 3),
        "measured_s": round(measured_s, 3), "wall_clock_s": round(wall_s, 3),
        "due": due.isoformat()}),),
        (Effect(kind, f"{label}-at-{int(due.timestamp())}", payload, due),))


def on_policy_changed(gate: Gate, decision: Decision, now: datetime, *, rfh_due: datetime
                      ) -> Step:
    """The policy in force is not the one that judged this open escalation: judge it again.

    The one-way door still holds (an emergency whose SMOC was asked is never downgraded), and
    a pending approval takes the new timings and fallback from now on. The change is on the
    timeline with both policies' fingerprints and the outcome under the new one.
    """
    before = gate.decision.policy if gate.decision else ""
    if (gate.phase not in OPEN or gate.resolved_at is not None or gate.decided is not None
            or before == decision.policy):
        return Step(gate)
    previous = gate.decision.outcome.value if gate.decision else None
    step = _classify(gate, decision, rfh_due, now)
    judged = step.gate.decision or decision
    timings = judged.approval
    record = Record("policy_changed", POLICY, {
        "from": before, "to": decision.policy, "previous": previous,
        "outcome": judged.outcome.value, "rule": judged.rule, "reason": judged.reason,
        **({"on_timeout": timings.on_timeout.value, "timeout_minutes": timings.timeout_minutes}
           if timings is not None and judged.outcome is Outcome.EMERGENCY else {})})
    return Step(step.gate, (record, *step.records), step.effects)


def on_paged(gate: Gate, incident_id: str, url: str, now: datetime, *, shadow: bool,
             retro_on_page: bool = False, page_round: int | None = None) -> Step:
    """Tier 2 was paged. Recorded whatever happened meanwhile: if the source resolved while the
    page was in flight, the page still went out, so the emergency still earns its retro.

    `page_round` is the round the page was sent for (default: the current one). If the incident
    was resolved and reopened meanwhile, that page belongs to the earlier round: it is kept
    there and earns the retro, and the new round still waits for its own decision.
    """
    page = PageState(incident_id=incident_id, url=url, at=now, shadow=shadow)
    event = "would_have_paged" if shadow else "paged"
    if page_round is not None and page_round != gate.round:
        earlier = tuple(r.model_copy(update={"page": page})
                        if r.round == page_round and r.page is None else r
                        for r in gate.earlier)
        if earlier == gate.earlier:
            return Step(gate)
        # No once key: "paged" is the current round's; the earlier round's page is guarded by
        # its own slot in `earlier` (set once, under the row's version check).
        return Step(gate.model_copy(update={"earlier": earlier}),
                    (Record(event, DAEMON, {"incident_id": incident_id, "url": url,
                                            "round": page_round}),),
                    (Effect(EffectKind.RETRO, f"retro-round-{page_round}", Retro(
                        note=f"Tier 2 was paged at {_human(now)} for round {page_round}: "
                             f"{url or incident_id}."), round=page_round),))
    if gate.page is not None:
        return Step(gate)
    text = ("SHADOW mode: Tier 2 would have been paged now (nobody was paged)." if shadow
            else f"Paged Tier 2: {url or incident_id}")
    effects = [Effect(EffectKind.THREAD_NOTE, "paged", ThreadNote(text=message(text)))]
    closed = retro_on_page or gate.resolved_at is not None
    phase = Phase.CLOSED if closed else Phase.PAGED
    problems = gate.without_problems(EffectKind.PAGE, EffectKind.REQUEST_APPROVAL,
                                     APPROVAL_CHANNEL)
    gate = gate.model_copy(update={"phase": phase, "page": page, "problems": problems})
    if closed:
        effects.append(_earned(gate))
    return Step(gate, (Record(event, DAEMON, {"incident_id": incident_id, "url": url},
                              once_key="paged"),),
                tuple(effects))


def vendor_event_key(event_id: str) -> str:
    """The timeline `once_key` of an entry recording the vendor's event `event_id`."""
    return f"vendor-event:{event_id}"


def on_page_event(gate: Gate, kind: str, who: str, now: datetime, event_id: str, *,
                  source: Source, page_round: int | None = None,
                  responders: tuple[dict[str, str], ...] = (), incident_id: str = "") -> Step:
    """What happened to the Tier 2 page (assigned, acknowledged, escalated, reassigned,
    resolved).

    The entry is unique per vendor event id: PagerDuty delivers at least once, and one event
    delivered twice is still one thing that happened. `page_round` is the round whose page the
    event is about (default: the current one); an earlier round's page is only noted on the
    timeline: its thread and state are history. `responders` (`{id, name, time_zone}` each)
    are the people the page reached by this event, kept for the load figures; "assigned"
    (the page's own trigger) is only recorded, the thread heard of the page already.
    `incident_id`, PagerDuty's id of the page's incident, is kept too: notes and status
    updates on it name only that id (an Events API trigger never learns it otherwise)."""
    event = "acknowledged" if kind == "acknowledged" else f"page_{kind}"
    extra: dict[str, Any] = {"responders": list(responders)} if responders else {}
    if incident_id:
        extra["incident_id"] = incident_id
    if page_round is not None and page_round != gate.round:
        return Step(gate, (Record(event, who or "pagerduty",
                                  {"event_id": event_id, "round": page_round, **extra},
                                  once_key=vendor_event_key(event_id)),))
    if gate.page is None and kind != "assigned":
        return Step(gate)
    if kind == "assigned":
        return Step(gate, (Record(event, who or "pagerduty", {"event_id": event_id, **extra},
                                  once_key=vendor_event_key(event_id)),))
    updates: dict[str, Any] = {}
    if kind == "acknowledged" and gate.acknowledged_at is None:
        updates.update(acknowledged_at=now, acknowledged_by=who)
        if gate.phase is Phase.PAGED:
            updates["phase"] = Phase.ACKNOWLEDGED
    by = f" by {who}" if who else ""
    step = Step(gate.model_copy(update=updates),
                (Record(event, who or "pagerduty", {"event_id": event_id, **extra},
                        once_key=vendor_event_key(event_id)),),
                (Effect(EffectKind.THREAD_NOTE, f"page-{event_id}", ThreadNote(
                    text=message(f"Tier 2 page {kind.replace('_', ' ')}{by}."))),))
    if kind == "resolved" and source is Source.CHAT and step.gate.resolved_at is None:
        # A chat-declared escalation has no incident of its own: the page's end is its end.
        step = step.then(_resolved(step.gate, "pagerduty", now))
    return step


def on_retro_opened(gate: Gate, url: str, *, shadow: bool, page_round: int = 1) -> Step:
    """The retro issue exists; its body tells the timeline up to now, so it covers the page of
    `page_round` (the round whose retro job opened it) and of every round before it."""
    event = "would_have_opened_retro" if shadow else "retro_opened"
    text = ("SHADOW mode: a retro issue would have been opened now." if shadow
            else f"Retro issue: {url}")
    return Step(gate.model_copy(update={"retro_url": url,
                                        "retro_round": max(gate.retro_round, page_round),
                                        "problems": gate.without_problems(EffectKind.RETRO)}),
                (Record(event, DAEMON, {"url": url}, once_key="retro"),),
                (Effect(EffectKind.THREAD_NOTE, "retro", ThreadNote(text=message(text))),))


def on_retro_noted(gate: Gate, page_round: int, note: str, *, shadow: bool) -> Step:
    """A reopened emergency was paged again: its existing retro issue got a note about it
    instead of a second issue (one per round, by the once key)."""
    if gate.retro_round >= page_round:
        return Step(gate)
    event = "would_have_noted_retro" if shadow else "retro_noted"
    text = ("SHADOW mode: the retro issue would have been told of this round." if shadow
            else f"Retro issue updated: {gate.retro_url}")
    return Step(gate.model_copy(update={"retro_round": page_round,
                                        "problems": gate.without_problems(EffectKind.RETRO)}),
                (Record(event, DAEMON, {"url": gate.retro_url, "round": page_round,
                                        "note": note}, once_key="retro_noted"),),
                (Effect(EffectKind.THREAD_NOTE, "retro", ThreadNote(text=message(text))),))


def on_noted(gate: Gate, event: str, details: dict[str, Any], once_key: str | None = None
             ) -> Step:
    """Something happened that changes no state but belongs in the audit trail."""
    return Step(gate, (Record(event, DAEMON, details, once_key),))


_HOW_TO_ACT: dict[str, tuple[str, str]] = {
    EffectKind.PAGE: ("Tier 2 has NOT been paged. Page Tier 2 by hand in PagerDuty now if this "
                      "cannot wait.", "runbooks/page-did-not-go-out.md"),
    EffectKind.REQUEST_APPROVAL: ("The SMOC has not been asked. Decide by hand: page Tier 2 in "
                                  "PagerDuty if this emergency cannot wait.",
                                  "runbooks/job-dead-lettered.md"),
    EffectKind.RETRO: ("Open the retro issue by hand, or retry the job once the tracker is "
                       "fixed.", "runbooks/job-dead-lettered.md"),
    EffectKind.RFH_ISSUE: ("Open the request-for-help issue by hand, or retry the job once the "
                           "tracker is fixed.", "runbooks/request-for-help.md"),
}
_WHAT: dict[str, str] = {
    EffectKind.PAGE: "The Tier 2 page",
    EffectKind.REQUEST_APPROVAL: "The approval request",
    EffectKind.RETRO: "The retro issue",
    EffectKind.RFH_ISSUE: "The request-for-help issue",
    EffectKind.RFH_NOTICE: "The request-for-help notice",
    EffectKind.THREAD_NOTE: "A status update in the approval thread",
    EffectKind.UPDATE_APPROVAL: "An update of the approval message",
    EffectKind.REMIND: "A reminder",
    EffectKind.TIMEOUT: "The approval timeout",
    EffectKind.TELL_USER: "A reply to a click",
    EffectKind.RECHECK: "A policy re-check",
    EffectKind.MERGE_INTO: "Handing the page to the incident this one was merged into",
    EffectKind.RETRO_NOTE: "A note on the retro issue",
    EffectKind.RFH_NOTE: "A note on the request-for-help issue",
}


def failure_runbook(effect: str) -> str:
    """The runbook (path under runbooks/) that says what to do when `effect` fails."""
    return _HOW_TO_ACT.get(effect, ("", "runbooks/job-dead-lettered.md"))[1]


def on_effect_failed(gate: Gate, effect: str, reason: str, now: datetime, *, final: bool,
                     runbook_url: str = "", lost_text: Message | None = None) -> Step:
    """An effect of this escalation failed for good (`final`, dead-lettered) or keeps failing
    on the emergency path (it is still being retried). Nobody may be left believing it worked:
    the escalation needs attention, the approval message stops promising what did not happen,
    and the approvers are told in words where they look (the approval thread, or directly when
    the thread itself is what fails), with the vendor's reason and what to do by hand.

    `lost_text`: the text of a chat note that could not be posted, passed on to the people.
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
    text = message(f":rotating_light: {what} {state}: {reason}".rstrip(". ") + ".")
    if how:
        text += f" {how}"
    if lost_text:
        text += message("\nThe update was: ", lost_text)
    if runbook_url:
        text += f"\nRunbook: {runbook_url}"
    records = (Record("needs_attention", DAEMON,
                      {"effect": effect, "reason": reason, "final": final}),)
    name = f"failed-{effect}" if final else f"failing-{effect}"
    effects: list[Effect] = []
    if effect == EffectKind.DIRECT_NOTE:
        return Step(gate, records)  # telling people failed: the dashboard and the log remain
    if gate.approval is not None:
        effects.append(Effect(EffectKind.UPDATE_APPROVAL, name))  # the message shows the problem
    if gate.approval is not None and effect not in (EffectKind.THREAD_NOTE,
                                                    EffectKind.UPDATE_APPROVAL):
        asked = mentions(gate.approval.approvers)
        effects.append(Effect(EffectKind.THREAD_NOTE, name, ThreadNote(
            text=message(text, "\n", asked) if asked else text)))
    else:
        to = Audience.APPROVERS if gate.emergency else Audience.CHANNEL
        effects.append(Effect(EffectKind.DIRECT_NOTE, name, DirectNote(text=text, to=to)))
    return Step(gate, records, tuple(effects))


def on_effect_recovered(gate: Gate, effect: str, now: datetime) -> Step:
    """An effect that had failed (and people were told) has now succeeded, e.g. after an
    outage or an operator's `jobs retry`: it no longer needs attention, and the approval
    message drops the alarm."""
    if not any(p.effect == effect for p in gate.problems):
        return Step(gate)
    gate = gate.model_copy(update={"problems": gate.without_problems(effect)})
    effects = (Effect(EffectKind.UPDATE_APPROVAL, f"recovered-{effect}-{int(now.timestamp())}"),
               ) if gate.approval is not None else ()
    return Step(gate, (Record("attention_cleared", DAEMON, {"effect": effect}),), effects)


def on_decline_form_failed(gate: Gate, user_id: str, reason: str, click_id: str) -> Step:
    """The Decline form could not open (the chat's trigger id lives 3 seconds): nothing was
    decided; the clicker is told to press again, and the attempt is on the record."""
    text = message("The decline form could not be opened in time (the chat allows 3 "
                   "seconds). Press Decline again.")
    return Step(gate, (Record("decline_form_failed", user_id, {"error": reason}),),
                (Effect(EffectKind.TELL_USER, f"form-{click_id}",
                        TellUser(user=user_id, text=text)),))


NOBODY_CAN_APPROVE = ("Nobody can approve this request: no SMOC could be resolved and no backup "
                      "approver is configured. Page Tier 2 by hand in PagerDuty if it cannot "
                      "wait; put someone on call on the SMOC schedule or set "
                      "approval.backup_user_ids.")


def on_nobody_can_approve(gate: Gate, why: str, subject: str, now: datetime) -> Step:
    """The approval request was posted with nobody who may decide it: no SMOC could be
    resolved (an on-call gap, a failed lookup) and there is no backup approver. Nobody can
    click, so nothing may look as if someone will: the escalation needs attention at once (a
    final problem of the request, gone once someone decides or the timeout acts), the message
    shows it, and the approval channel is told what happens without a decision.

    `why`: why there is no SMOC, in words; `subject`: the escalation as people know it (our id
    and the source's reference).
    """
    timings = timing(gate)
    fallback = ("pages Tier 2" if timings.on_timeout is OnTimeout.PAGE
                else "holds and nobody is paged")
    problem = Problem(effect=APPROVERS, reason=NOBODY_CAN_APPROVE, at=now)
    text = (f":rotating_light: Nobody can approve escalation {subject}. {why} Without a "
            f"decision the policy {fallback} after {timings.timeout_minutes:g} minutes "
            f"(on_timeout: {timings.on_timeout.value}). {NOBODY_CAN_APPROVE.partition('. ')[2]}")
    return Step(gate.model_copy(update={
                    "problems": (*gate.without_problems(APPROVERS), problem)}),
                (Record("needs_attention", DAEMON, {"effect": APPROVERS,
                                                    "reason": NOBODY_CAN_APPROVE,
                                                    "final": True}),),
                (Effect(EffectKind.UPDATE_APPROVAL, "nobody-can-approve"),
                 Effect(EffectKind.DIRECT_NOTE, "nobody-can-approve",
                        DirectNote(text=message(text), to=Audience.CHANNEL))))
