"""A new policy in force applies to what is pending: open escalations are judged again.

The daemon's watch loop notices the change (`watch.Watch`) and enqueues one `policy_changed`
job; that job fans out one `reevaluate` job per open escalation, so each is judged and recorded
on its own (one escalation's conflict or failure never holds up the others). An escalation
already judged under the policy in force is left alone, so two replicas announcing the same
change, or a retried fan-out, re-judge nothing twice.
"""

from __future__ import annotations

from datetime import datetime

from daemon.domain.customer_events import EventCalendar
from daemon.domain.policy import Policy, evaluate
from daemon.domain.transitions import OPEN, RECHECK, Step, on_policy_changed
from daemon.jobs.deps import Deps
from daemon.jobs.escalations import job_key
from daemon.jobs.handler import step_handler
from daemon.logging import get_logger
from daemon.store import Changes, Job, NewJob
from daemon.store.mapping import Loaded

POLICY_CHANGED = "policy_changed"
REEVALUATE = "reevaluate"
EVENTS_CHANGED = "events_changed"

log = get_logger("tier2gate.policy")


def announcement(fingerprint: str, now: float) -> NewJob:
    """The job that spreads a policy change; keyed by the moment it was seen so that a policy
    changed back to an earlier version is announced again."""
    return NewJob(POLICY_CHANGED, f"{POLICY_CHANGED}:{fingerprint}:{int(now * 1000)}",
                  {"fingerprint": fingerprint})


def events_announcement(fingerprint: str, now: float) -> NewJob:
    """The job that re-checks the open escalations after the customer-events calendar
    changed (an event added, moved or removed)."""
    return NewJob(EVENTS_CHANGED, f"{EVENTS_CHANGED}:{fingerprint}:{int(now * 1000)}",
                  {"fingerprint": fingerprint})


def judge_again(policy: Policy, current: Loaded, now: datetime,
                events: EventCalendar | None = None) -> Step:
    """`current` under `policy`: a `policy_changed` step when the policy that judged it is not
    this one, else nothing. Used by the fan-out and before a reminder or timeout acts, so a
    fallback never acts on a policy no longer in force."""
    return on_policy_changed(current.gate, evaluate(policy, current.escalation, now, events), now,
                             rfh_due=policy.business_hours.next_business_start(now))


class PolicyJobs:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.reevaluate = step_handler(deps, self._reevaluate)

    async def changed(self, job: Job) -> Changes:
        """Fan out: one re-evaluation per open escalation."""
        rows = await self.deps.store.escalations_in([phase.value for phase in OPEN])
        name = f"{job.payload['fingerprint']}-{job.id}"
        log.info("policy.reevaluating", fingerprint=job.payload["fingerprint"], open=len(rows))
        return Changes(jobs=tuple(
            NewJob(REEVALUATE, job_key(REEVALUATE, row.id, name), {}, 0.0, row.id)
            for row in rows))

    async def events_changed(self, job: Job) -> Changes:
        """Fan out: a `recheck` per open escalation, judged with the new calendar (a rule on
        `customer_event_active` may decide otherwise now)."""
        rows = await self.deps.store.escalations_in([phase.value for phase in OPEN])
        log.info("customer_events.rechecking", fingerprint=job.payload["fingerprint"],
                 open=len(rows))
        return Changes(jobs=tuple(
            NewJob(RECHECK, job_key(RECHECK, row.id, f"events-{job.id}"), {}, 0.0, row.id)
            for row in rows))

    async def _reevaluate(self, _job: Job, current: Loaded, now: datetime) -> Step | None:
        step = judge_again(self.deps.policy.current(), current, now, self.deps.calendar())
        return step if step.records else None
