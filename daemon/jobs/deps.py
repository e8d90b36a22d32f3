"""What job handlers need, built once at start-up and passed down (no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from daemon.clock import Clock, to_datetime
from daemon.clockwatch import ClockWatch
from daemon.customer_calendar import EventSource
from daemon.domain.customer_events import EventCalendar
from daemon.domain.models import Source
from daemon.integrations.base import (
    ApprovalRequests,
    ChatRoles,
    Desk,
    EEOffers,
    EscalationForms,
    Identity,
    IncidentSource,
    IssueTracker,
    Notices,
    Pager,
    ThreadActivity,
)
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
    chat: ChatRoles | None = None  # the chat tool by role (`wiring.chat_roles`)
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

    def _need_chat(self) -> ChatRoles:
        if self.chat is None:
            raise Permanent("the chat is not configured (slack.bot_token)")
        return self.chat

    def need_requests(self) -> ApprovalRequests:
        """The chat's approval requests; `Permanent` when no chat is configured."""
        return self._need_chat().requests

    def need_notices(self) -> Notices:
        """The chat's notices; `Permanent` when no chat is configured."""
        return self._need_chat().notices

    def need_identity(self) -> Identity:
        """The chat's users and groups; `Permanent` when no chat is configured."""
        return self._need_chat().identity

    def need_ee_offers(self) -> EEOffers:
        """The chat's offers to the EEs; `Permanent` when no chat is configured or it cannot
        offer (the offer job skips the EE step before asking for it)."""
        offers = self._need_chat().ee_offers
        if offers is None:
            raise Permanent("the chat cannot offer escalations to the EEs")
        return offers

    def need_forms(self) -> EscalationForms:
        """The chat's `/tier2` form; `Permanent` when no chat is configured or it has none."""
        forms = self._need_chat().forms
        if forms is None:
            raise Permanent("the chat cannot open the escalation form")
        return forms

    @property
    def notices(self) -> Notices | None:
        return self.chat.notices if self.chat is not None else None

    @property
    def identity(self) -> Identity | None:
        return self.chat.identity if self.chat is not None else None

    @property
    def forms(self) -> EscalationForms | None:
        """None: no chat, or one without the `/tier2` form."""
        return self.chat.forms if self.chat is not None else None

    @property
    def ee_offers(self) -> EEOffers | None:
        """None: no chat, or one that cannot offer escalations to the EEs."""
        return self.chat.ee_offers if self.chat is not None else None

    @property
    def thread_activity(self) -> ThreadActivity | None:
        """None: no chat, or one whose threads cannot be read."""
        return self.chat.activity if self.chat is not None else None

    def need_pager(self) -> Pager:
        if self.pager is None:
            raise Permanent("PagerDuty is not configured (pagerduty.api_token)")
        return self.pager

    def need_tracker(self) -> IssueTracker:
        if self.tracker is None:
            raise Permanent("the tracker is not configured (tracker.token, tracker.project)")
        return self.tracker
