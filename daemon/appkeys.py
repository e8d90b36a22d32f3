"""Typed keys for what the aiohttp app holds: one place, so handlers and wiring agree."""

from __future__ import annotations

from aiohttp import web

from daemon.metrics import Metrics
from daemon.settings import Settings
from daemon.store import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
METRICS = web.AppKey("metrics", Metrics)
CONFIG_PROBLEMS = web.AppKey("config_problems", list[str])
