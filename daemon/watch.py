"""The daemon's periodic looks, in one small supervised task: the clocks and the policy file.

Every `clock.check_interval_s`: compare the wall clock with elapsed time (a step is logged,
counted and shown by `/readyz`), and look at the policy file; when a new policy is put in force,
announce it with a job that re-judges the open escalations. The customer-events calendar is
looked at too (its files when changed, its URL every `customer_events.refresh_s`), and the
weekly heads-up and the next business window's morning queue are enqueued (keyed jobs). A look that
fails (the store is down) is logged and made again at the next tick; the change is announced
once it succeeds.
"""

from __future__ import annotations

import asyncio

from daemon.clock import to_datetime
from daemon.clockwatch import ClockWatch
from daemon.customer_calendar import EventSource
from daemon.jobs.headsup import scheduled
from daemon.jobs.morning import morning_job
from daemon.jobs.policy import announcement, events_announcement
from daemon.logging import get_logger
from daemon.policy_source import PolicySource
from daemon.store import Store, StoreUnavailable

log = get_logger("tier2gate.watch")


class Watch:
    def __init__(self, clock_watch: ClockWatch, policy: PolicySource, store: Store,
                 interval_s: float, events: EventSource | None = None, *,
                 morning_queue: bool = False) -> None:
        self.clock_watch = clock_watch
        self.policy = policy
        self.events = events
        self.store = store
        self.interval_s = interval_s
        # The policy loaded at start is in force already: only later changes are news.
        self._announced = policy.fingerprint
        self._headsup_key: str | None = None  # the next heads-up enqueued by this process
        # The calendar read at start judged nothing yet: only later changes are news.
        self._events_seen = events.current().fingerprint if events is not None else ""
        self.morning_queue = morning_queue
        self._morning_at: float | None = None  # the business-window start last enqueued for

    async def tick(self) -> None:
        self.clock_watch.check()
        self.policy.refresh()
        if self.events is not None:
            await self.events.refresh()
            await self._announce_events(self.events)
            await self._schedule_headsup(self.events)
        if self.morning_queue:
            await self._schedule_morning()
        fingerprint = self.policy.fingerprint
        if fingerprint == self._announced:
            return
        try:
            await self.store.enqueue(announcement(fingerprint, self.store.clock.now()))
        except StoreUnavailable as exc:
            log.warning("policy.announce_failed", error=str(exc))
            return
        log.info("policy.changed", previous=self._announced, fingerprint=fingerprint)
        self._announced = fingerprint
        self._morning_at = None  # business hours may have changed

    async def _announce_events(self, events: EventSource) -> None:
        """A changed calendar re-checks the open escalations (`events_changed`)."""
        fingerprint = events.current().fingerprint
        if fingerprint == self._events_seen:
            return
        try:
            await self.store.enqueue(events_announcement(fingerprint, self.store.clock.now()))
        except StoreUnavailable as exc:
            log.warning("customer_events.announce_failed", error=str(exc))
            return
        log.info("customer_events.changed", previous=self._events_seen, fingerprint=fingerprint)
        self._events_seen = fingerprint

    async def _schedule_headsup(self, events: EventSource) -> None:
        """Enqueue the next weekly heads-up (and, at start, a recent one not yet sent): keyed
        jobs, so however many processes do it, each heads-up runs once."""
        now = to_datetime(self.store.clock.now())
        jobs = scheduled(self.policy.current().business_hours, events.settings, now,
                         starting=self._headsup_key is None)
        if jobs[-1].key == self._headsup_key:
            return
        try:
            await self.store.enqueue(*jobs)
        except StoreUnavailable as exc:
            log.warning("customer_events.schedule_failed", error=str(exc))
            return
        self._headsup_key = jobs[-1].key

    async def _schedule_morning(self) -> None:
        """Enqueue the next business-window start's morning queue once the last one passed."""
        now_s = self.store.clock.now()
        if self._morning_at is not None and now_s < self._morning_at:
            return
        job = morning_job(self.policy.current().business_hours, to_datetime(now_s))
        try:
            await self.store.enqueue(job)
        except StoreUnavailable as exc:
            log.warning("morning.schedule_failed", error=str(exc))
            return
        self._morning_at = job.run_at

    async def run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self.interval_s)

    def detail(self) -> dict[str, object]:
        """For `/readyz`: the last clock step, once there was one (news, not a reason to be
        unready: taking the daemon out of service would lose webhooks, not fix the clock)."""
        found: dict[str, object] = {}
        if self.clock_watch.last:
            found["clock"] = self.clock_watch.detail()
        if self.events is not None:
            found.update(self.events.detail())
        return found
