"""Retention on both backends: what `Store.prune` removes, what it must keep, and dry runs."""

from __future__ import annotations

from daemon.clock import ManualClock
from daemon.store import Changes, DeliveryState, EscalationRow, NewEvent, NewJob, Store
from tests.support import START

DAY_S = 86400.0


def escalation(esc_id: str, state: str, *, attention: bool = False) -> EscalationRow:
    return EscalationRow(id=esc_id, source="incident_io", external_id=f"ext-{esc_id}",
                         state=state, outcome=None, data={}, version=0, opened_at=START,
                         created_at=START, updated_at=START, attention=attention)


async def finish(store: Store, kind: str, *, dead: bool = False) -> None:
    [job] = [j for j in await store.claim_jobs("w", 30, 100) if j.kind == kind]
    if dead:
        assert await store.dead_letter_job(job.id, "w", "gave up", None)
    else:
        assert await store.complete_job(job.id, "w")


async def test_old_bodies_and_finished_jobs_go_and_everything_else_stays(
    store: Store, clock: ManualClock,
) -> None:
    old = await store.record_delivery("pagerduty", "old", "incident.annotated", b"{}", "intake")
    pending = await store.record_delivery("pagerduty", "pending", "incident.x", b"{}")
    assert old is not None and pending is not None
    await finish(store, "intake")
    await store.apply(Changes(delivery_done=(old, DeliveryState.IGNORED, "not ours")))
    await store.enqueue(NewJob("timer", "t1", run_at=START + 90 * DAY_S))
    await store.enqueue(NewJob("done-old", "d1"))
    await finish(store, "done-old")
    await store.enqueue(NewJob("dead-old", "d2"))
    await finish(store, "dead-old", dead=True)
    await store.apply(Changes(escalation=escalation("esc-1", "closed"), events=(
        NewEvent("esc-1", "received", "tier2gate", START),)))
    clock.advance(40 * DAY_S)
    fresh = await store.record_delivery("pagerduty", "fresh", "incident.annotated", b"{}")
    cutoff = clock.now() - 30 * DAY_S

    assert await store.prune(cutoff, cutoff, dry_run=True) == {"deliveries": 1, "jobs": 3}
    assert await store.count_deliveries() == 3  # a dry run changes nothing
    assert await store.prune(cutoff, cutoff) == {"deliveries": 1, "jobs": 3}
    assert await store.get_delivery(old) is None
    # never processed (still `stored`): its job will need the body, however old it is
    assert await store.get_delivery(pending) is not None
    assert fresh is not None and await store.get_delivery(fresh) is not None
    assert await store.job_counts() == {"queued": 1}  # the future timer
    # the audit log is kept unless configured otherwise
    assert [e.event for e in await store.timeline("esc-1")] == ["received"]
    assert await store.prune(cutoff, cutoff) == {"deliveries": 0, "jobs": 0}


async def test_escalations_go_only_at_rest_and_when_configured(store: Store, clock: ManualClock
                                                               ) -> None:
    rows = [escalation("esc-closed", "closed"), escalation("esc-ignored", "ignored"),
            escalation("esc-waiting", "awaiting_approval"),
            escalation("esc-attention", "closed", attention=True),
            escalation("esc-timer", "rfh")]
    for row in rows:
        await store.apply(Changes(escalation=row, events=(
            NewEvent(row.id, "received", "tier2gate", START),)))
    await store.enqueue(NewJob("recheck", "r1", run_at=START + 90 * DAY_S,
                               escalation_id="esc-timer"))
    clock.advance(400 * DAY_S)
    cutoff = clock.now() - 365 * DAY_S
    assert (await store.prune(cutoff, cutoff, cutoff, dry_run=True))["escalations"] == 2
    assert (await store.prune(cutoff, cutoff, cutoff))["escalations"] == 2
    left = {row.id for row in await store.list_escalations()}
    assert left == {"esc-waiting", "esc-attention", "esc-timer"}
    assert await store.timeline("esc-closed") == []
    assert [e.event for e in await store.timeline("esc-timer")] == ["received"]


async def test_pruning_runs_in_batches_until_done(store: Store, clock: ManualClock) -> None:
    await store.enqueue(*(NewJob("k", f"k{i}") for i in range(25)))
    for job in await store.claim_jobs("w", 30, 100):
        await store.complete_job(job.id, "w")
    clock.advance(DAY_S)
    assert await store.prune(clock.now(), clock.now(), batch=10) == {"deliveries": 0,
                                                                      "jobs": 25}
    assert await store.job_counts() == {}



async def test_a_pruned_escalation_takes_who_its_pages_reached_with_it(
        store: Store, clock: ManualClock) -> None:
    """Its `tier2_reaches` rows (migration 0014) go with it: they reference it."""
    responder = {"id": "PA", "name": "Ann", "time_zone": "Europe/London"}
    await store.apply(Changes(escalation=escalation("esc-paged", "closed"), events=(
        NewEvent("esc-paged", "paged", "tier2gate", START),
        NewEvent("esc-paged", "acknowledged", "Ann", START + 60, {"responders": [responder]}))))
    assert len((await store.load_facts(START - DAY_S, START + DAY_S)).reaches) == 1
    clock.advance(400 * DAY_S)
    cutoff = clock.now() - 365 * DAY_S
    assert (await store.prune(cutoff, cutoff, cutoff))["escalations"] == 1
    assert (await store.load_facts(START - DAY_S, START + DAY_S)).reaches == ()
