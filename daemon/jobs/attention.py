"""No emergency ends in silence: when an effect fails for good, or an urgent one keeps failing,
the people involved are told what failed, the vendor's reason and what to do by hand.

The job runner asks `trouble_job` for a follow-up job whenever it dead-letters a job (final) or
an emergency-path job passes `jobs.max_attempts` still failing; `Attention.handle` runs it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from daemon.domain.effects import Attention as Failed
from daemon.domain.effects import EffectKind, payload_json
from daemon.domain.messages import Message, message
from daemon.domain.transitions import (
    Step,
    failure_runbook,
    on_effect_failed,
    on_effect_recovered,
)
from daemon.jobs.deps import Deps
from daemon.jobs.handler import step_handler
from daemon.jobs.notes import tell_each
from daemon.logging import get_logger
from daemon.store import Changes, Job, NewJob
from daemon.store.mapping import Loaded
from daemon.store.payloads import effect_payload, lost_text
from daemon.workers.retry import Permanent
from daemon.workers.runner import Recorder

log = get_logger("tier2gate.attention")


def trouble_job(job: Job, reason: str, final: bool) -> NewJob | None:
    """The job that tells people about `job`'s failure; None when that job is itself the
    telling (its failure is left to the log, the metrics and the dashboard)."""
    if job.kind == EffectKind.ATTENTION:
        return None
    failed = Failed(kind=job.kind, error=reason, final=final, job_id=job.id,
                    text=lost_text(job))
    stage = "dead" if final else "stuck"
    return NewJob(EffectKind.ATTENTION, f"{EffectKind.ATTENTION}:{job.id}:{stage}",
                  payload_json(failed), 0.0, job.escalation_id)


def recovered_job(job: Job) -> NewJob | None:
    """The job that clears what `trouble_job` raised, once `job` succeeded after failing."""
    if job.kind == EffectKind.ATTENTION or job.escalation_id is None:
        return None
    return NewJob(EffectKind.ATTENTION, f"{EffectKind.ATTENTION}:{job.id}:recovered-{job.attempts}",
                  payload_json(Failed(kind=job.kind, recovered=True)), 0.0, job.escalation_id)


class Attention:
    def __init__(self, deps: Deps, approvers: Callable[[], Awaitable[tuple[str, ...]]]
                 ) -> None:
        """`approvers`: who may decide now (SMOC first), the people told directly when the
        approval channel cannot be used."""
        self.deps = deps
        self._approvers = approvers
        self._failed = step_handler(deps, self._failed_step)
        self._recovered = step_handler(deps, self._recovered_step)

    def _runbook_url(self, effect: str) -> str:
        path = failure_runbook(effect)
        base = self.deps.settings.runbook_base_url
        return f"{base.rstrip('/')}/{path}" if base else path

    async def handle(self, job: Job) -> Changes | Recorder | None:
        failed = effect_payload(job, Failed)
        if failed.recovered:
            return await self._recovered(job)
        effect, reason, final = failed.kind, failed.error, failed.final
        log.error("escalation.needs_attention", effect=effect, final=final, error=reason,
                  failed_job=failed.job_id)
        if job.escalation_id is None:
            await self._unattached(effect, reason, failed.job_id, failed.text)
            return None
        return await self._failed(job)

    async def _failed_step(self, job: Job, current: Loaded, now: datetime) -> Step:
        failed = effect_payload(job, Failed)
        return on_effect_failed(current.gate, failed.kind, failed.error, now,
                                final=failed.final, runbook_url=self._runbook_url(failed.kind),
                                lost_text=failed.text)

    async def _recovered_step(self, job: Job, current: Loaded, now: datetime) -> Step | None:
        effect = effect_payload(job, Failed).kind
        step = on_effect_recovered(current.gate, effect, now)
        if not step.records:
            return None
        log.info("escalation.attention_cleared", effect=effect)
        return step

    async def _unattached(self, effect: str, reason: str, job_id: int,
                          lost_text: Message | None) -> None:
        """A failed job with no escalation (a webhook delivery or a click that could not be
        processed): it may have been an emergency, so the approval channel hears of it."""
        text = message(f":rotating_light: tier2gate could not process a "
                       f"{effect.replace('_', ' ')} (job {job_id}): {reason}. It may be an "
                       "emergency nobody was asked about: check the source and "
                       f"`tier2gate jobs --state dead`.\nRunbook: {self._runbook_url(effect)}")
        if lost_text:
            text += message("\nThe notice was: ", lost_text)
        chat = self.deps.need_notices()
        channel = self.deps.settings.slack.approval_channel
        if channel:
            try:
                await chat.post_notice(channel, text)
                return
            except Permanent as exc:  # e.g. the channel refuses the bot: tell people directly
                log.error("attention.channel_refused", error=str(exc))
        approvers = await self._approvers()
        failures = await tell_each(chat, approvers, text)
        for user_id, error in failures:
            log.error("attention.direct_message_failed", user=user_id, error=error)
        if len(failures) == len(approvers):
            raise Permanent("nobody could be told: no usable approval channel and no approver "
                            "reachable by direct message")
