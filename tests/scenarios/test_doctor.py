"""`tier2gate doctor` against the vendor stand-ins: all green when everything is set up, and each
documented mistake makes it exit 1 naming the check and the fix."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from daemon.cli import main
from daemon.clock import SystemClock
from daemon.metrics import Metrics
from daemon.policy_source import load_policy
from daemon.preflight import PreflightMonitor
from daemon.settings import load_settings
from daemon.standins.desks import FakeJsm, FakeZendesk
from daemon.standins.incident_io import FakeIncidentIo
from daemon.standins.pagerduty import FakePagerDuty
from daemon.standins.slack import FakeSlack
from daemon.standins.trackers import FakeGitLab
from daemon.wiring import build_vendors

CHANNEL, SCHEDULE, SERVICE = "C0APPROVALS", "PSMOC1", "PTIER2"
SMOC_ID, SMOC_EMAIL, FROM_EMAIL = "U0SMOC", "smoc@acme.example", "tier2gate@acme.example"
SIGNING_SECRET = "0123456789abcdef0123456789abcdef"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class Vendors:
    slack: FakeSlack
    pagerduty: FakePagerDuty
    incident_io: FakeIncidentIo
    gitlab: FakeGitLab
    config: Path


@pytest.fixture
async def vendors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Vendors]:
    for name in list(os.environ):
        if name.startswith("TIER2GATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    slack = FakeSlack(users_by_email={SMOC_EMAIL: SMOC_ID})
    pagerduty = FakePagerDuty(token="pd-token-0123456789", ca_file=tmp_path / "ca.pem")
    incident_io = FakeIncidentIo(token="inc-token-0123456789")
    gitlab = FakeGitLab("glpat-0123456789abcdef", "support/retros")
    async with slack, pagerduty, incident_io:
        await gitlab.start()
        try:
            pagerduty.set_oncall(SCHEDULE, "PSMOCUSER", SMOC_EMAIL)
            pagerduty.services[SERVICE] = "Tier 2"
            pagerduty.requesters = {FROM_EMAIL}
            for name in ("Support exhausted knowledge", "Production unstable",
                         "Recovery deadline", "Rollback not possible"):
                incident_io.add_custom_field(name, "single_select", ("Yes", "No"))
            incident_io.add_custom_field("Customer", "text")
            config = tmp_path / "tier2gate.yaml"
            config.write_text(yaml.safe_dump({
                "slack": {"bot_token": slack.token, "signing_secret": SIGNING_SECRET,
                          "api_url": slack.api_url, "approval_channel": CHANNEL},
                "pagerduty": {"api_token": pagerduty.token, "from_email": FROM_EMAIL,
                              "api_url": pagerduty.api_url, "smoc_schedule_id": SCHEDULE,
                              "tier2_service_id": SERVICE, "webhook_secrets": "pd-secret-1"},
                "incident_io": {"webhook_secret": WHSEC, "api_token": incident_io.token,
                                "api_url": incident_io.api_url},
                "tls": {"ca_file": str(pagerduty.ca_file)},
                "tracker": {"kind": "gitlab", "url": gitlab.url, "token": gitlab.token,
                            "project": "support/retros"},
            }))
            monkeypatch.setenv("TIER2GATE_CONFIG", str(config))
            yield Vendors(slack, pagerduty, incident_io, gitlab, config)
        finally:
            await gitlab.close()


async def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    # The command runs its own event loop; the stand-ins answer from this test's loop.
    code = await asyncio.to_thread(main, ["doctor", *args])
    return code, capsys.readouterr().out


async def test_everything_set_up_passes_every_check(
        vendors: Vendors, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = await doctor(capsys, "--format", "json")
    report = json.loads(out)
    assert code == 0, out
    assert report["ok"] is True
    statuses = {check["name"]: check["status"] for check in report["checks"]}
    for name in ("slack_token", "slack_scopes", "approval_channel", "smoc", "pagerduty_tier2",
                 "pagerduty_from_email", "incident_io_fields", "tracker",
                 "incident_io_webhook_secret", "slack_signing_secret",
                 "pagerduty_webhook_secrets"):
        assert statuses[name] == "ok", report
    assert vendors.gitlab.issues == []  # read-only: nothing was created
    code, text = await doctor(capsys)
    assert code == 0 and "✓ slack_token" in text and "all checks passed" in text


def _bot_not_in_channel(v: Vendors) -> None:
    v.slack.refuse(CHANNEL, "not_in_channel")


def _revoked_token(v: Vendors) -> None:
    v.slack.revoke()


def _missing_scope(v: Vendors) -> None:
    v.slack.scopes.discard("users:read.email")


def _custom_field_renamed(v: Vendors) -> None:
    v.incident_io.custom_fields[0]["name"] = "Support has exhausted its knowledge"


def _tracker_token_read_only(v: Vendors) -> None:
    v.gitlab.scopes = ["read_api"]


def _nobody_on_call(v: Vendors) -> None:
    v.pagerduty.set_oncalls_body({"oncalls": [], "limit": 25, "offset": 0, "more": False})


def _tier2_service_gone(v: Vendors) -> None:
    v.pagerduty.services.clear()


@pytest.mark.parametrize(("mistake", "check", "fix"), [
    (_bot_not_in_channel, "approval_channel", "/invite"),
    (_revoked_token, "slack_token", "reinstall the app"),
    (_missing_scope, "slack_scopes", "Bot Token Scopes"),
    (_custom_field_renamed, "incident_io_fields", "criteria_fields"),
    (_tracker_token_read_only, "tracker", "`api` scope"),
    (_nobody_on_call, "smoc", "schedule"),
    (_tier2_service_gone, "pagerduty_tier2", "tier2_service_id"),
], ids=lambda value: getattr(value, "__name__", "").strip("_") or None)
async def test_each_documented_mistake_fails_naming_the_check_and_the_fix(
        vendors: Vendors, capsys: pytest.CaptureFixture[str],
        mistake: Callable[[Vendors], None], check: str, fix: str) -> None:
    mistake(vendors)
    code, out = await doctor(capsys, "--format", "json")
    assert code == 1, out
    failing: dict[str, Any] = {c["name"]: c for c in json.loads(out)["checks"]
                               if c["status"] == "fail"}
    assert check in failing, out
    assert fix in failing[check]["fix"], failing[check]
    code, text = await doctor(capsys)
    assert code == 1 and f"✗ {check}" in text and "fix: " in text


async def test_a_malformed_incident_io_secret_fails_offline(
        vendors: Vendors, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET", "whsec_not base64!")
    code, out = await doctor(capsys, "--format", "json")
    failing = [c["name"] for c in json.loads(out)["checks"] if c["status"] == "fail"]
    assert code == 1 and failing == ["incident_io_webhook_secret"], out


async def test_the_daemons_monitor_shows_a_bot_removed_from_the_channel(
        vendors: Vendors) -> None:
    """The periodic run: readiness detail and metric turn red, and green again once fixed."""
    settings = load_settings()
    parts = build_vendors(settings, SystemClock())
    metrics = Metrics()
    policy = load_policy(settings.resolved_policy_file())
    monitor = PreflightMonitor(settings, lambda: policy, parts, metrics)
    try:
        await monitor.run_once()
        assert monitor.detail() == {"preflight": {"ok": True, "failing": []}}
        vendors.slack.refuse(CHANNEL, "not_in_channel")
        await monitor.run_once()
        detail = monitor.detail()["preflight"]
        assert isinstance(detail, dict) and detail["ok"] is False
        assert [c["name"] for c in detail["failing"]] == ["approval_channel"]
        assert 'tier2gate_preflight_ok{check="approval_channel"} 0.0' in (
            metrics.render().decode())
        vendors.slack.refused.clear()
        await monitor.run_once()
        assert 'tier2gate_preflight_ok{check="approval_channel"} 1.0' in (
            metrics.render().decode())
    finally:
        for close in parts.closers:
            await close()


# --- support desks ------------------------------------------------------------------------------

ZD_SECRET, JIRA_SECRET = "zd-signing-secret-0123456789abcdef", "jira-webhook-secret-0123456789"


@dataclass
class Desks:
    zendesk: FakeZendesk
    jsm: FakeJsm


@pytest.fixture
async def desks(vendors: Vendors, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Desks]:
    """Everything of `vendors`, plus a Zendesk and a JSM desk configured in full."""
    async with FakeZendesk("agent@acme.example", "zd-token-0123456789") as zendesk, \
            FakeJsm("agent@acme.example", "jsm-token-0123456789") as jsm:
        config = yaml.safe_load(vendors.config.read_text())
        config["zendesk"] = {"url": zendesk.url, "email": "agent@acme.example",
                             "api_token": "zd-token-0123456789", "webhook_secret": ZD_SECRET}
        config["jsm"] = {"url": jsm.url, "email": "agent@acme.example",
                         "api_token": "jsm-token-0123456789", "webhook_secret": JIRA_SECRET}
        vendors.config.write_text(yaml.safe_dump(config))
        yield Desks(zendesk, jsm)


async def test_without_desks_their_checks_are_skipped(
        vendors: Vendors, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = await doctor(capsys, "--format", "json")
    statuses = {c["name"]: c["status"] for c in json.loads(out)["checks"]}
    assert code == 0, out
    assert {statuses[name] for name in ("zendesk_api", "jsm_api", "zendesk_webhook_secret",
                                        "jsm_webhook_secret")} == {"skip"}


async def test_with_both_desks_configured_every_check_passes_and_nothing_is_written(
        desks: Desks, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = await doctor(capsys, "--format", "json")
    report = json.loads(out)
    assert code == 0, out
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    for name in ("zendesk_api", "jsm_api", "zendesk_webhook_secret", "jsm_webhook_secret"):
        assert statuses[name] == "ok", report
    assert ("GET", "/api/v2/users/me.json") in desks.zendesk.requests
    assert ("GET", "/rest/api/3/myself") in desks.jsm.requests
    assert all(method == "GET" for method, _ in desks.zendesk.requests + desks.jsm.requests)


def _zendesk_token_revoked(d: Desks) -> None:
    d.zendesk.revoke()


def _jsm_token_revoked(d: Desks) -> None:
    d.jsm.revoke()


def _zendesk_user_not_an_agent(d: Desks) -> None:
    d.zendesk.role = "end-user"


def _jsm_account_deactivated(d: Desks) -> None:
    d.jsm.active = False


@pytest.mark.parametrize(("mistake", "check", "fix"), [
    (_zendesk_token_revoked, "zendesk_api", "zendesk.api_token"),
    (_jsm_token_revoked, "jsm_api", "jsm.api_token"),
    (_zendesk_user_not_an_agent, "zendesk_api", "agent"),
    (_jsm_account_deactivated, "jsm_api", "active"),
], ids=lambda value: getattr(value, "__name__", "").strip("_") or None)
async def test_a_desk_mistake_fails_naming_the_check_and_the_fix(
        desks: Desks, capsys: pytest.CaptureFixture[str],
        mistake: Callable[[Desks], None], check: str, fix: str) -> None:
    mistake(desks)
    code, out = await doctor(capsys, "--format", "json")
    assert code == 1, out
    failing = {c["name"]: c for c in json.loads(out)["checks"] if c["status"] == "fail"}
    assert list(failing) == [check], out
    assert fix in failing[check]["fix"], failing[check]
    code, text = await doctor(capsys)
    assert code == 1 and f"✗ {check}" in text and "fix: " in text


@pytest.mark.parametrize(("variable", "value", "check"), [
    ("TIER2GATE_ZENDESK__WEBHOOK_SECRET", "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==",
     "zendesk_webhook_secret"),
    ("TIER2GATE_ZENDESK__WEBHOOK_SECRET", "pasted with spaces ", "zendesk_webhook_secret"),
    ("TIER2GATE_JSM__WEBHOOK_SECRET", "short", "jsm_webhook_secret"),
])
async def test_a_malformed_desk_secret_fails_offline(
        desks: Desks, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        variable: str, value: str, check: str) -> None:
    monkeypatch.setenv(variable, value)
    code, out = await doctor(capsys, "--format", "json")
    failing = [c["name"] for c in json.loads(out)["checks"] if c["status"] == "fail"]
    assert code == 1 and failing == [check], out


async def test_jsm_with_only_the_automation_token_passes_as_lower_assurance(
        vendors: Vendors, desks: Desks, capsys: pytest.CaptureFixture[str]) -> None:
    config = yaml.safe_load(vendors.config.read_text())
    del config["jsm"]["webhook_secret"]
    config["jsm"]["automation_token"] = "automation-token-0123456789abcdef"
    vendors.config.write_text(yaml.safe_dump(config))
    code, out = await doctor(capsys, "--format", "json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code == 0, out
    assert "lower assurance" in checks["jsm_webhook_secret"]["reason"]


async def test_a_calendar_url_that_fails_is_a_failing_check_that_keeps_its_secret(
        vendors: Vendors, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, out = await doctor(capsys, "--format", "json")
    assert {c["name"]: c["status"] for c in json.loads(out)["checks"]}["customer_events"] \
        == "skip"
    answers = [web.Response(status=404), web.Response(
        body=b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nEND:VCALENDAR\r\n",
        content_type="text/calendar")]

    async def calendar(_request: web.Request) -> web.Response:
        return answers.pop(0)

    app = web.Application()
    app.router.add_get("/private-RECOGNISABLE-token/basic.ics", calendar)
    async with TestServer(app) as server:
        monkeypatch.setenv("TIER2GATE_CUSTOMER_EVENTS__ICAL_URL",
                           str(server.make_url("/private-RECOGNISABLE-token/basic.ics")))
        code, out = await doctor(capsys, "--format", "json")
        assert code == 1
        [check] = [c for c in json.loads(out)["checks"] if c["name"] == "customer_events"]
        assert check["status"] == "fail" and "HTTP 404" in check["reason"]
        assert "RECOGNISABLE" not in out
        code, out = await doctor(capsys, "--format", "json")
        assert code == 0, out
