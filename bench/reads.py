"""Reads over a year of data: the dashboard, a page of `/api/escalations` and `report` with
100,000 escalations in the store.

The store is seeded in the bench process through the store's own units (`apply_changes`, a
few thousand per transaction), so rows, JSON and timelines have the daemon's shapes: a busy
program's year, spread evenly over 365 days (about 8,200 in the dashboard's default 30 days),
15 % emergencies that went through approval, paging and a retro (some declined, some timed
out), 60 % requests for help, 25 % ignored, three awaiting a decision now and two needing
attention. Then `tier2gate serve` (defaults, SQLite) answers sequential requests on its admin
listener, and `tier2gate report` runs over the whole year.
"""

from __future__ import annotations

import asyncio
import functools
import json
import resource
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import HOST, PYTHON, cpu_seconds, free_port, percentile, serve_env, spawn
from daemon.domain.gate import DecisionState, Gate, PageState, Phase, Problem, Verdict
from daemon.domain.models import Criterion, Escalation, Person, Source, Status
from daemon.domain.policy import Decision, Facts, Outcome
from daemon.store import Changes, EscalationRow, NewEvent, open_store
from daemon.store.units import Unit, apply_changes

DAY = 86_400.0
BATCH = 2_000  # escalations per transaction while seeding


def _row(n: int, now: float, kind: str) -> Changes:
    """Escalation `n` of the year, of one `kind`, with the timeline that kind leaves."""
    opened = now - DAY * 365 * (n + 0.5) / 100_000 if kind not in ("waiting", "stuck") \
        else now - 600.0 * (n % 5 + 1)
    at = datetime.fromtimestamp(opened, UTC)
    emergency = kind in ("paged", "declined", "timed_out", "waiting", "stuck")
    outcome = (Outcome.EMERGENCY if emergency
               else Outcome.RFH if kind == "rfh" else Outcome.IGNORE)
    criteria = {c: emergency and c is Criterion.PRODUCTION_UNSTABLE for c in Criterion}
    facts = Facts(source=Source.INCIDENT_IO, status=Status.OPEN, severity="S1" if emergency
                  else "S3", reported_severity="SEV1", criteria=criteria, customer="ACME",
                  labels=(), age_minutes=0.0, weekend=at.weekday() >= 5,
                  off_hours=at.hour < 8, test_mode=False)
    decision = Decision(outcome=outcome, rule=None, reason="bench", matched={}, facts=facts)
    person = Person(chat_id="U0DECLARER", name="Dana Declarer")
    escalation = Escalation(
        source=Source.INCIDENT_IO, external_id=f"01BENCH{n:08}", reference=f"INC-{n}",
        title=f"Checkout is slow for customer {n % 997}", customer="ACME",
        severity="Critical" if emergency else "Minor", created_at=at, updated_at=at,
        declared_by=person, links={"incident": f"https://app.incident.io/incidents/{n}"})
    m = timedelta(minutes=1)
    events: list[tuple[str, float, str, dict[str, Any]]] = [
        ("received", opened, "incident_io", {"reference": f"INC-{n}", "title": escalation.title,
                                             "declared_by": person.model_dump(
                                                 exclude_defaults=True)}),
        ("classified", opened, "policy", {"outcome": outcome.value, "criteria": [
            c.value for c, held in criteria.items() if held], "weekend": facts.weekend})]
    phase = {"rfh": Phase.RFH, "ignored": Phase.IGNORED}.get(kind, Phase.AWAITING_APPROVAL)
    gate: dict[str, Any] = {}
    if emergency:
        events.append(("approval_requested", opened + 60, "tier2gate", {}))
    if kind in ("paged", "timed_out"):
        decided_at = opened + 60 * (4 + n % 17)
        by = "U0SMOC" if kind == "paged" else ""
        events += [("approved" if by else "approval_timed_out", decided_at, by or "tier2gate",
                    {} if by else {"after_minutes": 30, "fallback": "page"}),
                   ("paged", decided_at + 30, "tier2gate", {}),
                   ("acknowledged", decided_at + 60 * (2 + n % 9), "U0TIER2", {}),
                   ("resolved", decided_at + 3600 + n % 7200, "pagerduty", {}),
                   ("retro_opened", decided_at + 3700 + n % 7200, "tier2gate", {})]
        phase = Phase.CLOSED
        gate = {"decided": DecisionState(verdict=Verdict.APPROVED, by=by,
                                         at=datetime.fromtimestamp(decided_at, UTC)),
                "page": PageState(incident_id=f"PD{n}", at=at + m,
                                  url=f"https://acme.pagerduty.com/incidents/PD{n}"),
                "retro_url": f"https://gitlab.example.com/retro/-/issues/{n}"}
    elif kind == "declined":
        events.append(("declined", opened + 300, "U0SMOC", {"reason": "workaround exists"}))
        phase = Phase.DECLINED
        gate = {"decided": DecisionState(verdict=Verdict.DECLINED, by="U0SMOC", at=at + 5 * m,
                                         reason="workaround exists", pages=False)}
    elif kind == "stuck":
        gate = {"problems": (Problem(effect="page", reason="PagerDuty said 400", at=at),)}
    state = Gate(phase=phase, decision=decision, **gate)
    esc_id = f"esc-bench-{n:06}"
    row = EscalationRow(
        id=esc_id, source="incident_io", external_id=escalation.external_id,
        state=phase.value, outcome=outcome.value,
        data={"escalation": escalation.model_dump(mode="json"),
              "gate": state.model_dump(mode="json")},
        version=1, opened_at=opened, created_at=opened, updated_at=opened,
        attention=kind == "stuck")
    return Changes(escalation=row, events=tuple(
        NewEvent(esc_id, event, actor, when, details) for event, when, actor, details in events))


