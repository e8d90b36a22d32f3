"""The store contract: every test runs on SQLite and on PostgreSQL, with the same expectations."""

from __future__ import annotations

import asyncio

import pytest

from daemon.clock import ManualClock
from daemon.domain.events import EventKind
from daemon.store import (
    Changes,
    Conflict,
    DeliveryState,
    Duplicate,
    EscalationRow,
    JobState,
    NewEvent,
    NewJob,
    Store,
)
from tests.support import START, StoreFactory


def escalation(version: int = 1, state: str = "received", esc_id: str = "esc-1") -> EscalationRow:
    return EscalationRow(
        id=esc_id, source="incident_io", external_id="01FDAG4SAP5TYPT98WGR2N7W91", state=state,
        outcome=None, data={"title": "Our database is sad"}, version=version, opened_at=START,
        created_at=START, updated_at=START,
    )


async def test_reopening_runs_no_migration_twice(make_store: StoreFactory) -> None:
    first = await make_store()
    await first.enqueue(NewJob("k", "key-1"))
    second = await make_store()
    await second.ping()
    assert await second.job_counts() == {"queued": 1}


async def test_a_delivery_is_stored_once_with_its_job(store: Store) -> None:
    job = "process_delivery"
    first = await store.record_delivery("pagerduty", "wh-1", "incident.triggered", b"{}", job)
    again = [await store.record_delivery("pagerduty", "wh-1", "incident.triggered", b"{}", job)
             for _ in range(4)]
    other_source = await store.record_delivery("incident_io", "wh-1", "x", b"{}", job)
    assert first is not None
    assert again == [None] * 4
    assert other_source is not None and other_source != first
    assert await store.count_deliveries() == 2
    assert await store.job_counts() == {"queued": 2}
    stored = await store.get_delivery(first)
    assert stored is not None
    assert (stored.body, stored.state, stored.event_type) == (
        b"{}", DeliveryState.STORED, "incident.triggered")
    claimed = await store.claim_jobs("w", 30, 10)
    assert sorted((job.kind, job.key, job.payload) for job in claimed) == sorted(
        ("process_delivery", f"delivery:{row}", {"delivery": row})
        for row in (first, other_source))


async def test_each_delivery_of_a_batch_gets_its_own_row_id(store: Store) -> None:
    # Jobs inserted beforehand put the jobs' ids ahead of the deliveries': the id answered
    # must be the delivery's row (SQLite reads it from the cursor, not from RETURNING, and
    # the trigger inserts a job in the same statement); a repeat in the same group commit
    # answers None.
    await store.enqueue(*(NewJob("k", f"before-{n}") for n in range(3)))
    ids = [f"wh-{n % 5}" for n in range(10)]
    rows = await asyncio.gather(*(
        store.record_delivery("incident_io", delivery_id, "x", delivery_id.encode(), "intake")
        for delivery_id in ids))
    new = {delivery_id: row for delivery_id, row in zip(ids, rows, strict=True)
           if row is not None}
    assert len(new) == 5 and rows.count(None) == 5
    for delivery_id, row in new.items():
        stored = await store.get_delivery(row)
        assert stored is not None and stored.body == delivery_id.encode()
    claimed = await store.claim_jobs("w", 30, 20)
    assert sorted(job.payload["delivery"] for job in claimed if job.kind == "intake") == sorted(
        new.values())


async def test_a_delivery_decided_at_the_door_gets_no_job(store: Store) -> None:
    row = await store.record_delivery("pagerduty", "wh-1", "incident.triggered", b"{}", None,
                                      DeliveryState.STALE, "too old")
    assert row is not None
    assert await store.job_counts() == {}


async def test_enqueue_is_idempotent_on_the_key(store: Store) -> None:
    assert await store.enqueue(NewJob("page", "page:esc-1"), NewJob("page", "page:esc-1")) == 1
    assert await store.enqueue(NewJob("page", "page:esc-1", {"other": True})) == 0
    assert await store.job_counts() == {"queued": 1}


async def test_timers_are_not_claimed_before_they_are_due(store: Store, clock: ManualClock
                                                          ) -> None:
    await store.enqueue(NewJob("recheck", "recheck:esc-1", run_at=START + 1800))
    assert await store.claim_jobs("w1", 30, 10) == []
    assert await store.next_due() == START + 1800
    clock.advance(1800)
    [job] = await store.claim_jobs("w1", 30, 10)
    assert (job.key, job.state, job.attempts, job.lease_owner) == (
        "recheck:esc-1", JobState.RUNNING, 1, "w1")


async def test_two_replicas_never_claim_the_same_job(make_store: StoreFactory) -> None:
    a, b = await make_store(), await make_store()
    await a.enqueue(*(NewJob("k", f"key-{i}") for i in range(60)))
    claims = await asyncio.gather(*(s.claim_jobs(s_name, 30, 7) for s, s_name in
                                    [(a, "a"), (b, "b")] * 6))
    ids = [job.id for batch in claims for job in batch]
    assert len(ids) == 60
    assert len(set(ids)) == 60


