"""What job handlers need, built once at start-up and passed down (no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from daemon.clock import Clock, to_datetime
from daemon.clockwatch import ClockWatch
from daemon.customer_calendar import EventSource
from daemon.domain.customer_events import EventCalendar
from daemon.domain.models import Source
from daemon.integrations.base import Chat, Desk, IncidentSource, IssueTracker, Pager
from daemon.metrics import Metrics
from daemon.policy_source import PolicySource
from daemon.roster import RosterSource
from daemon.settings import Settings
from daemon.store import Store
from daemon.workers.retry import Permanent


@dataclass
class Deps:
    settings: Settings
    store: Store
    policy: PolicySource
    clock: Clock
    metrics: Metrics
    clock_watch: ClockWatch  # what time really passed, whatever the wall clock says
    chat: Chat | None = None
    pager: Pager | None = None
    tracker: IssueTracker | None = None
    incidents: IncidentSource | None = None  # set when incident_io.api_token is
    desks: dict[Source, Desk] = field(default_factory=dict)  # Zendesk, JSM: where notes go
    drill_pager: Pager | None = None  # the drill service; None: drills page nobody
    events: EventSource | None = None  # the customer-events calendar, when configured

    def now(self) -> datetime:
        """The clock's wall time, as the domain's aware UTC datetime."""
        return to_datetime(self.clock.now())

    def calendar(self) -> EventCalendar | None:
        """The customer events in force (None: no calendar configured)."""
        return self.events.current() if self.events is not None else None
    # The Escalation Engineer rotation; no roster file: nobody, and no EE step.
    roster: RosterSource = field(default_factory=lambda: RosterSource(None))

    @property
    def shadow(self) -> bool:
        return self.settings.mode == "shadow"

    def need_chat(self) -> Chat:
        if self.chat is None:
            raise Permanent("Slack is not configured (slack.bot_token)")
        return self.chat

    def need_pager(self) -> Pager:
        if self.pager is None:
            raise Permanent("PagerDuty is not configured (pagerduty.api_token)")
        return self.pager

    def need_tracker(self) -> IssueTracker:
        if self.tracker is None:
            raise Permanent("the tracker is not configured (tracker.token, tracker.project)")
        return self.tracker
