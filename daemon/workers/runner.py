"""The durable job runner: every side effect is a job row, run at least once, recorded once.

Workers claim due jobs with an expiring lease (a crashed process's jobs are taken over when the
lease runs out; on SQLite, at the next start), run the handler, and then either complete the job
together with what the handler decided, or reschedule it with backoff, or dead-letter it.
Effects must be idempotent on the job's key, because "at least once" includes "twice after a
crash between the vendor's 201 and our commit".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from functools import partial

import structlog

from daemon.domain.events import DeadLettered
from daemon.integrations.failures import MAX_ERROR_CHARS
from daemon.logging import get_logger
from daemon.metrics import Metrics
from daemon.settings import JobSettings
from daemon.store import (
    Changes,
    Conflict,
    Duplicate,
    Job,
    NewEvent,
    NewJob,
    Store,
    StoreUnavailable,
)
from daemon.workers.retry import Backoff, Permanent, Retry

Recorder = Callable[[], Awaitable[Changes | None]]
"""What a handler returns after an external effect: computes the changes from fresh state, so a
conflict with a concurrent decision re-runs the recording, never the effect itself."""
Handler = Callable[[Job], Awaitable[Changes | Recorder | None]]
Trouble = Callable[[Job, str, bool], NewJob | None]
"""(job, reason, final) -> a job that tells people about it, or None: called when a job is
dead-lettered (final) and when an urgent job passes `max_attempts` still failing."""
Recovered = Callable[[Job], NewJob | None]
"""job -> a job that takes back what `Trouble` told people, or None: called when a job that
had failed before (it carries a `last_error`) succeeds; committed with its completion."""
_RECORD_TRIES = 5

log = get_logger("tier2gate.jobs")
_BURST_SPAN_S = 0.05  # the shortest span the runner measures intake's busy share over
_BURST_LOOK_S = 0.01  # while yielding, how often it looks again
_BURST_BUSY = 0.5  # a burst: a delivery in flight at least this share of the time


class IntakeGauge:
    """How busy the listeners are with webhook deliveries: the handlers call `begin`/`end`
    (an int add each, and a clock read when the count leaves or reaches zero: this sits on the
    hot path); the runner reads the share of time with a delivery in flight (`busy_s`) to
    yield to intake during a burst."""

    __slots__ = ("_busy_s", "_since", "in_flight")

    def __init__(self) -> None:
        self.in_flight = 0
        self._busy_s = 0.0
        self._since = 0.0

    def begin(self) -> None:
        if not self.in_flight:
            self._since = time.monotonic()
        self.in_flight += 1

    def end(self) -> None:
        self.in_flight -= 1
        if not self.in_flight:
            self._busy_s += time.monotonic() - self._since

    def busy_s(self, now: float) -> float:
        """Seconds with at least one delivery in flight, since the process started."""
        return self._busy_s + (now - self._since if self.in_flight else 0.0)


class JobRunner:
    def __init__(
        self,
        store: Store,
        handlers: Mapping[str, Handler],
        settings: JobSettings,
        metrics: Metrics,
        *,
        scrub: Callable[[str], str] = str,
        owner: str | None = None,
        urgent: frozenset[str] = frozenset(),
        on_trouble: Trouble | None = None,
        on_recovered: Recovered | None = None,
        intake: IntakeGauge | None = None,
    ) -> None:
        """`urgent`: job kinds on the emergency path. A retryable failure never dead-letters
        them, and they are retried at least every `settings.urgent_retry_max_s` (a vendor's
        own Retry-After still wins), so a recovered vendor is noticed within seconds.
        `intake`: the listeners' delivery count in this process, to yield to (`_yield`)."""
        self.store = store
        self.handlers = dict(handlers)
        self.settings = settings
        self.metrics = metrics
        # host and pid first: an operator reading `lease_owner` knows which process holds a job
        self.owner = owner or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._scrub = scrub
        self._urgent = urgent
        self._on_trouble = on_trouble
        self._on_recovered = on_recovered
        self._backoff = Backoff(settings.backoff_base_s, settings.backoff_max_s)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._intake = intake
        self._yielding_since: float | None = None
        self._burst_logged = False
        self._look = (time.monotonic(), 0.0)  # (when, gauge's busy_s then)
        self._busy_share = 0.0
        store.on_enqueue(self._wake.set)

    async def run(self) -> None:
        """Claim and run jobs until `stop()`; then drain, cancel stragglers, release leases."""
        self._start_heartbeat()
        try:
            while not self._stopping.is_set():
                await self._yield()
                await self._claim_some()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval_s)
        finally:
            self._stopping.set()  # a heartbeat ending now is the shutdown, not a crash
            if self._heartbeat_task is not None:
                self._heartbeat_task.cancel()
            await self._drain()

    async def _yield(self) -> None:
        """During a burst of deliveries, claim nothing, for at most `burst_yield_s` per burst;
        after that, work as usual while the burst goes on (the backlog must not grow without
        end, and the emergency path waits at most that long).

        A burst is intake that keeps a delivery in flight at least `_BURST_BUSY` of the time
        (measured between the runner's looks, so an instant with nothing in flight, e.g. just
        after a group commit answered everyone, does not end it). At a rate this process
        answers with time to spare the share stays low and nothing waits. Jobs already running
        go on; only claims wait, so the CPU and the one SQLite writer answer vendors first."""
        gauge, limit = self._intake, self.settings.burst_yield_s
        if gauge is None or limit <= 0:
            return
        while not self._stopping.is_set():
            now = time.monotonic()
            busy = gauge.busy_s(now)
            seen_at, seen_busy = self._look
            if now - seen_at >= _BURST_SPAN_S:
                self._busy_share = (busy - seen_busy) / (now - seen_at)
                self._look = (now, busy)
            if self._busy_share < _BURST_BUSY:
                break
            if self._yielding_since is None:
                self._yielding_since = now
            elif now - self._yielding_since >= limit:
                if not self._burst_logged:
                    self._burst_logged = True
                    log.info("jobs.burst_continues", yielded_s=round(now - self._yielding_since, 1))
                return  # a long burst: work alongside it until intake eases
            await asyncio.sleep(_BURST_LOOK_S)
        if self._yielding_since is not None:
            yielded_s = time.monotonic() - self._yielding_since
            if yielded_s >= 1.0:  # a burst, not a few requests that overlapped
                log.info("jobs.yielded_to_intake", yielded_s=round(yielded_s, 1))
            self._yielding_since = None
            self._burst_logged = False

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def _claim_some(self) -> None:
        free = self.settings.workers - len(self._inflight)
        if free <= 0:
            return
        try:
            jobs = await self.store.claim_jobs(self.owner, self.settings.lease_s, free)
        except StoreUnavailable as exc:
            log.warning("jobs.claim_failed", error=str(exc))
            return
        except Exception as exc:  # the claim loop must outlive any store surprise
            log.error("jobs.claim_failed", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
            return
        for job in jobs:
            task = asyncio.create_task(self._execute(job), name=f"job-{job.id}")
            self._inflight[job.id] = task
            task.add_done_callback(partial(self._finished, job.id))

    def _finished(self, job_id: int, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(job_id, None)
        self._wake.set()

    def _start_heartbeat(self) -> None:
        self._heartbeat_task = asyncio.create_task(self._heartbeat(), name="job-lease-heartbeat")
        self._heartbeat_task.add_done_callback(self._heartbeat_ended)

    def _heartbeat_ended(self, task: asyncio.Task[None]) -> None:
        """Supervision: a heartbeat that died is logged with its traceback and started again.
        Silently lost, every long job would lose its lease and be run a second time elsewhere."""
        if task.cancelled() or self._stopping.is_set():
            return
        log.error("jobs.heartbeat_restarted", exc_info=task.exception())
        self._start_heartbeat()

    async def _heartbeat(self) -> None:
        """Keep leases of long-running jobs alive so no other worker takes them over."""
        while True:
            await asyncio.sleep(self.settings.lease_s / 3)
            for job_id in list(self._inflight):
                with contextlib.suppress(StoreUnavailable):
                    await self.store.extend_lease(job_id, self.owner, self.settings.lease_s)

    async def _drain(self) -> None:
        if self._inflight:
            log.info("jobs.draining", in_flight=len(self._inflight))
            _done, pending = await asyncio.wait(
                list(self._inflight.values()), timeout=self.settings.drain_timeout_s
            )
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        try:
            released = await self.store.release_jobs(self.owner)
        except StoreUnavailable as exc:
            log.warning("jobs.release_failed", error=str(exc))
            return
        if released:
            log.info("jobs.released", count=released)

    async def _execute(self, job: Job) -> None:
        with structlog.contextvars.bound_contextvars(
            job_id=job.id, job_kind=job.kind, escalation_id=job.escalation_id
        ):
            try:
                await self._attempt(job)
            except StoreUnavailable as exc:
                # The outcome could not be recorded; the lease expires and the job runs again.
                log.warning("job.unrecorded", error=str(exc), attempt=job.attempts)
                self.metrics.job_runs.labels(job.kind, "lost").inc()
            except Exception as exc:  # same: never lose the worker slot silently
                log.error("job.unrecorded", error=f"{type(exc).__name__}: {exc}",
                          attempt=job.attempts, exc_info=exc)
                self.metrics.job_runs.labels(job.kind, "lost").inc()

    async def _attempt(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        if handler is None:
            await self._dead(job, f"no handler for job kind {job.kind!r}")
            return
        try:
            result = await handler(job)
        except Retry as retry:
            await self._retry(job, retry.reason, retry.after_s)
            return
        except Permanent as exc:
            await self._dead(job, f"permanent failure: {exc}")
            return
        except Exception as exc:  # any handler bug is retried, then dead-lettered
            # A bug, not a vendor's answer: the traceback is what finds it (one JSON line,
            # scrubbed like every other line).
            log.error("job.crashed", error=f"{type(exc).__name__}: {exc}", attempt=job.attempts,
                      exc_info=exc)
            await self._retry(job, f"{type(exc).__name__}: {exc}", None)
            return
        await self._complete(job, result)

    async def _complete(self, job: Job, result: Changes | Recorder | None) -> None:
        recovered = self._on_recovered(job) if self._on_recovered and job.last_error else None
        for attempt in range(1, _RECORD_TRIES + 1):
            changes = await result() if callable(result) else result
            if recovered is not None:
                changes = replace(changes or Changes(),
                                  jobs=(*(changes.jobs if changes else ()), recovered))
            try:
                done = await self.store.complete_job(job.id, self.owner, changes)
            except Duplicate as dup:
                # What this job decided was already recorded (another attempt or replica won).
                log.info("job.already_recorded", once_key=dup.once_key)
                done = await self.store.complete_job(job.id, self.owner, None)
            except Conflict as exc:
                if callable(result) and attempt < _RECORD_TRIES:
                    log.info("job.recording_again", attempt=attempt, error=str(exc))
                    continue
                await self._retry(job, str(exc), 0.0)
                return
            break
        if not done:
            log.warning("job.lease_lost", attempt=job.attempts)
            self.metrics.job_runs.labels(job.kind, "lost").inc()
            return
        self.metrics.job_runs.labels(job.kind, "done").inc()
        if changes is not None and not (changes.escalation and changes.escalation.drill):
            # A drill rehearses the path; it is no escalation in the funnel's counters.
            self.metrics.record(changes.events)
        self.metrics.job_latency.labels(job.kind).observe(
            max(0.0, self.store.clock.now() - job.run_at)
        )
        log.info("job.done", attempt=job.attempts)

    async def _retry(self, job: Job, reason: str, after_s: float | None) -> None:
        reason = self._scrub(reason)[:MAX_ERROR_CHARS]  # scrubbed before cut: no half secret
        urgent = job.kind in self._urgent
        if job.attempts >= self.settings.max_attempts and not urgent:
            await self._dead(job, f"gave up after {job.attempts} attempts: {reason}")
            return
        delay_s = self._backoff.delay_s(job.attempts)
        if urgent:
            delay_s = min(delay_s, self.settings.urgent_retry_max_s)
        if after_s is not None:
            delay_s = max(delay_s, after_s)  # the vendor's Retry-After is a floor
        await self.store.retry_job(job.id, self.owner, self.store.clock.now() + delay_s, reason)
        self.metrics.job_runs.labels(job.kind, "retry").inc()
        log.warning("job.retry_scheduled", attempt=job.attempts, delay_s=round(delay_s, 3),
                    error=reason)
        if urgent and job.attempts >= self.settings.max_attempts:
            # Still trying, but people must know the emergency is stuck (once: the job key).
            await self._tell(job, f"still failing after {job.attempts} attempts: {reason}")

    async def _tell(self, job: Job, reason: str) -> None:
        follow_up = self._on_trouble(job, reason, False) if self._on_trouble else None
        if follow_up is not None:
            await self.store.enqueue(follow_up)

    async def _dead(self, job: Job, reason: str) -> None:
        reason = self._scrub(reason)[:MAX_ERROR_CHARS]  # scrubbed before cut: no half secret
        event = None
        if job.escalation_id:
            event = NewEvent.of(
                job.escalation_id, DeadLettered(job_id=job.id, job_kind=job.kind,
                                                attempts=job.attempts, error=reason),
                "tier2gate", self.store.clock.now(),
            )
        follow_up = self._on_trouble(job, reason, True) if self._on_trouble else None
        await self.store.dead_letter_job(job.id, self.owner, reason, event, follow_up)
        self.metrics.job_runs.labels(job.kind, "dead").inc()
        self.metrics.dead_letters.labels(job.kind).inc()
        log.error("job.dead_lettered", attempt=job.attempts, error=reason)