def _kind(n: int) -> str:
    if n < 3:
        return "waiting"
    if n < 5:
        return "stuck"
    share = n % 100
    if share < 12:
        return "paged"
    if share < 14:
        return "declined"
    if share < 15:
        return "timed_out"
    return "rfh" if share < 75 else "ignored"


def _bulk(changes: Sequence[Changes], now: float) -> Unit[None]:
    for change in changes:
        yield from apply_changes(change, now)


async def seed(db: Path, count: int, now: float) -> dict[str, float]:
    store = open_store(f"sqlite:///{db}")
    await store.open()
    started = time.monotonic()
    try:
        for start in range(0, count, BATCH):
            batch = [_row(n, now, _kind(n)) for n in range(start, min(count, start + BATCH))]
            await store.backend.run(functools.partial(_bulk, batch, now))
    finally:
        await store.close()
    return {"seed_s": round(time.monotonic() - started, 1)}


def _children_cpu_s() -> float:
    """User + system CPU time of the bench's finished children so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _get(url: str) -> tuple[float, bytes]:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback only
        body: bytes = response.read()
    return (time.perf_counter() - began) * 1000, body


def _summary(times: Sequence[float]) -> dict[str, float]:
    return {"n": len(times), "p50_ms": round(percentile(times, 50), 1),
            "p99_ms": round(percentile(times, 99), 1), "max_ms": round(max(times), 1)}


def reads(tmp: Path, count: int = 100_000, requests: int = 200) -> dict[str, Any]:
    """Seed, time `report` over the year, then the dashboard and API pages over HTTP."""
    db = tmp / "tier2gate.db"
    now = time.time()
    result: dict[str, Any] = {"escalations": count, **asyncio.run(seed(db, count, now)),
                              "db_mb": round(db.stat().st_size / 1e6, 1)}
    env = serve_env(tmp, free_port())
    report_runs, report_cpu = [], []
    for _ in range(3):
        began, cpu = time.monotonic(), _children_cpu_s()
        done = subprocess.run(  # noqa: S603 - fixed argv
            [PYTHON, "-m", "daemon", "report", "--since", "366d", "--format", "json"],
            cwd=tmp, env=env, capture_output=True, check=True, timeout=120)
        report_runs.append(time.monotonic() - began)
        report_cpu.append(_children_cpu_s() - cpu)
    reported = json.loads(done.stdout)
    # CPU time beside the wall time: on a machine shared with other test runs the wall time
    # follows the neighbours, the CPU time what the code costs.
    result["report"] = {"runs_s": [round(t, 2) for t in report_runs],
                        "median_s": statistics.median(report_runs),
                        "cpu_s": [round(t, 2) for t in report_cpu],
                        "median_cpu_s": statistics.median(report_cpu),
                        "escalations": reported["escalations"]}
    admin = free_port()
    env["TIER2GATE_ADMIN__PORT"] = str(admin)
    proc = spawn("reads", [PYTHON, "-m", "daemon", "serve"], tmp, tmp / "reads.log", env,
                 int(env["TIER2GATE_HTTP__PORT"]))
    try:
        proc.wait_http("/readyz", timeout_s=60)
        base = f"http://{HOST}:{admin}"
        for _ in range(5):  # warm-up: first requests load templates and fill caches
            _get(f"{base}/")
        cpu = cpu_seconds(proc.pid)
        dashboard = [_get(f"{base}/") for _ in range(requests)]
        result["dashboard"] = {**_summary([t for t, _ in dashboard]),
                               "cpu_ms_per_request": round(
                                   (cpu_seconds(proc.pid) - cpu) * 1000 / requests, 1),
                               "kb": round(len(dashboard[-1][1]) / 1000, 1)}
        first_ms, body = _get(f"{base}/api/escalations?since=366d&limit=50")
        cursor = json.loads(body)["next_cursor"]
        pages: list[float] = []
        seen, cpu = 50, cpu_seconds(proc.pid)
        while cursor and len(pages) < requests:
            took, body = _get(f"{base}/api/escalations?since=366d&limit=50&cursor={cursor}")
            page = json.loads(body)
            pages.append(took)
            seen += len(page["escalations"])
            cursor = page["next_cursor"]
        result["api_page"] = {**_summary(pages), "kb": round(len(body) / 1000, 1),
                              "cpu_ms_per_request": round(
                                  (cpu_seconds(proc.pid) - cpu) * 1000 / len(pages), 1),
                              "escalations_seen": seen,
                              "first_page_with_year_report_ms": round(first_ms, 1)}
    finally:
        proc.stop()
    return result
