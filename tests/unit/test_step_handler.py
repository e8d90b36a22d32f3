"""The one job-handler shape (`jobs.handler.step_handler`) on a real store: load → guard →
step → record, and after a vendor call the step computed on the escalation read again."""

from __future__ import annotations

from datetime import datetime

from daemon.clock import ManualClock, to_datetime
from daemon.domain import transitions as t
from daemon.domain.gate import Gate
from daemon.domain.models import Escalation, Source, Status
from daemon.jobs.deps import Deps
from daemon.jobs.escalations import changes_for
from daemon.jobs.handler import After, step_handler
from daemon.metrics import Metrics
from daemon.store import Changes, Job, JobState, Store
from daemon.store.mapping import Loaded
from daemon.wiring import build_parts
from tests.harness import base_settings

ESC_ID = "esc-handler1"


def deps_on(store: Store, clock: ManualClock) -> Deps:
    return build_parts(base_settings(), store, clock, Metrics()).deps


async def stored(store: Store, clock: ManualClock) -> None:
    now = to_datetime(clock.now())
    escalation = Escalation(source=Source.INCIDENT_IO, external_id="01HANDLER",
                            reference="INC-1", title="DB down", severity="SEV3",
                            status=Status.OPEN, created_at=now, updated_at=now)
    await store.apply(changes_for(ESC_ID, escalation, t.Step(Gate()), now, previous=None))


def job_for(escalation_id: str, clock: ManualClock) -> Job:
    return Job(id=1, kind="test", key=f"test:{escalation_id}", payload={},
               escalation_id=escalation_id, state=JobState.RUNNING, run_at=clock.now(),
               attempts=1, last_error="", lease_owner="me", lease_until=None,
               created_at=clock.now(), updated_at=clock.now())


async def noted(_job: Job, current: Loaded, _now: datetime) -> t.Step:
    return t.on_noted(current.gate, "rfh_recorded", {"note": "n"}, "once")


async def test_a_step_is_recorded_over_the_escalation_it_was_taken_on(
        store: Store, clock: ManualClock) -> None:
    await stored(store, clock)
    changes = await step_handler(deps_on(store, clock), noted)(job_for(ESC_ID, clock))
    assert isinstance(changes, Changes)
    assert [(e.escalation_id, e.event, e.once_key) for e in changes.events] == [
        (ESC_ID, "rfh_recorded", "once")]
    await store.apply(changes)
    assert [e.event for e in await store.timeline(ESC_ID)] == ["rfh_recorded"]


async def test_no_escalation_a_closed_guard_or_an_empty_step_records_nothing(
        store: Store, clock: ManualClock) -> None:
    await stored(store, clock)
    deps = deps_on(store, clock)
    acted: list[str] = []

    async def act(job: Job, current: Loaded, _now: datetime) -> t.Step:
        acted.append(current.row.id)
        return t.Step(current.gate)  # no record, no effect, the same gate

    assert await step_handler(deps, act)(job_for("esc-unknown", clock)) is None
    assert await step_handler(deps, act, guard=lambda _j, _c: False)(
        job_for(ESC_ID, clock)) is None
    assert acted == []  # neither the missing escalation nor the guard let it act
    assert await step_handler(deps, act)(job_for(ESC_ID, clock)) is None
    assert acted == [ESC_ID]


async def test_after_a_vendor_call_the_step_is_taken_on_the_escalation_read_again(
        store: Store, clock: ManualClock) -> None:
    """A decision recorded between the call and its record is not overwritten: the recording
    (run again by the runner on a conflict) starts from the escalation as it is then, and the
    call itself is made once."""
    await stored(store, clock)
    deps = deps_on(store, clock)
    calls: list[int] = []
    seen: list[int] = []

    async def called(_job: Job, current: Loaded, _now: datetime) -> After:
        calls.append(current.row.version)

        def after(fresh: Loaded, _at: datetime) -> t.Step:
            seen.append(fresh.row.version)
            return t.on_noted(fresh.gate, "rfh_recorded", {"note": "after"}, "after")

        return after

    recorder = await step_handler(deps, called)(job_for(ESC_ID, clock))
    assert callable(recorder)
    current = await store.load_escalation(ESC_ID)
    assert current is not None
    clock.advance(1)  # meanwhile another job changes the escalation
    moved = current.gate.model_copy(update={"round": current.gate.round + 1})
    await store.apply(changes_for(ESC_ID, current.escalation, t.Step(moved),
                                  to_datetime(clock.now()), previous=current.row))
    changes = await recorder()
    assert changes is not None and changes.escalation is None  # only the audit trail grows
    assert calls == [current.row.version] and seen == [current.row.version + 1]
    assert [e.once_key for e in changes.events] == ["after@round-2"]
