"""Paging Tier 2 after approval: one page per escalation, ever, keyed by the escalation id."""

from __future__ import annotations

from daemon.clock import to_datetime
from daemon.domain.gate import Phase
from daemon.domain.transitions import on_paged
from daemon.integrations.base import PageRequest
from daemon.jobs.deps import Deps
from daemon.jobs.escalations import changes_for, loaded
from daemon.jobs.intake import page_key
from daemon.jobs.views import page_details
from daemon.store import Changes, Job


class Paging:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def page(self, job: Job) -> Changes | None:
        row = await self.deps.store.get_escalation(str(job.escalation_id))
        if row is None:
            return None
        current = loaded(row)
        if current.gate.phase is not Phase.PAGING or current.gate.page is not None:
            return None
        now = to_datetime(self.deps.clock.now())
        retro_on_page = self.deps.settings.retro.open_on == "page"
        if self.deps.shadow:
            step = on_paged(current.gate, "", "", now, shadow=True, retro_on_page=retro_on_page)
        else:
            request = PageRequest(
                escalation_id=row.id, key=page_key(row.id),
                title=f"[Tier 2] {current.escalation.title} ({current.escalation.reference})",
                details=page_details(current, self.deps.settings),
                links=dict(current.escalation.links),
            )
            result = await self.deps.need_pager().page(request)
            step = on_paged(current.gate, result.incident_id, result.url, now, shadow=False,
                            retro_on_page=retro_on_page)
        self.deps.metrics.page_latency.observe(max(0.0, self.deps.clock.now() - job.created_at))
        return changes_for(row.id, current.escalation, step, now, previous=row)
