"""The approval request's timers: the reminders and the timeout (with its policy fallback)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from daemon.domain.gate import Gate, Phase
from daemon.domain.policy import Approval
from daemon.domain.transitions import Step, on_remind, on_timeout, on_timer_early, timing
from daemon.jobs.deps import Deps
from daemon.jobs.handler import Act, step_handler, this_round
from daemon.jobs.policy import judge_again
from daemon.logging import get_logger
from daemon.store import Job
from daemon.store.mapping import Loaded

_AGREE_SLACK_S = 1.0
"""How far short of its time a timer may measure and still act: rounding between a timer's
wall-clock due time and the process's own count, not a step (steps are seconds and more)."""

log = get_logger("tier2gate.approval")


class ApprovalTimers:
    """The `approval_remind` and `approval_timeout` jobs (`remind`, `timeout`): a timer of a
    round before the current one does nothing."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.remind = step_handler(deps, self._timer(
            lambda job, gate, now: on_remind(gate, int(job.payload.get("n", 1)), now),
            lambda timings: timings.remind_after_minutes), guard=this_round)
        self.timeout = step_handler(deps, self._timer(
            lambda _job, gate, now: on_timeout(gate, now),
            lambda timings: timings.timeout_minutes), guard=this_round)

    def _timer(self, act: Callable[[Job, Gate, datetime], Step],
               minutes: Callable[[Approval], float]) -> Act:
        """A reminder or the timeout: only under the policy in force, and only once the time
        it stands for has passed by the process's own measure.

        The escalation is first judged again if the policy changed since it was judged (the
        fallback and timings are the new policy's). Then the time since the timer was set
        (`since` in its payload) is measured with the clock watch, which discounts wall-clock
        steps seen while running: a timer made due by a step, or by a policy that now asks
        for longer, is set again for the rest of its time instead of acting.
        """

        async def timer(job: Job, current: Loaded, now: datetime) -> Step | None:
            step = judge_again(self.deps.policy.current(), current, now, self.deps.calendar())
            gate = step.gate
            early = self._early(job, gate, 60 * minutes(timing(gate)), now)
            step = step.then(early if early is not None else act(job, gate, now))
            return step if step.records else None

        return timer

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
