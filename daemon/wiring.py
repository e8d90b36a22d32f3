"""Turning settings into a running daemon's parts: policy, vendor clients, job handlers.

Each vendor client is built only when its credentials are configured; a job that needs a
missing one is dead-lettered with a message naming the setting, never a crash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from daemon.clock import Clock
from daemon.clockwatch import ClockWatch
from daemon.domain.models import Source
from daemon.integrations import incident_io, pagerduty, slack
from daemon.integrations.desk import jsm_from_settings, zendesk_from_settings
from daemon.integrations.tracker import tracker_from_settings
from daemon.jobs.deps import Deps
from daemon.metrics import Metrics
from daemon.policy_source import PolicySource
from daemon.settings import Settings
from daemon.store import Store
from daemon.watch import Watch


@dataclass
class Parts:
    deps: Deps
    watch: Watch
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def build_parts(settings: Settings, store: Store, clock: Clock, metrics: Metrics) -> Parts:
    """Raises PolicyError when the policy file cannot be used (the daemon must not start)."""
    policy = PolicySource(settings.resolved_policy_file(), settle_s=settings.policy_settle_s,
                          monotonic=clock.monotonic)
    clock_watch = ClockWatch(clock, settings.clock.step_threshold_s, metrics)
    deps = Deps(settings=settings, store=store, policy=policy, clock=clock, metrics=metrics,
                clock_watch=clock_watch)
    parts = Parts(deps, Watch(clock_watch, policy, store, settings.clock.check_interval_s))
    if settings.slack.bot_token is not None and settings.slack.bot_token.get_secret_value():
        deps.chat = slack.Client.from_settings(settings.slack, settings.tls, clock)
    pd = settings.pagerduty
    if pd.api_token is not None or pd.tier2_routing_key is not None:
        pager = pagerduty.Client.from_settings(pd, settings.tls, clock)
        deps.pager = pager
        parts.closers.append(pager.close)
    if settings.incident_io.api_token is not None:
        incidents = incident_io.Client.from_settings(settings.incident_io, settings.tls,
                                                      clock)
        deps.incidents = incidents
        parts.closers.append(incidents.close)
    if settings.tracker.token is not None and settings.tracker.project:
        deps.tracker = tracker_from_settings(settings.tracker, settings.tls, clock)
    for source, desk in ((Source.ZENDESK, zendesk_from_settings(settings.zendesk, settings.tls,
                                                                clock)),
                         (Source.JSM, jsm_from_settings(settings.jsm, settings.tls, clock))):
        if desk is not None:
            deps.desks[source] = desk
    return parts
