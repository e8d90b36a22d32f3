"""No emergency ends in silence: when an effect fails for good, or an urgent one keeps failing,
the people involved are told what failed, the vendor's reason and what to do by hand.

The job runner asks `trouble_job` for a follow-up job whenever it dead-letters a job (final) or
an emergency-path job passes `jobs.max_attempts` still failing; `Attention.handle` runs it.
"""

from __future__ import annotations

from daemon.clock import to_datetime
from daemon.domain.transitions import (
    ATTENTION,
    THREAD_NOTE,
    failure_runbook,
    on_effect_failed,
)
from daemon.jobs.deps import Deps
from daemon.jobs.escalations import changes_for, loaded
from daemon.logging import get_logger
from daemon.store import Changes, Job, NewJob

log = get_logger("tier2gate.attention")


def trouble_job(job: Job, reason: str, final: bool) -> NewJob | None:
    """The job that tells people about `job`'s failure; None when that job is itself the
    telling (its failure is left to the log, the metrics and the dashboard)."""
    if job.kind == ATTENTION:
        return None
    payload: dict[str, object] = {"kind": job.kind, "error": reason, "final": final,
                                  "job_id": job.id}
    if job.kind == THREAD_NOTE:
        payload["text"] = str(job.payload.get("text", ""))
    stage = "dead" if final else "stuck"
    return NewJob(ATTENTION, f"{ATTENTION}:{job.id}:{stage}", payload, 0.0, job.escalation_id)


class Attention:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _runbook_url(self, effect: str) -> str:
        path = failure_runbook(effect)
        base = self.deps.settings.runbook_base_url
        return f"{base.rstrip('/')}/{path}" if base else path

    async def handle(self, job: Job) -> Changes | None:
        effect = str(job.payload["kind"])
        reason = str(job.payload["error"])
        final = bool(job.payload["final"])
        log.error("escalation.needs_attention", effect=effect, final=final, error=reason,
                  failed_job=job.payload.get("job_id"))
        if job.escalation_id is None:
            await self._unattached(effect, reason, int(job.payload.get("job_id", 0)))
            return None
        row = await self.deps.store.get_escalation(job.escalation_id)
        if row is None:
            return None
        current = loaded(row)
        now = to_datetime(self.deps.clock.now())
        step = on_effect_failed(current.gate, effect, reason, now, final=final,
                                runbook_url=self._runbook_url(effect),
                                lost_text=str(job.payload.get("text", "")))
        return changes_for(row.id, current.escalation, step, now, previous=row)

    async def _unattached(self, effect: str, reason: str, job_id: int) -> None:
        """A failed job with no escalation (a webhook delivery or a click that could not be
        processed): it may have been an emergency, so the approval channel hears of it."""
        channel = self.deps.settings.slack.approval_channel
        if not channel:
            return
        text = (f":rotating_light: tier2gate could not process a {effect.replace('_', ' ')} "
                f"(job {job_id}): {reason}. It may be an emergency nobody was asked about: "
                f"check the source and `tier2gate jobs --state dead`.\n"
                f"Runbook: {self._runbook_url(effect)}")
        await self.deps.need_chat().post_notice(channel, text)
