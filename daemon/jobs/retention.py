"""The periodic `prune` job: retention without cron, on every replica's shared job queue.

One job per period, keyed by the period's number: enqueueing it at start is idempotent however
many replicas start, and each run enqueues the next period's job, so exactly one prune runs per
period and a daemon that was down simply prunes when it is back.
"""

from __future__ import annotations

import math

from daemon.logging import get_logger
from daemon.settings import RetentionSettings, prune_cutoffs
from daemon.store import Changes, Job, NewJob, Store

PRUNE = "prune"

log = get_logger("tier2gate.retention")


def prune_job(retention: RetentionSettings, now_s: float, *, next_period: bool = False
              ) -> NewJob:
    """The prune job of the period `now_s` falls in (due now), or of the next one (due when
    it starts)."""
    period = math.floor(now_s / retention.interval_s) + (1 if next_period else 0)
    run_at = period * retention.interval_s if next_period else now_s
    return NewJob(PRUNE, f"{PRUNE}:{retention.interval_s:g}:{period}", {}, run_at)


class Retention:
    def __init__(self, store: Store, retention: RetentionSettings) -> None:
        self.store = store
        self.retention = retention

    async def prune(self, _job: Job) -> Changes:
        now_s = self.store.clock.now()
        removed = await self.store.prune(*prune_cutoffs(self.retention, now_s))
        log.info("retention.pruned", **removed)
        return Changes(jobs=(prune_job(self.retention, now_s, next_period=True),))
