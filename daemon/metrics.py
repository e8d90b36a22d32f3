"""Prometheus metrics, one registry per app so tests and the demo never collide."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from daemon.domain.events import (
    ApprovalTimedOut,
    Approved,
    Classified,
    Declined,
    EEAssigned,
    EventKind,
    details_of,
)
from daemon.domain.fatigue import Load
from daemon.store.records import NewEvent

_LABEL = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _label(value: str) -> str:
    """A label value of a fixed shape (ids, team keys); anything else is "other"."""
    return value if _LABEL.fullmatch(value) else "other"

_LATENCY_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


_EE_STEPS = {EventKind.EE_OFFERED: "offered", EventKind.EE_ASSIGNED: "assigned",
             EventKind.EE_RESOLVED: "resolved_without_engineering",
             EventKind.EE_NEEDS_ENGINEERING: "needs_engineering",
             EventKind.EE_SKIPPED: "skipped", EventKind.EE_WAIT_OVER: "wait_over"}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "tier2gate_http_requests", "HTTP requests answered, by route and status",
            ["route", "status"], registry=self.registry,
        )
        # route x status children, looked up once: `labels()` validates and locks every time
        self._answered: dict[tuple[str, int], Any] = {}
        self.jobs = Gauge(
            "tier2gate_jobs", "Jobs in the store by state", ["state"], registry=self.registry
        )
        self.job_runs = Counter(
            "tier2gate_job_runs", "Job attempts by kind and result (done, retry, dead, lost)",
            ["kind", "result"], registry=self.registry,
        )
        self.job_latency = Histogram(
            "tier2gate_job_latency_seconds", "From when a job was due to when it finished",
            ["kind"], buckets=_LATENCY_BUCKETS_S, registry=self.registry,
        )
        self.dead_letters = Counter(
            "tier2gate_dead_letters", "Jobs that exhausted their attempts", ["kind"],
            registry=self.registry,
        )

        self.webhook_rejections = Counter(
            "tier2gate_webhook_rejections", "Inbound requests refused, by source and reason",
            ["source", "reason"], registry=self.registry,
        )
        # Per listener (public, admin): connections closed at once, before a byte was read,
        # because the listener already had `max_connections` open; and those open now.
        self.connections_refused = Counter(
            "tier2gate_connections_refused",
            "Connections closed unread because the listener was at its max_connections",
            ["listener"], registry=self.registry,
        )
        self.connections_open = Gauge(
            "tier2gate_connections_open", "Connections open now, by listener", ["listener"],
            registry=self.registry,
        )

        self.page_latency = Histogram(
            "tier2gate_page_latency_seconds", "From the approval to PagerDuty accepting the page",
            buckets=_LATENCY_BUCKETS_S, registry=self.registry,
        )
        self.approval_latency = Histogram(
            "tier2gate_approval_latency_seconds", "From the approval request to the decision",
            buckets=_LATENCY_BUCKETS_S, registry=self.registry,
        )

        self.escalations = Counter(
            "tier2gate_escalations", "Escalations classified, by outcome (re-classifications too)",
            ["outcome"], registry=self.registry,
        )
        self.approval_timeouts = Counter(
            "tier2gate_approval_timeouts", "Approval requests nobody decided in time, by fallback",
            ["fallback"], registry=self.registry,
        )
        self.approval_channel_refusals = Counter(
            "tier2gate_approval_channel_refusals",
            "Approval requests the approval channel refused (sent to the approvers directly "
            "instead), by the chat's error code", ["error"], registry=self.registry,
        )
        # Tier 2 load over the policy's fatigue window. Label values are PagerDuty user ids
        # and team names of a fixed shape (`_label`), never people's names.
        self.tier2_interruptions = Gauge(
            "tier2gate_tier2_interruptions", "Tier 2 engineers paged by tier2gate in the "
            "policy's fatigue window, by PagerDuty user id and bucket (business_hours, "
            "off_hours, sleep_hours, in the engineer's time zone)", ["responder", "bucket"],
            registry=self.registry)
        self.tier2_weekend_pages = Gauge(
            "tier2gate_tier2_weekend_pages", "Of those, pages on a weekend (engineer's time "
            "zone)", ["responder"], registry=self.registry)
        self.team_interruptions = Gauge(
            "tier2gate_tier2_team_interruptions", "Tier 2 interruptions in the fatigue window "
            "by the escalating team and bucket", ["team", "bucket"], registry=self.registry)
        self.team_weekend_ratio = Gauge(
            "tier2gate_tier2_team_weekend_weekday_ratio", "Weekend pages per weekday page in "
            "the fatigue window, by team (absent without a weekday page)", ["team"],
            registry=self.registry)
        self.pages_avoided = Gauge(
            "tier2gate_pages_avoided", "Emergencies declined or held, never paged, in the "
            "fatigue window, by bucket in the business time zone", ["bucket"],
            registry=self.registry)
        self.smoc_decisions = Gauge(
            "tier2gate_smoc_decisions", "SMOC approvals and declines in the fatigue window, by "
            "bucket in the business time zone", ["bucket"], registry=self.registry)
        self.needing_attention = Gauge(
            "tier2gate_escalations_needing_attention",
            "Escalations a person must act on: an effect failed for good or keeps failing",
            registry=self.registry,
        )
        # A label value must never be free text from outside: a reason per series would let
        # anyone who can decline grow the series without bound. The reasons are on the
        # timeline, in `report` and on the dashboard.
        self.declines = Counter(
            "tier2gate_declines", "Emergencies the SMOC declined, by whether a reason was given "
            "(given, none)", ["reason"], registry=self.registry,
        )

        self.clock_steps = Counter(
            "tier2gate_clock_steps", "Wall-clock steps seen while running, by direction",
            ["direction"], registry=self.registry,
        )
        self.clock_last_step = Gauge(
            "tier2gate_clock_last_step_seconds",
            "Size of the last wall-clock step seen (negative: backward); 0 when none",
            registry=self.registry,
        )
        self.fallbacks_deferred = Counter(
            "tier2gate_fallbacks_deferred",
            "Approval reminders and timeouts put off because the time the process measured "
            "disagreed with the wall clock, or the policy in force asks for more", ["kind"],
            registry=self.registry,
        )

        self.ee_steps = Counter(
            "tier2gate_ee_steps",
            "Escalation Engineer steps committed, by step (offered, assigned, "
            "resolved_without_engineering, needs_engineering, skipped, wait_over)", ["step"],
            registry=self.registry,
        )
        self.ee_engagement = Histogram(
            "tier2gate_ee_engagement_seconds",
            "From the offer to the EEs to an EE taking the escalation",
            buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400),
            registry=self.registry,
        )
        self._ee_owners: set[str] = set()  # every EE shown so far: one who owns none shows 0
        self.ee_open = Gauge(
            "tier2gate_ee_open_escalations",
            "Open escalations each Escalation Engineer owns (the whole store), by chat user id",
            ["ee"], registry=self.registry,
        )

        self.preflight_ok = Gauge(
            "tier2gate_preflight_ok",
            "Last preflight result per check (1 passed, 0 failed; see `tier2gate doctor`)",
            ["check"], registry=self.registry,
        )

        # The program's KPIs over the last `KPI_WINDOW_S` (daemon/reporting/kpi_metrics.py).
        # Labels are fixed names and the policy's canonical severities (bounded); "" when the
        # figure is not per severity.
        self.kpi = Gauge(
            "tier2gate_kpi", "Escalation KPIs over the last 30 days: minutes (p90) or shares "
            "(0-1); absent when nothing was counted", ["kpi", "severity"], registry=self.registry,
        )
        self.kpi_met = Gauge(
            "tier2gate_kpi_target_met", "Whether each KPI meets its target (1 met, 0 missed)",
            ["kpi", "severity"], registry=self.registry,
        )
        self.kpi_refreshed_s = 0.0  # monotonic time of the last refresh: at most once a minute

    def answered(self, route: str, status: int) -> None:
        """Count one HTTP answer (`tier2gate_http_requests_total{route,status}`)."""
        child = self._answered.get((route, status))
        if child is None:
            child = self._answered[(route, status)] = self.http_requests.labels(
                route, str(status))
        child.inc()

    def record(self, events: Iterable[NewEvent]) -> None:
        """Count the funnel from timeline entries as they are committed."""
        for entry in events:
            fact = details_of(entry.event, entry.details)
            match fact:
                case Classified():
                    self.escalations.labels(str(fact.outcome)).inc()
                case ApprovalTimedOut():
                    self.approval_timeouts.labels(str(fact.fallback)).inc()
                case Declined():
                    self.declines.labels("given" if str(fact.reason).strip() else "none").inc()
            if isinstance(fact, Approved | Declined) and fact.waited_s is not None:
                self.approval_latency.observe(float(fact.waited_s))
            step = _EE_STEPS.get(entry.event)
            if step is not None:
                self.ee_steps.labels(step).inc()
            if isinstance(fact, EEAssigned) and fact.after_s is not None:
                self.ee_engagement.observe(float(fact.after_s))

    def set_ee_open(self, per_owner: dict[str, int]) -> None:
        """The open escalations per EE now; an EE who owns none any more shows 0."""
        self._ee_owners.update(per_owner)
        for owner in self._ee_owners:
            self.ee_open.labels(owner).set(per_owner.get(owner, 0))

    def set_load(self, load: Load) -> None:
        """The Tier 2 load gauges over the policy's fatigue window (the whole store, like
        `tier2gate_escalations_needing_attention`); every scrape replaces every series, so an
        engineer no longer paged in the window drops out."""
        for gauge in (self.tier2_interruptions, self.tier2_weekend_pages, self.team_interruptions,
                      self.team_weekend_ratio, self.pages_avoided, self.smoc_decisions):
            gauge.clear()
        for engineer in load.engineers:
            who = _label(engineer.responder_id)
            for bucket, count in engineer.by_bucket.model_dump().items():
                self.tier2_interruptions.labels(who, bucket).inc(count)
            self.tier2_weekend_pages.labels(who).inc(engineer.weekend_pages)
        for team in load.teams:
            name = _label(team.team) if team.team else "none"
            for bucket, count in team.by_bucket.model_dump().items():
                self.team_interruptions.labels(name, bucket).inc(count)
            if team.weekend_weekday_ratio is not None:
                self.team_weekend_ratio.labels(name).set(team.weekend_weekday_ratio)
        for bucket, count in load.avoided.model_dump().items():
            self.pages_avoided.labels(bucket).set(count)
        for approver in load.approvers:
            for bucket, count in approver.by_bucket.model_dump().items():
                self.smoc_decisions.labels(bucket).inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
