"""Paging Tier 2 after approval: one page per escalation and round of the gate, ever, keyed by
the escalation id (and the round, once a reopened incident was decided again)."""

from __future__ import annotations

from daemon.clock import to_datetime
from daemon.domain.gate import Phase
from daemon.domain.transitions import on_paged
from daemon.integrations.base import PageRequest
from daemon.jobs.deps import Deps
from daemon.jobs.escalations import changes_for
from daemon.jobs.intake import page_key
from daemon.jobs.views import page_details
from daemon.store import Changes, Job
from daemon.store.mapping import loaded
from daemon.workers.runner import Recorder


class Paging:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def page(self, job: Job) -> Recorder | None:
        row = await self.deps.store.get_escalation(str(job.escalation_id))
        if row is None:
            return None
        current = loaded(row)
        if current.gate.phase is not Phase.PAGING or current.gate.page is not None:
            return None
        drill = current.escalation.drill
        pager = self.deps.drill_pager if drill else self.deps.pager
        # A drill without a drill service is recorded as a page that was not sent, the way
        # SHADOW mode records one: the rehearsal goes on to the retro, nobody is paged.
        shadow = self.deps.shadow or (drill and pager is None)
        page_round = current.gate.round
        incident_id, url = "", ""
        if not shadow:
            request = PageRequest(
                escalation_id=row.id, key=page_key(row.id, page_round),
                title=f"[Tier 2] {current.escalation.title} ({current.escalation.reference})",
                details=page_details(current, self.deps.settings),
                links=dict(current.escalation.links),
            )
            result = await (pager.page(request) if pager is not None
                            else self.deps.need_pager().page(request))
            incident_id, url = result.incident_id, result.url
        self.deps.metrics.page_latency.observe(max(0.0, self.deps.clock.now() - job.created_at))

        async def record() -> Changes | None:
            fresh = await self.deps.store.get_escalation(row.id)
            if fresh is None:
                return None
            now_loaded = loaded(fresh)
            now = to_datetime(self.deps.clock.now())
            step = on_paged(now_loaded.gate, incident_id, url, now, shadow=shadow,
                            # a drill has no incident to resolve: its retro opens at once
                            retro_on_page=drill or self.deps.settings.retro.open_on == "page",
                            page_round=page_round)
            return changes_for(fresh.id, now_loaded.escalation, step, now, previous=fresh)

        return record
