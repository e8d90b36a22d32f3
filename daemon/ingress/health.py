"""Liveness, readiness and metrics: what load balancers, Kubernetes and Prometheus ask."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from daemon.appkeys import CONFIG_CHECKS, METRICS, POLICY, READY_DETAILS, SETTINGS, STORE
from daemon.domain.policy import Fatigue
from daemon.reporting import kpi_metrics
from daemon.reporting.load import load_load
from daemon.store import StoreUnavailable


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _problems(request: web.Request) -> list[str]:
    problems = [problem for check in request.app[CONFIG_CHECKS] if (problem := check())]
    try:
        await request.app[STORE].ping()
    except StoreUnavailable as exc:
        problems.append(f"store: {exc}")
    except Exception as exc:  # noqa: BLE001 - readiness must answer 503, never 500
        problems.append(f"store: unexpected {type(exc).__name__}")
    return problems


async def readyz(request: web.Request) -> web.Response:
    """Public: 200 only when the store answers and the configuration is usable, else 503.
    Why is said on the admin listener only: the reasons name the database and the policy."""
    if await _problems(request):
        return web.json_response({"status": "unavailable"}, status=503)
    return web.json_response({"status": "ready"})


async def readyz_detailed(request: web.Request) -> web.Response:
    """Admin: as `readyz`, with the reasons."""
    problems = await _problems(request)
    details: dict[str, object] = {}
    for detail in request.app.get(READY_DETAILS, ()):
        details.update(detail())
    if problems:
        return web.json_response({"status": "unavailable", "problems": problems, **details},
                                 status=503)
    return web.json_response({"status": "ready", **details})


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS]
    try:
        counts = await request.app[STORE].job_counts()
        attention = await request.app[STORE].count_needing_attention()
        if SETTINGS in request.app:
            await kpi_metrics.refresh(registry, request.app[STORE], request.app[SETTINGS])
        ee_open = await request.app[STORE].ee_open_per_owner()
    except StoreUnavailable:
        counts = None
    if counts is not None:
        for state in ("queued", "running", "done", "dead"):
            registry.jobs.labels(state).set(counts.get(state, 0))
        registry.needing_attention.set(attention)
        registry.set_ee_open(ee_open)
        await _load_gauges(request)
    return web.Response(body=registry.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _load_gauges(request: web.Request) -> None:
    """The Tier 2 load over the policy's fatigue window: one range read of its page entries."""
    store = request.app[STORE]
    policy = request.app[POLICY].current() if POLICY in request.app else None
    window_days = (policy.fatigue if policy else Fatigue()).window_days
    zone = policy.business_hours.zone if policy else ZoneInfo("UTC")
    now = datetime.fromtimestamp(store.clock.now(), UTC)
    try:
        load = await load_load(store, now - timedelta(days=window_days),
                               now + timedelta(seconds=1), zone)
    except StoreUnavailable:
        return  # the other gauges keep their last values too
    request.app[METRICS].set_load(load)
