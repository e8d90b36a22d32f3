"""One shape for every job that moves an escalation: load → guard → step → record.

`step_handler(deps, act, guard=…)` is the job handler; the act says only what differs:
- the escalation is loaded (gone: nothing to do) and `guard(job, current)` says whether the
  job still applies (a stale round, a phase left behind, already done);
- `act(job, current, now)` calls the vendor it needs, if any, and returns
  - a `Step` from `domain.transitions`: recorded with the job's completion;
  - an `After`, when it called a vendor whose answer must not be asked for twice: the step
    is computed on the escalation read again when it is recorded, so a conflict with a
    concurrent decision re-runs the recording (`workers.runner.Recorder`), never the call;
  - None: nothing to record.
A step that changes nothing (no record, no effect, the same gate) writes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from daemon.domain.transitions import Step
from daemon.jobs.deps import Deps
from daemon.jobs.escalations import changes_for, job_round
from daemon.store import Changes, DeliveryState, Job
from daemon.store.mapping import Loaded
from daemon.workers.runner import Handler, Recorder

After = Callable[[Loaded, datetime], Step]
"""The step to record after a vendor call: (the escalation read again, now) -> Step."""
Act = Callable[[Job, Loaded, datetime], Awaitable[Step | After | None]]
Guard = Callable[[Job, Loaded], bool]


def _always(_job: Job, _current: Loaded) -> bool:
    return True


def this_round(job: Job, current: Loaded) -> bool:
    """The job was made for the gate's current round: an earlier round's timer or effect
    must not act on a reopened incident's new decision."""
    return job_round(job) == current.gate.round


def recorded(current: Loaded, step: Step, now: datetime,
             delivery: tuple[int, DeliveryState, str] | None = None) -> Changes | None:
    """What `step` writes over `current` (with `delivery` marked done); None when it writes
    nothing at all."""
    if not step.records and not step.effects and step.gate == current.gate:
        return Changes(delivery_done=delivery) if delivery else None
    return changes_for(current.row.id, current.escalation, step, now, previous=current.row,
                       delivery=delivery)


def step_handler(deps: Deps, act: Act, *, guard: Guard = _always) -> Handler:
    """The job handler that runs `act` on the job's escalation when `guard` lets it."""

    async def handle(job: Job) -> Changes | Recorder | None:
        current = await deps.store.load_escalation(str(job.escalation_id))
        if current is None or not guard(job, current):
            return None
        now = deps.now()
        outcome = await act(job, current, now)
        if outcome is None or isinstance(outcome, Step):
            return recorded(current, outcome, now) if outcome is not None else None
        after = outcome

        async def record() -> Changes | None:
            fresh = await deps.store.load_escalation(current.row.id)
            if fresh is None:
                return None
            at = deps.now()
            return recorded(fresh, after(fresh, at), at)

        return record

    return handle
