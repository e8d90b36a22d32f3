"""Asking the Support Manager on Call: the approval request in the team's approval channel
(or, when the channel refuses the bot, to each approver directly), its direct-message copies,
and every posted message kept showing the escalation's current state.

Who is asked is `jobs.approvers`'. When there is no SMOC and no backup either, the request
still goes out (the timeout fallback still applies), says plainly that nobody can approve it,
and the escalation needs attention at once. The answer is `jobs.deciding`'s, the silence
`jobs.approval_timers`'.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from daemon.domain.gate import Phase
from daemon.domain.transitions import (
    Step,
    on_approval_posted,
    on_copy_posted,
    on_nobody_can_approve,
)
from daemon.integrations.base import ApprovalRequests, ApprovalView, ChannelRefused, MessageRef
from daemon.jobs.approvers import Approvers, Deciders
from daemon.jobs.deps import Deps
from daemon.jobs.handler import After, step_handler
from daemon.jobs.shown import shown_tier2_load, tier2_load, with_evidence
from daemon.jobs.views import approval_view, escalation_subject
from daemon.logging import get_logger
from daemon.store import Job
from daemon.store.mapping import Loaded
from daemon.workers.retry import Permanent, Retry

log = get_logger("tier2gate.approval")


def request_posted(current: Loaded, deciders: Deciders, ref: MessageRef, now: datetime, *,
                   channel_setting: str, copies: tuple[tuple[str, str], ...] = (),
                   channel_refused: str = "", missing: tuple[str, ...] = ()) -> Step:
    """The approval request exists; with nobody who may decide it, the operator is told.
    `channel_setting`: the setting that names the team's approval channel, for the notice."""
    step = on_approval_posted(current.gate, ref.channel, ref.ts, deciders.ids,
                              deciders.note, now, copies=copies,
                              channel_refused=channel_refused, missing=missing,
                              smoc_resolved=deciders.smoc_resolved, team=deciders.team,
                              channel_setting=channel_setting)
    if deciders.ids or not step.records:
        return step
    log.error("approval.nobody_can_approve", escalation_id=current.row.id,
              why=deciders.note, channel=ref.channel)
    return step.then(on_nobody_can_approve(
        step.gate, deciders.note, escalation_subject(current), now))


class Asking:
    """Posting the approval request (in the channel, else to each approver directly), its
    direct-message copies, and showing its current state in every posted message."""

    def __init__(self, deps: Deps, approvers: Approvers) -> None:
        self.deps = deps
        self.approvers = approvers
        self.request = step_handler(deps, self._request, guard=_to_ask)
        self.copy = step_handler(deps, self._copy, guard=_undecided)

    async def _request(self, job: Job, current: Loaded, now: datetime) -> After:
        route = self.approvers.routing_of(current)
        channel = route.approval_channel
        if not channel:
            raise Permanent(f"{route.channel_setting} is not set")
        chat = self.deps.need_requests()
        deciders = await self.approvers.deciders(route)
        policy = self.deps.policy.current()
        view = approval_view(current, self.deps.settings, now, deciders.ids, deciders.note,
                             smoc_resolved=deciders.smoc_resolved, policy=policy,
                             tier2_load=await tier2_load(self.deps, now))
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

        def posted(fresh: Loaded, at: datetime) -> Step:
            setting = self.approvers.routing(deciders.team).channel_setting
            step = request_posted(fresh, deciders, ref, at, channel_setting=setting,
                                  copies=copies, channel_refused=refused, missing=missing)
            return dataclasses.replace(step, records=tuple(
                with_evidence(record, view) for record in step.records))

        return posted

    async def _post_directly(self, chat: ApprovalRequests, channel: str, approvers: tuple[str, ...],
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

    async def _copy(self, job: Job, current: Loaded, now: datetime) -> After:
        """A direct-message copy of the approval request for one approver, after a temporary
        failure when the channel refused the bot."""
        user_id = str(job.payload["user"])
        view = approval_view(current, self.deps.settings, now,
                             policy=self.deps.policy.current(),
                             tier2_load=await shown_tier2_load(self.deps, current))
        ref = await self.deps.need_requests().post_approval(user_id, view)
        return lambda fresh, _at: on_copy_posted(fresh.gate, user_id, ref.channel, ref.ts)

    async def _posted_before(self, chat: ApprovalRequests, channel: str, escalation_id: str
                             ) -> MessageRef | None:
        try:
            return await chat.find_approval(channel, escalation_id)
        except Permanent as exc:  # e.g. no channels:history scope: post again, maybe twice
            log.warning("approval.lookup_failed", error=str(exc))
            return None

    async def update(self, job: Job) -> None:
        current = await self.deps.store.load_escalation(str(job.escalation_id))
        if current is None or current.gate.approval is None:
            return
        approval = current.gate.approval
        # The load the SMOC was shown when asked: this escalation's own page is no news.
        view = approval_view(current, self.deps.settings, self.deps.now(),
                             policy=self.deps.policy.current(),
                             tier2_load=await shown_tier2_load(self.deps, current))
        chat = self.deps.need_requests()
        for channel, ts in ((approval.channel, approval.ts), *approval.copies):
            await chat.update_approval(MessageRef(channel, ts), view)


def _to_ask(_job: Job, current: Loaded) -> bool:
    """An emergency not asked about yet. Still asked when the approval timeout paged
    meanwhile (the chat was down): the message then shows that outcome at once and carries
    the thread of the page."""
    gate = current.gate
    return gate.approval is None and gate.emergency and \
        gate.phase not in (Phase.CLOSED, Phase.DECLINED)


def _undecided(_job: Job, current: Loaded) -> bool:
    """Asked and not decided: once decided, a copy would only be noise."""
    gate = current.gate
    return gate.approval is not None and gate.phase is Phase.AWAITING_APPROVAL \
        and not gate.decided
