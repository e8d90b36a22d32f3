"""The store stays bounded under a steady stream of ignored deliveries: the periodic `prune`
job, started with the daemon, removes processed webhook bodies and finished jobs once they are
older than `retention:` says. The clock is the harness's, never today's date."""

from __future__ import annotations

from pathlib import Path

from daemon.store import JobState
from tests.harness import base_settings, running
from tests.world import stamp

HOUR_S = 3600.0


async def test_a_steady_stream_of_ignored_deliveries_keeps_the_store_bounded(
    tmp_path: Path,
) -> None:
    settings = base_settings(retention={"deliveries_days": 1, "jobs_days": 1,
                                        "interval_s": HOUR_S})
    async with running(tmp_path, settings) as daemon:
        sizes: list[tuple[int, int]] = []
        for hour in range(24 * 5):  # five days, six deliveries an hour
            for n in range(6):
                event = {"event": {"id": f"ev-{hour}-{n}", "event_type": "service.updated",
                                   "occurred_at": stamp(daemon.clock.now()),
                                   "resource_type": "service", "data": {"type": "service"}}}
                assert (await daemon.pagerduty(event)).status in (200, 202)
            await daemon.settle()
            daemon.clock.advance(HOUR_S)
            jobs = sum((await daemon.store.job_counts()).values())
            sizes.append((await daemon.store.count_deliveries(), jobs))
        # A day of deliveries (and their intake jobs) plus at most one period, never more.
        bound = 6 * (24 + 1)
        assert max(d for d, _ in sizes[48:]) <= bound, sizes[-5:]
        # jobs: the intake jobs, plus the runs of that day and one period of the three
        # periodic jobs (prune, retro_poll, update_cadence: the clock moves an hour at a time,
        # so each runs once an hour; the other two fall due at the same instant as prune and
        # the runner may finish them before or after prune's cut-off) and the next of each
        # queued, plus the morning queue's (a business window's, done, and the next one's)
        assert max(j for _, j in sizes[48:]) <= bound + 3 * (24 + 1 + 1 + 1) + 2, sizes[-5:]
        assert sizes[-1][0] >= 6 * 23  # what is younger than a day is all still there
        # one prune per hour, each scheduling the next
        runs = [j for j in await daemon.store.list_jobs(JobState.DONE, 1000) if j.kind == "prune"]
        assert len(runs) >= 20
        [queued] = [j for j in await daemon.store.list_jobs(JobState.QUEUED) if j.kind == "prune"]
        assert queued.run_at > daemon.clock.now() - HOUR_S
