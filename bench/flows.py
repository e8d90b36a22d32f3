"""The daemon's whole path against the Slack and PagerDuty fakes: click -> page, and the storm.

`tier2gate serve` runs as a subprocess configured only through `TIER2GATE_*` variables; the
fakes run in this process's event loop; webhooks and clicks are signed like the vendors'.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    HOST,
    INC_SECRET,
    Proc,
    peak_rss_mb,
    percentile,
    run_loadgen,
    start_serve,
)
from bench.vendors import Vendors, signed_click
from daemon.ingress.signatures import sign_standard_webhook
from tests.world import incident


def _pending(db: Path) -> int:
    """Jobs running or due now (future timers, like the SMOC reminder, do not count)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return int(conn.execute(
            "SELECT count(*) FROM jobs WHERE state = 'running'"
            " OR (state = 'queued' AND run_at <= ?)", (time.time(),)).fetchone()[0])


async def _idle(proc: Proc, timeout_s: float) -> float:
    """Wait until no job is running or due; returns the monotonic time that was first seen."""
    db = Path(proc.extra["db"])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(_pending, db) == 0:
            return time.monotonic()
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{_pending(db)} jobs still due after {timeout_s} s")


async def _emergencies(session: aiohttp.ClientSession, port: int, ids: list[str]) -> None:
    """Declare one SEV1 incident with "Support exhausted knowledge: Yes" per id."""
    semaphore = asyncio.Semaphore(16)

    async def one(incident_id: str) -> None:
        body = json.dumps(incident(incident_id=incident_id)).encode()
        headers = sign_standard_webhook(body, f"msg_{incident_id}", int(time.time()), INC_SECRET)
        headers["Content-Type"] = "application/json"
        async with semaphore, session.post(f"http://{HOST}:{port}/webhooks/incident-io",
                                           data=body, headers=headers) as response:
            if response.status != 202:
                raise RuntimeError(f"incident {incident_id}: {response.status}")

    await asyncio.gather(*(one(i) for i in ids))


async def click_to_page(tmp: Path, approvals: int = 200, **extra: str) -> dict[str, Any]:
    """p50/p99 from a signed Approve click leaving the client to the page reaching PagerDuty.

    One click at a time (each waits for its page, then 20 ms of quiet), so every figure is the
    latency of the path itself, not of a queue of other clicks."""
    async with Vendors(tmp) as vendors:
        # Live mode: the page must reach PagerDuty (`serve_env` starts in shadow mode).
        serve = await asyncio.to_thread(start_serve, tmp, "clicks", 30.0,
                                        **{**vendors.env(), "TIER2GATE_MODE": "live", **extra})
        try:
            async with aiohttp.ClientSession() as session:
                ids = [f"01CLICK{n:05d}" for n in range(approvals)]
                await _emergencies(session, serve.port, ids)
                deadline = time.monotonic() + 180
                while len(vendors.approval_requests()) < approvals:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"only {len(vendors.approval_requests())} approval "
                                           f"requests after 180 s")
                    await asyncio.sleep(0.05)
                await _idle(serve, 60)
                latencies = []
                url = f"http://{HOST}:{serve.port}/slack/interactions"
                for n, (escalation_id, ts) in enumerate(vendors.approval_requests()):
                    seen = len(vendors.arrivals.pages)
                    body, headers = signed_click(escalation_id, ts, f"1700000500.{n:06d}")
                    started = time.perf_counter()
                    async with session.post(url, data=body, headers=headers) as response:
                        if response.status != 200:
                            raise RuntimeError(f"click answered {response.status}")
                    while len(vendors.arrivals.pages) <= seen:
                        if time.perf_counter() - started > 30:
                            raise RuntimeError(f"no page 30 s after approving {escalation_id}")
                        await asyncio.sleep(0.0002)
                    latencies.append((vendors.arrivals.pages[seen] - started) * 1000)
                    await asyncio.sleep(0.02)
                await _idle(serve, 60)
            pages = len(vendors.pagerduty.pages)
        finally:
            serve.stop()
    return {"approvals": len(latencies), "pages": pages,
            "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
            "max_ms": max(latencies)}


async def storm(tmp: Path, deliveries: int = 10_000, incidents: int = 50, window_s: float = 20.0,
                **extra: str) -> dict[str, Any]:
    """`deliveries` signed incident.io deliveries (every one a new webhook id) spread over
    `incidents` SEV1 emergencies, sent open-loop within `window_s`; then every job drains."""
    async with Vendors(tmp) as vendors:
        serve = await asyncio.to_thread(start_serve, tmp, "storm", 30.0, **vendors.env(), **extra)
        try:
            started = time.monotonic()
            sent = await asyncio.to_thread(run_loadgen, {
                "url": f"http://{HOST}:{serve.port}/webhooks/incident-io", "kind": "incident_io",
                "variant": "emergency", "incidents": incidents, "mode": "open",
                "rate": deliveries / (window_s * 0.9), "count": deliveries,
                "duration_s": window_s, "concurrency": 256, "run_id": "storm",
            }, tmp)
            sent_s = time.monotonic() - started
            drained = await _idle(serve, 300)
            rss = peak_rss_mb(serve.pid)
            with sqlite3.connect(f"file:{tmp / 'tier2gate.db'}?mode=ro", uri=True) as db:
                stored, distinct, unprocessed = db.execute(
                    "SELECT count(*), count(DISTINCT delivery_id),"
                    " sum(state = 'stored') FROM deliveries WHERE source = 'incident_io'"
                ).fetchone()
                escalations = db.execute("SELECT count(*) FROM escalations").fetchone()[0]
            approvals = vendors.approval_requests()
        finally:
            serve.stop()
    return {
        "sent": sent["sent"], "accepted": sent["ok"], "statuses": sent["statuses"],
        "send_s": round(sent_s, 2), "drain_s": round(drained - started, 2),
        "stored": stored, "stored_distinct": distinct, "unprocessed": unprocessed,
        "escalations": escalations, "approval_requests": len(approvals),
        "distinct_escalations_asked": len({e for e, _ in approvals}),
        "peak_rss_mb": round(rss, 1), "ack_p99_ms": sent["p99_ms"],
    }