async def test_an_expired_lease_is_taken_over_and_the_old_owner_cannot_finish(
    make_store: StoreFactory, clock: ManualClock
) -> None:
    a, b = await make_store(), await make_store()
    await a.enqueue(NewJob("page", "page:esc-1"))
    [job] = await a.claim_jobs("dead-replica", 30, 1)
    assert await b.claim_jobs("survivor", 30, 1) == []
    clock.advance(31)
    [taken] = await b.claim_jobs("survivor", 30, 1)
    assert (taken.id, taken.attempts) == (job.id, 2)
    assert await a.complete_job(job.id, "dead-replica") is False
    assert await b.complete_job(job.id, "survivor") is True
    done = await b.get_job(job.id)
    assert done is not None and done.state == JobState.DONE


async def test_a_lease_kept_alive_is_not_taken_over(store: Store, clock: ManualClock) -> None:
    await store.enqueue(NewJob("page", "page:esc-1"))
    [job] = await store.claim_jobs("a", 30, 1)
    clock.advance(20)
    assert await store.extend_lease(job.id, "a", 30) is True
    clock.advance(20)
    assert await store.claim_jobs("b", 30, 1) == []


async def test_completion_applies_the_decision_atomically(store: Store) -> None:
    await store.enqueue(NewJob("process", "p1", escalation_id="esc-1"))
    [job] = await store.claim_jobs("w", 30, 1)
    event = NewEvent("esc-1", EventKind.RECEIVED, "incident.io", START, {"ref": "INC-123"})
    follow_up = NewJob("approval", "approval:esc-1", escalation_id="esc-1")
    changes = Changes(escalation=escalation(), events=(event,), jobs=(follow_up,))
    assert await store.complete_job(job.id, "w", changes)
    row = await store.get_escalation("esc-1")
    assert row is not None and (row.version, row.data) == (1, {"title": "Our database is sad"})
    assert [e.event for e in await store.timeline("esc-1")] == ["received"]
    found = await store.find_escalation("incident_io", "01FDAG4SAP5TYPT98WGR2N7W91")
    assert found == row
    assert await store.job_counts() == {"done": 1, "queued": 1}


async def test_a_stale_version_writes_nothing_at_all(store: Store) -> None:
    await store.apply(Changes(escalation=escalation()))
    await store.apply(Changes(escalation=escalation(state="classified"), expected_version=1))
    await store.enqueue(NewJob("process", "p2"))
    [job] = await store.claim_jobs("w", 30, 1)
    stale = Changes(
        escalation=escalation(state="other"), expected_version=1,
        events=(NewEvent("esc-1", EventKind.RECEIVED, "x", START),),
        jobs=(NewJob("x", "should-not-exist"),),
    )
    with pytest.raises(Conflict):
        await store.complete_job(job.id, "w", stale)
    row = await store.get_escalation("esc-1")
    assert row is not None and (row.state, row.version) == ("classified", 2)
    assert await store.timeline("esc-1") == []
    current = await store.get_job(job.id)
    assert current is not None and current.state == JobState.RUNNING
    with pytest.raises(Conflict):
        await store.apply(Changes(escalation=escalation(esc_id="esc-2")))  # same external id


async def test_a_once_only_event_happens_once(store: Store) -> None:
    await store.apply(Changes(escalation=escalation()))
    decided = NewEvent("esc-1", EventKind.APPROVED, "U123", START, once_key="decision")
    await store.apply(Changes(events=(decided,)))
    late = NewEvent("esc-1", EventKind.DECLINED, "U999", START + 1, once_key="decision")
    with pytest.raises(Duplicate):
        await store.apply(Changes(events=(late,), jobs=(NewJob("page", "page:esc-1"),)))
    assert [e.event for e in await store.timeline("esc-1")] == ["approved"]
    assert await store.job_counts() == {}


async def test_retry_dead_letter_and_release(store: Store, clock: ManualClock) -> None:
    await store.apply(Changes(escalation=escalation()))
    await store.enqueue(NewJob("a", "a"), NewJob("b", "b", escalation_id="esc-1"),
                        NewJob("c", "c"))
    jobs = {job.kind: job for job in await store.claim_jobs("w", 30, 3)}
    assert await store.retry_job(jobs["a"].id, "w", START + 60, "HTTP 503")
    event = NewEvent("esc-1", EventKind.DEAD_LETTERED, "tier2gate", START, {"kind": "b"})
    assert await store.dead_letter_job(jobs["b"].id, "w", "gave up", event)
    assert await store.release_jobs("w") == 1
    retried, dead, released = [await store.get_job(jobs[k].id) for k in "abc"]
    assert retried is not None and (retried.state, retried.run_at, retried.last_error) == (
        JobState.QUEUED, START + 60, "HTTP 503")
    assert dead is not None and dead.state == JobState.DEAD
    assert released is not None and (released.state, released.attempts) == (JobState.QUEUED, 0)
    assert [e.event for e in await store.timeline("esc-1")] == ["job.dead_lettered"]
    assert [j.kind for j in await store.list_jobs(JobState.DEAD)] == ["b"]
    clock.advance(60)
    assert sorted(j.kind for j in await store.claim_jobs("w2", 30, 5)) == ["a", "c"]
