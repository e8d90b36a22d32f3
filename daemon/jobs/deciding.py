"""Acting on the SMOC's answer: an Approve or Decline click, the decline reason's form, and a
click that does not belong to the escalation it names (see the README: a click decides only
the escalation whose request it was made on, crash recovery aside)."""

from __future__ import annotations

from daemon.domain.gate import Phase, Verdict
from daemon.domain.transitions import (
    Step,
    on_click,
    on_decline_form_failed,
    on_foreign_click,
)
from daemon.integrations.base import ApprovalAnswer, MessageRef
from daemon.jobs.approval import request_posted
from daemon.jobs.approvers import Approvers
from daemon.jobs.deps import Deps
from daemon.jobs.ee import EEJobs
from daemon.jobs.escalations import changes_for
from daemon.jobs.intake import Intake
from daemon.logging import get_logger
from daemon.sources.slack import (
    ApprovalClick,
    DeclineReasonSubmitted,
    EEOfferClick,
    EscalationFormSubmitted,
    parse_interaction,
)
from daemon.store import Changes, DeliveryState, Job
from daemon.store.mapping import Loaded
from daemon.workers.retry import Permanent, Retry

log = get_logger("tier2gate.approval")


class Deciding:
    """Slack interactions: approval clicks and decline reasons decided here, the `/tier2`
    form's submission handed to the intake, EE clicks to the EE jobs."""

    def __init__(self, deps: Deps, approvers: Approvers, intake: Intake, ee: EEJobs) -> None:
        self.deps = deps
        self.approvers = approvers
        self.intake = intake
        self.ee = ee

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
        return await self.answer(_answer_of(action), delivery.id)

    async def answered(self, job: Job) -> Changes | None:
        """An `ApprovalAnswer` a chat stored as a delivery of its own (`answers.ANSWER`)."""
        delivery = await self.deps.store.get_delivery(int(job.payload["delivery"]))
        if delivery is None:
            raise Permanent("answer delivery is not in the store")
        try:
            answer = ApprovalAnswer.from_body(delivery.body)
        except ValueError as exc:
            return Changes(delivery_done=(delivery.id, DeliveryState.IGNORED, str(exc)))
        return await self.answer(answer, delivery.id)

    async def answer(self, answer: ApprovalAnswer, delivery_id: int) -> Changes:
        """Decide on a person's answer to an approval request, whichever chat it came from:
        the one door for buttons and the decline-reason form. `delivery_id` is the stored
        delivery that carried it, marked done with the decision."""
        current = await self.deps.store.load_escalation(answer.escalation_id)
        if current is None:
            return Changes(delivery_done=(delivery_id, DeliveryState.IGNORED,
                                          f"unknown escalation {answer.escalation_id}"))
        now = self.deps.now()
        done = (delivery_id, DeliveryState.PROCESSED, "")
        verdict = answer.verdict
        earlier = current.gate.asked_earlier(answer.channel, answer.message_ts)
        if not earlier and not await self._from_its_message(current, answer):
            log.warning("approval.click_mismatch", user=answer.user_id,
                        channel=answer.channel, ts=answer.message_ts)
            foreign = on_foreign_click(current.gate, answer.user_id, verdict,
                                       click_id=answer.answer_id, channel=answer.channel,
                                       ts=answer.message_ts)
            return changes_for(current.row.id, current.escalation, foreign, now,
                               previous=current.row, delivery=done)
        allowed = await self._allowed(current, answer.user_id)
        if answer.reason is None and verdict is Verdict.DECLINED:
            pending = current.gate.phase is Phase.AWAITING_APPROVAL and not current.gate.decided \
                and not earlier
            if allowed and pending:
                try:
                    await self.deps.need_requests().ask_decline_reason(
                        answer.trigger_id, current.row.id,
                        MessageRef(answer.channel, answer.message_ts))
                except (Retry, Permanent) as exc:
                    # Slack's trigger id lives 3 seconds: a retry later could never open the
                    # form. Nothing is decided; the clicker is asked to press again.
                    log.warning("approval.decline_form_failed", error=str(exc))
                    failed = on_decline_form_failed(current.gate, answer.user_id, str(exc),
                                                     answer.answer_id)
                    return changes_for(current.row.id, current.escalation, failed, now,
                                       previous=current.row, delivery=done)
                return Changes(delivery_done=done)
        reason = answer.reason or ""
        policy = self.deps.policy.current()
        adopted = Step(current.gate)
        if current.gate.approval is None and current.gate.phase is Phase.AWAITING_APPROVAL \
                and not earlier:
            # A click on a message we never recorded (the process died between Slack's answer
            # and our commit) proves that message exists and, past `_from_its_message`, that
            # it can only be this request: it becomes the approval message.
            deciders = await self.approvers.for_team(current.gate.team)
            adopted = request_posted(
                current, deciders, MessageRef(answer.channel, answer.message_ts), now,
                channel_setting=self.approvers.routing(deciders.team).channel_setting)
        step = adopted.then(on_click(
            adopted.gate, answer.user_id, verdict, now, allowed=allowed,
            click_id=answer.answer_id, reason=reason,
            rfh_due=policy.business_hours.next_business_start(now), earlier_round=earlier,
            declared_by=current.escalation.declared_by,
            forbid_self_approval=policy.approval.forbid_self_approval))
        return changes_for(current.row.id, current.escalation, step, now, previous=current.row,
                           delivery=done)

    async def _from_its_message(self, current: Loaded, answer: ApprovalAnswer) -> bool:
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
        channel, ts = answer.channel, answer.message_ts
        if gate.approval is not None:
            return gate.asked_on(channel, ts)
        if channel != self.approvers.routing_of(current).approval_channel and \
                not self.deps.need_requests().is_direct(channel):
            return False
        others = await self.deps.store.load_quoting(ts)
        return not any(other.gate.owns_message(channel, ts)
                       for other in others if other.row.id != current.row.id)

    async def _allowed(self, current: Loaded, user_id: str) -> bool:
        listed = current.gate.approval.approvers if current.gate.approval else ()
        if user_id in listed:
            return True
        # The on-call may have changed since.
        return user_id in (await self.approvers.for_team(current.gate.team)).ids


def _answer_of(action: ApprovalClick | DeclineReasonSubmitted) -> ApprovalAnswer:
    """A Slack button or decline-reason form, as the answer the approval jobs decide on."""
    if isinstance(action, ApprovalClick):
        return ApprovalAnswer(action.escalation_id, action.verdict, action.user_id, action.channel,
                              action.message_ts, f"{action.user_id}-{action.action_ts}",
                              trigger_id=action.trigger_id)
    return ApprovalAnswer(action.escalation_id, Verdict.DECLINED, action.user_id,
                          action.channel, action.message_ts,
                          f"{action.user_id}-form-{action.message_ts}", reason=action.reason)
