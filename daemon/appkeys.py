"""Typed keys for what the aiohttp app holds: one place, so handlers and wiring agree."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from daemon.metrics import Metrics
from daemon.policy_source import PolicySource
from daemon.preflight import PreflightMonitor
from daemon.roster import RosterSource
from daemon.settings import Settings
from daemon.store import Store
from daemon.workers.runner import IntakeGauge

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
METRICS = web.AppKey("metrics", Metrics)
CONFIG_CHECKS = web.AppKey("config_checks", list[Callable[[], str]])
INTAKE = web.AppKey("intake", IntakeGauge)
"""Webhook deliveries in flight: the job runner yields to them during a burst."""
READY_DETAILS = web.AppKey("ready_details", list[Callable[[], dict[str, object]]])
"""Facts `/readyz` shows whatever its verdict (e.g. the last clock step), never reasons."""
CALENDAR_PROBLEM: web.AppKey[Callable[[], str]] = web.AppKey("calendar_problem")
"""Why the customer-events calendar is not current ("" when it is): shown on the dashboard."""
PREFLIGHT = web.AppKey("preflight", PreflightMonitor)
"""The daemon's periodic vendor checks, when enabled: `/readyz` detail and the dashboard."""
ROSTER = web.AppKey("roster", RosterSource)
"""The Escalation Engineer rotation: the dashboard's "Escalation Engineers" page reads it."""
POLICY = web.AppKey("policy", PolicySource)
"""The policy in force, when the daemon watches one: its business calendar judges the report's
weekend of an undecided escalation and the day of a responder whose time zone is unknown."""
