"""The SMOC lookup is remembered for `approval.smoc_cache_s` by the daemon's injected clock:
a burst of emergencies asks PagerDuty once, and the next emergency after that time asks again
(a test's manual clock moves it; the process's own monotonic time would not)."""

from __future__ import annotations

from pathlib import Path

from tests.world import SMOC_SCHEDULE, World, deliver, incident, world


def smoc_lookups(w: World) -> int:
    return sum(1 for r in w.pagerduty.requests if r.path == "/oncalls"
               for key, value in r.query if key == "schedule_ids[]" and value == SMOC_SCHEDULE)


async def test_the_smoc_lookup_is_kept_for_its_time_by_the_injected_clock(tmp_path: Path
                                                                           ) -> None:
    async with world(tmp_path, approval={"smoc_cache_s": 60}) as w:
        await deliver(w, incident(incident_id="01FIRST"))
        await deliver(w, incident(incident_id="01SECOND"))
        assert smoc_lookups(w) == 1  # the second request used the remembered SMOC

        w.daemon.clock.advance(61)
        await deliver(w, incident(incident_id="01THIRD"))
        assert smoc_lookups(w) == 2
        asked = [row for row in await w.daemon.escalations() if row.state != "ignored"]
        assert len(asked) == 3
