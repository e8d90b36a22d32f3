"""Turning settings into a running daemon's parts: policy, vendor clients, job handlers.

Each vendor client is built only when its credentials are configured; a job that needs a
missing one is dead-lettered with a message naming the setting, never a crash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from daemon.clock import Clock, to_datetime
from daemon.clockwatch import ClockWatch
from daemon.customer_calendar import EventSource
from daemon.domain.models import Source
from daemon.integrations import incident_io, pagerduty, slack
from daemon.integrations.base import ChatClient, ChatRoles
from daemon.integrations.desk import jsm_from_settings, zendesk_from_settings
from daemon.integrations.tracker import tracker_from_settings
from daemon.jobs.deps import Deps
from daemon.metrics import Metrics
from daemon.policy_source import PolicySource
from daemon.preflight import PreflightMonitor, Vendors
from daemon.roster import RosterSource
from daemon.settings import Settings
from daemon.store import Store
from daemon.watch import Watch


@dataclass
class Parts:
    deps: Deps
    watch: Watch
    vendors: Vendors
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def preflight(self) -> PreflightMonitor | None:
        """The daemon's periodic preflight, unless `preflight.enabled` is false."""
        settings = self.deps.settings
        if not settings.preflight.enabled:
            return None
        return PreflightMonitor(settings, self.deps.policy.current, self.vendors,
                                self.deps.metrics)


def build_vendors(settings: Settings, clock: Clock) -> Vendors:
    """Every vendor client the settings configure, built once and shared by the job handlers
    and the preflight (`tier2gate doctor` builds them alone)."""
    vendors = Vendors()
    if settings.slack.bot_token is not None and settings.slack.bot_token.get_secret_value():
        vendors.chat = slack.Client.from_settings(settings.slack, settings.tls, clock)
    pd = settings.pagerduty
    if pd.api_token is not None or pd.tier2_routing_key is not None:
        pager = pagerduty.Client.from_settings(pd, settings.tls, clock)
        vendors.pager = pager
        vendors.closers.append(pager.close)
    if settings.incident_io.api_token is not None:
        incidents = incident_io.Client.from_settings(settings.incident_io, settings.tls,
                                                      clock)
        vendors.catalog = incidents
        vendors.closers.append(incidents.close)
    if settings.tracker.token is not None and settings.tracker.project:
        tracker = tracker_from_settings(settings.tracker, settings.tls, clock)
        vendors.tracker = tracker

        async def close_tracker() -> None:
            tracker.close()

        vendors.closers.append(close_tracker)
    zendesk = zendesk_from_settings(settings.zendesk, settings.tls, clock)
    if zendesk is not None:
        vendors.zendesk = zendesk
        vendors.closers.append(_closer(zendesk.close))
    jsm = jsm_from_settings(settings.jsm, settings.tls, clock)
    if jsm is not None:
        vendors.jsm = jsm
        vendors.closers.append(_closer(jsm.close))
    return vendors


def _closer(close: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def closing() -> None:
        close()

    return closing


def event_source(settings: Settings, policy: PolicySource, clock: Clock) -> EventSource | None:
    """The customer-events calendar, read in the policy's business timezone; None when no
    file or URL is configured."""
    if not settings.customer_events.configured:
        return None
    return EventSource(settings.customer_events, lambda: policy.current().business_hours.zone,
                       lambda: to_datetime(clock.now()), ca_file=settings.tls.ca_file,
                       monotonic=clock.monotonic)


def slack_roles(client: ChatClient) -> ChatRoles:
    """Slack plays every role of a chat."""
    return ChatRoles(requests=client, notices=client, identity=client, forms=client,
                     ee_offers=client, activity=client)


def build_parts(settings: Settings, store: Store, clock: Clock, metrics: Metrics, *,
                chat: ChatRoles | None = None) -> Parts:
    """Raises PolicyError when the policy file cannot be used, RosterError when the EE roster
    cannot be (the daemon must not start). `chat`: the chat to run on instead of the
    configured Slack (the scenario tests' text chat); the one place a chat is chosen."""
    policy = PolicySource(settings.resolved_policy_file(), settle_s=settings.policy_settle_s,
                          monotonic=clock.monotonic)
    clock_watch = ClockWatch(clock, settings.clock.step_threshold_s, metrics)
    deps = Deps(settings=settings, store=store, policy=policy, clock=clock, metrics=metrics,
                clock_watch=clock_watch, events=event_source(settings, policy, clock),
                roster=RosterSource(settings.ee.roster_file))
    vendors = build_vendors(settings, clock)
    parts = Parts(deps, Watch(clock_watch, policy, store, settings.clock.check_interval_s,
                              deps.events, morning_queue=settings.rfh.morning_queue),
                  vendors, closers=list(vendors.closers))
    deps.chat = chat or (slack_roles(vendors.chat) if vendors.chat is not None else None)
    deps.pager = vendors.pager
    deps.incidents, deps.tracker = vendors.catalog, vendors.tracker
    drill = settings.drill
    if drill.pagerduty_service_id or drill.pagerduty_routing_key is not None:
        # The same account and credentials, another service: a drill never reaches Tier 2.
        target = settings.pagerduty.model_copy(update={
            "tier2_service_id": drill.pagerduty_service_id,
            "tier2_routing_key": drill.pagerduty_routing_key})
        drill_pager = pagerduty.Client.from_settings(target, settings.tls, clock)
        deps.drill_pager = drill_pager
        parts.closers.append(drill_pager.close)
    # The desk clients doctor checks are the ones that write the notes.
    for source, desk in ((Source.ZENDESK, vendors.zendesk), (Source.JSM, vendors.jsm)):
        if desk is not None:
            deps.desks[source] = desk  # type: ignore[assignment]
    return parts
