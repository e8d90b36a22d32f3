"""The job runner against a real SQLite store: retries, backoff, dead letters, timers, drain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from daemon.clock import ManualClock, SystemClock
from daemon.logging import SecretScrubber
from daemon.metrics import Metrics
from daemon.settings import JobSettings
from daemon.store import Changes, Job, JobState, NewJob, Store
from daemon.store.records import EscalationRow
from daemon.store.sqlite import SqliteBackend
from daemon.workers.retry import Backoff, Permanent, Retry
from daemon.workers.runner import JobRunner
from tests.support import START, eventually

FAST = JobSettings(workers=2, max_attempts=4, backoff_base_s=0.01, backoff_max_s=0.05,
                   lease_s=5, poll_interval_s=0.02, drain_timeout_s=0.2)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(SqliteBackend(tmp_path / "t.db"), SystemClock())
    await store.open()
    yield store
    await store.close()


@asynccontextmanager
async def running(runner: JobRunner) -> AsyncIterator[JobRunner]:
    task = asyncio.create_task(runner.run())
    try:
        yield runner
    finally:
        runner.stop()
        await task


async def state_of(store: Store, job_id: int) -> JobState | None:
    job = await store.get_job(job_id)
    return job.state if job else None


async def only_job(store: Store) -> Job:
    """The one queued job (ask before the runner starts: afterwards its state moves)."""
    [job] = await store.list_jobs(JobState.QUEUED)
    return job


async def test_a_handler_failing_twice_then_succeeding_has_its_effect_once(
    sqlite_store: Store,
) -> None:
    effects: list[str] = []
    calls = 0

    async def flaky(job: Job) -> None:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise ConnectionResetError("vendor hung up")
        effects.append(job.key)

    metrics = Metrics()
    runner = JobRunner(sqlite_store, {"effect": flaky}, FAST, metrics)
    await sqlite_store.enqueue(NewJob("effect", "effect:1"))
    job = await only_job(sqlite_store)
    async with running(runner):
        await eventually(lambda: _is(sqlite_store, job.id, JobState.DONE))
    assert effects == ["effect:1"]
    done = await sqlite_store.get_job(job.id)
    assert done is not None
    assert (done.attempts, done.last_error) == (3, "")
    assert metrics.job_runs.labels("effect", "retry")._value.get() == 2
    assert metrics.job_runs.labels("effect", "done")._value.get() == 1


async def _is(store: Store, job_id: int, state: JobState) -> bool:
    return await state_of(store, job_id) == state


async def test_retry_after_from_the_vendor_is_honoured(tmp_path: Path) -> None:
    clock = ManualClock(START)
    store = Store(SqliteBackend(tmp_path / "t.db"), clock)
    await store.open()
    seen: list[float] = []

    async def rate_limited(_job: Job) -> None:
        seen.append(clock.now())
        if len(seen) == 1:
            raise Retry("HTTP 429", after_s=30.0)

    await store.enqueue(NewJob("post", "post:1"))
    job = await only_job(store)
    async with running(JobRunner(store, {"post": rate_limited}, FAST, Metrics())):
        await eventually(lambda: _is(store, job.id, JobState.QUEUED) if seen else _false())
        queued = await store.get_job(job.id)
        assert queued is not None
        assert queued.run_at >= START + 30.0
        assert queued.last_error == "HTTP 429"
        clock.advance(29.0)
        await asyncio.sleep(0.1)
        assert len(seen) == 1, "ran again before Retry-After elapsed"
        clock.advance(1.5)
        await eventually(lambda: _is(store, job.id, JobState.DONE))
    assert seen == [START, START + 30.5]
    await store.close()


async def _false() -> bool:
    return False


async def test_exhausted_jobs_are_dead_lettered_in_timeline_metrics_and_logs(
    sqlite_store: Store,
) -> None:
    async def broken(_job: Job) -> None:
        raise RuntimeError("Slack answered 500")

    await sqlite_store.apply(Changes(escalation=EscalationRow(
        id="esc-9", source="pagerduty", external_id="Q1", state="received", outcome=None,
        data={}, version=1, opened_at=START, created_at=START, updated_at=START)))
    metrics = Metrics()
    await sqlite_store.enqueue(NewJob("notify", "notify:esc-9", escalation_id="esc-9"))
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        job = await only_job(sqlite_store)
        async with running(JobRunner(sqlite_store, {"notify": broken}, FAST, metrics)):
            await eventually(lambda: _is(sqlite_store, job.id, JobState.DEAD))
    [entry] = await sqlite_store.timeline("esc-9")
    assert entry.event == "job.dead_lettered"
    assert entry.details["attempts"] == FAST.max_attempts
    assert "Slack answered 500" in entry.details["error"]
    assert metrics.dead_letters.labels("notify")._value.get() == 1
    errors = [e for e in logs if e["log_level"] == "error"]
    # An unnamed exception is a bug: each attempt logs it with its traceback, then the dead letter.
    assert [e["event"] for e in errors] == ["job.crashed"] * FAST.max_attempts + [
        "job.dead_lettered"]
    assert all(e["escalation_id"] == "esc-9" for e in errors)


async def test_a_permanent_failure_is_not_retried(sqlite_store: Store) -> None:
    calls = 0

    async def forbidden(_job: Job) -> None:
        nonlocal calls
        calls += 1
        raise Permanent("HTTP 403 from the tracker")

    await sqlite_store.enqueue(NewJob("issue", "issue:1"))
    job = await only_job(sqlite_store)
    async with running(JobRunner(sqlite_store, {"issue": forbidden}, FAST, Metrics())):
        await eventually(lambda: _is(sqlite_store, job.id, JobState.DEAD))
    assert calls == 1


async def test_an_unknown_job_kind_is_dead_lettered_not_lost(sqlite_store: Store) -> None:
    await sqlite_store.enqueue(NewJob("from-a-newer-version", "x:1"))
    job = await only_job(sqlite_store)
    async with running(JobRunner(sqlite_store, {}, FAST, Metrics())):
        await eventually(lambda: _is(sqlite_store, job.id, JobState.DEAD))
    dead = await sqlite_store.get_job(job.id)
    assert dead is not None
    assert "no handler" in dead.last_error


async def test_a_timer_fires_when_due_and_not_before(tmp_path: Path) -> None:
    clock = ManualClock(START)
    store = Store(SqliteBackend(tmp_path / "t.db"), clock)
    await store.open()
    fired: list[float] = []

    async def recheck(_job: Job) -> None:
        fired.append(clock.now())

    await store.enqueue(NewJob("recheck", "recheck:esc-1", run_at=START + 1800))
    async with running(JobRunner(store, {"recheck": recheck}, FAST, Metrics())):
        await asyncio.sleep(0.1)
        assert fired == []
        clock.advance(1800)
        await eventually(lambda: _fired(fired))
    assert fired == [START + 1800]
    await store.close()


async def _fired(fired: Sequence[object]) -> bool:
    return bool(fired)


async def test_stop_finishes_short_jobs_and_releases_long_ones(sqlite_store: Store) -> None:
    started: list[str] = []
    finished: list[str] = []

    async def work(job: Job) -> None:
        started.append(job.key)
        await asyncio.sleep(job.payload["seconds"])
        finished.append(job.key)

    await sqlite_store.enqueue(NewJob("work", "short", {"seconds": 0.05}),
                               NewJob("work", "long", {"seconds": 60}))
    async with running(JobRunner(sqlite_store, {"work": work}, FAST, Metrics())):
        await eventually(lambda: _fired(started) if len(started) == 2 else _false())
    assert finished == ["short"]
    [long_job] = await sqlite_store.list_jobs(JobState.QUEUED)
    assert (long_job.key, long_job.attempts, long_job.lease_owner) == ("long", 0, None)


async def test_errors_recorded_by_the_runner_never_hold_a_secret(sqlite_store: Store) -> None:
    secret = "xoxb-0000-secret-token"

    async def leaky(_job: Job) -> None:
        raise RuntimeError(f"invalid_auth for token {secret}")

    scrubber_settings = FAST.model_copy(update={"max_attempts": 1})
    runner = JobRunner(sqlite_store, {"post": leaky}, scrubber_settings, Metrics(),
                       scrub=SecretScrubber([secret]).scrub)
    await sqlite_store.enqueue(NewJob("post", "post:1"))
    job = await only_job(sqlite_store)
    async with running(runner):
        await eventually(lambda: _is(sqlite_store, job.id, JobState.DEAD))
    dead = await sqlite_store.get_job(job.id)
    assert dead is not None
    assert "invalid_auth" in dead.last_error
    assert secret not in dead.last_error


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 1.0, 2.0), (2, 2.0, 4.0),
                                                      (3, 4.0, 8.0), (12, 50.0, 100.0)])
def test_backoff_grows_exponentially_with_jitter_and_a_cap(attempt: int, low: float,
                                                           high: float) -> None:
    delays = {Backoff(2.0, 100.0).delay_s(attempt) for _ in range(200)}
    assert min(delays) >= low
    assert max(delays) <= high
    assert len(delays) > 1, "no jitter"


def test_retry_after_is_a_floor_for_the_backoff() -> None:
    assert Backoff(2.0, 100.0).delay_s(1, retry_after_s=45.0) == 45.0
    assert Backoff(2.0, 100.0).delay_s(10, retry_after_s=1.0) >= 50.0

