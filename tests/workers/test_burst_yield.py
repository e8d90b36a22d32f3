"""The job runner yields to a burst of webhook deliveries in its process, for a bounded time.

A burst is a delivery in flight most of the time (`IntakeGauge`); the runner then claims no
job until intake eases or `jobs.burst_yield_s` has passed, and never otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.clock import SystemClock
from daemon.metrics import Metrics
from daemon.settings import JobSettings
from daemon.store import Job, JobState, NewJob, Store
from daemon.store.sqlite import SqliteBackend
from daemon.workers.runner import Handler, IntakeGauge, JobRunner
from tests.support import eventually
from tests.workers.test_runner import running


def settings(burst_yield_s: float) -> JobSettings:
    return JobSettings(workers=2, poll_interval_s=0.02, drain_timeout_s=0.2,
                       burst_yield_s=burst_yield_s)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(SqliteBackend(tmp_path / "t.db"), SystemClock())
    await store.open()
    yield store
    await store.close()


def recorder() -> tuple[list[str], dict[str, Handler]]:
    ran: list[str] = []

    async def effect(job: Job) -> None:
        ran.append(job.key)

    return ran, {"effect": effect}


async def test_no_job_is_claimed_while_deliveries_keep_arriving_then_all_are(store: Store
                                                                              ) -> None:
    ran, handlers = recorder()
    gauge = IntakeGauge()
    runner = JobRunner(store, handlers, settings(60.0), Metrics(), intake=gauge)
    gauge.begin()  # a delivery in flight for as long as this test says
    async with running(runner):
        await asyncio.sleep(0.1)  # the runner has measured intake's busy share by now
        await store.enqueue(NewJob("effect", "during-the-burst"))
        await asyncio.sleep(0.5)
        assert ran == []
        assert [j.key for j in await store.list_jobs(JobState.QUEUED)] == ["during-the-burst"]
        gauge.end()  # intake eased
        await eventually(lambda: _done(ran, 1), timeout_s=5)


async def test_a_burst_longer_than_the_limit_does_not_hold_jobs_back(store: Store) -> None:
    ran, handlers = recorder()
    gauge = IntakeGauge()
    runner = JobRunner(store, handlers, settings(0.3), Metrics(), intake=gauge)
    gauge.begin()
    with capture_logs() as logs:
        async with running(runner):
            await asyncio.sleep(0.1)
            await store.enqueue(NewJob("effect", "a"))
            await eventually(lambda: _done(ran, 1), timeout_s=5)  # while still busy
            await store.enqueue(NewJob("effect", "b"))
            await eventually(lambda: _done(ran, 2), timeout_s=5)
    gauge.end()
    assert "jobs.burst_continues" in [entry["event"] for entry in logs]


@pytest.mark.parametrize("burst_yield_s", [60.0, 0.0])
async def test_without_a_burst_or_with_yielding_off_jobs_run_at_once(
        store: Store, burst_yield_s: float) -> None:
    ran, handlers = recorder()
    gauge = IntakeGauge()
    runner = JobRunner(store, handlers, settings(burst_yield_s), Metrics(), intake=gauge)
    if burst_yield_s == 0.0:
        gauge.begin()  # busy, but yielding is off
    async with running(runner):
        for n in range(5):
            gauge.begin()  # a few deliveries that come and go: no burst
            gauge.end()
            await store.enqueue(NewJob("effect", f"job-{n}"))
        await eventually(lambda: _done(ran, 5), timeout_s=5)


def test_the_gauge_counts_the_time_with_a_delivery_in_flight() -> None:
    gauge = IntakeGauge()
    assert gauge.busy_s(1e12) == 0.0
    gauge.begin()
    gauge.begin()
    gauge.end()
    assert gauge.in_flight == 1
    started = gauge._since
    assert gauge.busy_s(started + 2.0) == pytest.approx(2.0)
    gauge.end()
    assert gauge.in_flight == 0
    frozen = gauge.busy_s(started + 100.0)
    assert frozen == gauge.busy_s(started + 200.0)  # idle time does not count


async def _done(ran: list[str], n: int) -> bool:
    return len(ran) >= n
