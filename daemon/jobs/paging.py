"""Paging Tier 2 after approval: one page per escalation and round of the gate, ever, keyed by
the escalation id (and the round, once a reopened incident was decided again)."""

from __future__ import annotations

from datetime import datetime

from daemon.domain.gate import Phase
from daemon.domain.transitions import on_paged
from daemon.integrations.base import PageRequest
from daemon.jobs.deps import Deps
from daemon.jobs.handler import After, step_handler
from daemon.jobs.intake import page_key
from daemon.jobs.views import page_details
from daemon.store import Job
from daemon.store.mapping import Loaded


class Paging:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.page = step_handler(deps, self._page, guard=_unpaged)

    async def _page(self, job: Job, current: Loaded, _now: datetime) -> After:
        drill = current.escalation.drill
        pager = self.deps.drill_pager if drill else self.deps.pager
        # A drill without a drill service is recorded as a page that was not sent, the way
        # SHADOW mode records one: the rehearsal goes on to the retro, nobody is paged.
        shadow = self.deps.shadow or (drill and pager is None)
        page_round = current.gate.round
        incident_id, url = "", ""
        if not shadow:
            request = PageRequest(
                escalation_id=current.row.id, key=page_key(current.row.id, page_round),
                title=f"[Tier 2] {current.escalation.title} ({current.escalation.reference})",
                details=page_details(current, self.deps.settings, self.deps.notices),
                links=dict(current.escalation.links),
            )
            result = await (pager.page(request) if pager is not None
                            else self.deps.need_pager().page(request))
            incident_id, url = result.incident_id, result.url
        self.deps.metrics.page_latency.observe(max(0.0, self.deps.clock.now() - job.created_at))
        # a drill has no incident to resolve: its retro opens at once
        retro_on_page = drill or self.deps.settings.retro.open_on == "page"
        return lambda fresh, now: on_paged(fresh.gate, incident_id, url, now, shadow=shadow,
                                           retro_on_page=retro_on_page, page_round=page_round)


def _unpaged(_job: Job, current: Loaded) -> bool:
    return current.gate.phase is Phase.PAGING and current.gate.page is None
