"""`tier2gate drill --auto-approve` through a running daemon on the vendor stand-ins: every step
is printed with its latency, only the drill service is paged, the retro issue labelled drill
is opened and closed, and the report counts no drill."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from daemon.app import build_admin_app, build_app
from daemon.cli import main
from daemon.clock import SystemClock
from daemon.jobs.registry import handlers
from daemon.listeners import Listeners
from daemon.metrics import Metrics
from daemon.reporting import load_report
from daemon.settings import load_settings
from daemon.standins.pagerduty import FakePagerDuty
from daemon.standins.slack import FakeSlack
from daemon.standins.trackers import FakeGitLab
from daemon.store import Store
from daemon.store.sqlite import SqliteBackend
from daemon.wiring import build_parts

CHANNEL, SCHEDULE, TIER2, DRILL_SERVICE = "C0APPROVALS", "PSMOC1", "PTIER2", "PDRILL"
SMOC_ID, SMOC_EMAIL, FROM_EMAIL = "U0SMOC", "smoc@acme.example", "tier2gate@acme.example"


@dataclass
class Daemon:
    slack: FakeSlack
    pagerduty: FakePagerDuty
    gitlab: FakeGitLab
    store: Store
    listeners: Listeners


@pytest.fixture
async def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 request: pytest.FixtureRequest) -> AsyncIterator[Daemon]:
    """The daemon and its stand-ins; `drill.pagerduty_service_id` from the test's param
    (default: a drill service; None: no drill target)."""
    for name in list(os.environ):
        if name.startswith("TIER2GATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    slack = FakeSlack(users_by_email={SMOC_EMAIL: SMOC_ID})
    pagerduty = FakePagerDuty(token="pd-token-0123456789", ca_file=tmp_path / "ca.pem")
    gitlab = FakeGitLab("glpat-0123456789abcdef", "support/retros")
    async with slack, pagerduty:
        await gitlab.start()
        pagerduty.set_oncall(SCHEDULE, "PSMOCUSER", SMOC_EMAIL)
        config = tmp_path / "tier2gate.yaml"
        config.write_text(yaml.safe_dump({
            "database_url": f"sqlite:///{tmp_path / 'tier2gate.db'}",
            "http": {"host": "127.0.0.1", "port": 0},
            "admin": {"host": "127.0.0.1", "port": 0},
            "slack": {"bot_token": slack.token,
                      "signing_secret": "0123456789abcdef0123456789abcdef",
                      "api_url": slack.api_url, "approval_channel": CHANNEL},
            "pagerduty": {"api_token": pagerduty.token, "from_email": FROM_EMAIL,
                          "api_url": pagerduty.api_url, "smoc_schedule_id": SCHEDULE,
                          "tier2_service_id": TIER2},
            "drill": {"pagerduty_service_id": getattr(request, "param", DRILL_SERVICE)},
            "tls": {"ca_file": str(pagerduty.ca_file)},
            "tracker": {"kind": "gitlab", "url": gitlab.url, "token": gitlab.token,
                        "project": "support/retros"},
            "jobs": {"poll_interval_s": 0.05},
            "preflight": {"enabled": False},
            "log": {"level": "ERROR"},
        }))
        monkeypatch.setenv("TIER2GATE_CONFIG", str(config))
        settings = load_settings()
        clock = SystemClock()
        store = Store(SqliteBackend(tmp_path / "tier2gate.db", exclusive=True), clock)
        metrics = Metrics()
        parts = build_parts(settings, store, clock, metrics)
        app = build_app(settings, store, handlers=handlers(parts.deps), metrics=metrics,
                        on_close=parts.closers)
        listeners = Listeners(app, build_admin_app(app))
        await listeners.start()
        try:
            yield Daemon(slack, pagerduty, gitlab, store, listeners)
        finally:
            await listeners.stop()
            await gitlab.close()


async def test_drill_with_auto_approve_rehearses_every_step(
        daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    code = await asyncio.to_thread(main, [
        "drill", "--auto-approve", "--timeout", "60", "--admin-url", daemon.listeners.admin_url,
        "--public-url", daemon.listeners.public_url])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    for step in ("classified", "approval request posted", "decided", "page",
                 "retro issue opened and closed", "passed in"):
        assert step in captured.out
    assert "emergency per rule" in captured.out and "approved by U0SMOC" in captured.out
    assert captured.out.count("+") >= 5  # a latency per step

    [request] = [m for m in daemon.slack.messages.values() if m.thread_ts is None]
    assert "[DRILL]" in request.text
    assert any("DRILL" in str(block) for block in request.blocks)
    [page] = daemon.pagerduty.pages
    assert page["service"]["id"] == DRILL_SERVICE  # never the Tier 2 service
    [issue] = daemon.gitlab.issues
    assert "drill" in issue.labels and issue.state == "closed"
    assert issue.title.startswith("DRILL ")

    now = datetime.now(UTC)
    report = await load_report(daemon.store, now - timedelta(days=1), now + timedelta(hours=1))
    figures: dict[str, Any] = report.model_dump(mode="json")
    assert figures["escalations"] == 0
    assert figures["engineering"]["paged"] == 0
    # Nor in the funnel the alerts and Grafana read: a rehearsal is no escalation.
    async with (aiohttp.ClientSession() as session,
                session.get(daemon.listeners.admin_url + "/metrics") as answer):
        exposition = await answer.text()
    counted = [line for line in exposition.splitlines() if line.startswith((
        "tier2gate_escalations_total{", "tier2gate_approval_latency_seconds_count"))]
    assert counted and all(line.endswith(" 0.0") for line in counted), counted


@pytest.mark.parametrize("daemon", [None], indirect=True)
async def test_a_drill_without_a_drill_service_pages_nobody(
        daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    code = await asyncio.to_thread(main, [
        "drill", "--auto-approve", "--timeout", "60", "--admin-url", daemon.listeners.admin_url,
        "--public-url", daemon.listeners.public_url])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert "recorded without paging" in captured.out
    assert daemon.pagerduty.pages == []
    [issue] = daemon.gitlab.issues
    assert issue.state == "closed"


async def test_drill_says_when_the_daemon_is_not_running(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    code = await asyncio.to_thread(main, [
        "drill", "--timeout", "2", "--admin-url", "http://127.0.0.1:9"])
    assert code == 1
    assert "cannot reach the daemon" in capsys.readouterr().err
