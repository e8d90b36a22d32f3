"""Notes for people around an approval request: a reply in its thread, a direct message to
each approver when there is no thread to reply in, and an ephemeral answer to one person."""

from __future__ import annotations

from collections.abc import Sequence

from daemon.domain.effects import Audience, DirectNote, TellUser, ThreadNote
from daemon.domain.messages import Message
from daemon.domain.teams import DEFAULT_TEAM
from daemon.integrations.base import MessageRef, Notices
from daemon.jobs.approvers import Approvers
from daemon.jobs.deps import Deps
from daemon.logging import get_logger
from daemon.store import Job
from daemon.store.payloads import effect_payload
from daemon.workers.retry import Permanent, Retry

log = get_logger("tier2gate.approval")


async def tell_each(chat: Notices, user_ids: Sequence[str], text: Message
                    ) -> list[tuple[str, str]]:
    """`text` as a direct message to each of `user_ids`: one person's permanent failure does
    not keep the others from being told. Returns (user id, error) for each person not told;
    a temporary failure (`Retry`) is raised as the chat raised it."""
    failures = []
    for user_id in user_ids:
        try:
            await chat.post_notice(user_id, text)
        except Permanent as exc:
            failures.append((user_id, str(exc)))
    return failures


class Notes:
    """`thread_note`, `direct_note` and `tell_user` jobs: text for people, nothing recorded.
    `direct_note` raises `Permanent` when nobody could be told."""

    def __init__(self, deps: Deps, approvers: Approvers) -> None:
        self.deps = deps
        self.approvers = approvers

    async def direct_note(self, job: Job) -> None:
        """A note for the approvers that cannot go in the approval thread (there is none yet,
        or the thread is what fails): a direct message to each; `to: channel` posts it in the
        approval channel instead (no approvers are involved, e.g. a request for help)."""
        note = effect_payload(job, DirectNote)
        text = note.text
        chat = self.deps.need_notices()
        current = (await self.deps.store.load_escalation(job.escalation_id)
                   if job.escalation_id else None)
        route = self.approvers.routing(current.gate.team if current else DEFAULT_TEAM)
        channel = route.approval_channel
        approvers: tuple[str, ...] = ()
        if note.to is Audience.APPROVERS:
            approvers = (current.gate.approval.approvers if current and current.gate.approval
                         else (await self.approvers.deciders(route)).ids)
        if not approvers:
            if not channel:
                raise Permanent(f"nobody to tell: no approver and no {route.channel_setting}")
            await chat.post_notice(channel, text)
            return
        failures = await tell_each(chat, approvers, text)
        if len(failures) == len(approvers):
            raise Permanent("no approver could be told: "
                            + "; ".join(error for _, error in failures))

    async def thread_note(self, job: Job) -> None:
        current = await self.deps.store.load_escalation(str(job.escalation_id))
        if current is None:
            return
        if current.gate.approval is None:
            if current.gate.emergency:
                # The request is being posted (or Slack is down): reply once it is recorded.
                raise Retry("the approval message is not recorded yet", after_s=1.0)
            return  # no approval message (an RFH): nothing to reply under
        chat = self.deps.need_requests()
        thread = MessageRef(current.gate.approval.channel, current.gate.approval.message_id)
        # An earlier attempt may have posted and died before recording it: look first.
        if job.attempts > 1:
            try:
                if await chat.find_in_thread(thread, job.key) is not None:
                    return
            except Permanent as exc:  # e.g. no channels:history scope: post, maybe twice
                log.warning("thread_note.lookup_failed", error=str(exc))
        await chat.post_in_thread(thread, effect_payload(job, ThreadNote).text, job.key)

    async def tell_user(self, job: Job) -> None:
        current = await self.deps.store.load_escalation(str(job.escalation_id))
        told = effect_payload(job, TellUser)
        # `channel`: where the person clicked, when that is not the escalation's own message.
        channel = told.channel or (
            current.gate.approval.channel if current and current.gate.approval
            else self.approvers.routing(current.gate.team if current else DEFAULT_TEAM)
            .approval_channel)
        if channel:
            await self.deps.need_notices().tell_user(channel, told.user, told.text)
