"""What check-config (and serve at start) can tell offline: live mode that could not work,
vendors set up in part, malformed secrets, typo'd environment variables, plain-word YAML
errors; and the Slack manifest for a public URL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from daemon.cli import main
from daemon.config_check import check_settings, errors
from daemon.customer_calendar import calendar_url
from daemon.settings import ConfigError, Settings, load_settings, unknown_environment
from daemon.slack_manifest import ManifestError, public_base, render_manifest
from tests.harness import INC_SECRET, PD_SECRET, SLACK_SECRET

REPO = Path(__file__).resolve().parents[2]

COMPLETE: dict[str, Any] = {
    "slack": {"bot_token": "xoxb-1", "signing_secret": SLACK_SECRET,
              "approval_channel": "C0APPROVALS"},
    "pagerduty": {"api_token": "pd-token", "from_email": "t2g@example.com",
                  "webhook_secrets": [PD_SECRET], "smoc_schedule_id": "PSMOC1",
                  "tier2_service_id": "PTIER2"},
    "incident_io": {"webhook_secret": INC_SECRET},
    "tracker": {"token": "glpat-x", "project": "ops/retros"},
}


def settings(**changes: Any) -> Settings:
    """COMPLETE with sections replaced (a section given as None is left at its defaults)."""
    data = {**COMPLETE, **changes}
    return Settings(**{key: value for key, value in data.items() if value is not None})


def messages(found: Settings, level: str = "error") -> list[str]:
    return [f.message for f in check_settings(found) if f.level == level]


def test_a_complete_live_setup_has_nothing_to_say() -> None:
    assert check_settings(settings()) == []


def test_live_mode_with_nothing_configured_names_each_missing_piece() -> None:
    found = messages(Settings())
    assert len(found) == 3
    assert found[0].startswith("live mode has no webhook source: set "
                               "TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET")
    assert found[1] == ("live mode cannot ask the SMOC in Slack: missing "
                        "TIER2GATE_SLACK__BOT_TOKEN, TIER2GATE_SLACK__SIGNING_SECRET, "
                        "slack.approval_channel")
    assert found[2].startswith("live mode has no way to page Tier 2")


def test_shadow_mode_only_warns_and_never_asks_for_a_pager() -> None:
    found = check_settings(Settings(mode="shadow"))
    assert errors(found) == []
    text = " ".join(f.message for f in found)
    assert "shadow mode has no webhook source" in text
    assert "no way to page" not in text


@pytest.mark.parametrize("pagerduty", [
    {"tier2_routing_key": "R0UTING"},
    {"api_token": "t", "tier2_service_id": "PTIER2", "from_email": "a@b.c"},
])
def test_either_way_to_page_is_enough(pagerduty: dict[str, Any]) -> None:
    found = settings(pagerduty={"webhook_secrets": [PD_SECRET], **pagerduty})
    assert not [m for m in messages(found) if "page" in m]


@pytest.mark.parametrize(("changes", "expected"), [
    ({"slack": {"bot_token": "xoxb-1", "approval_channel": "C1"}},
     "slack.bot_token is set but TIER2GATE_SLACK__SIGNING_SECRET is not"),
    ({"incident_io": {"api_token": "inc"}},
     "incident.io is configured (incident_io.api_token) but "
     "TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET is not"),
    ({"pagerduty": {**COMPLETE["pagerduty"], "webhook_secrets": [],
                    "source_service_ids": ["PSRC"]}},
     "pagerduty.source_service_ids names the services to escalate from but "
     "TIER2GATE_PAGERDUTY__WEBHOOK_SECRETS is not set"),
    ({"pagerduty": {**COMPLETE["pagerduty"], "from_email": None}},
     "pagerduty.tier2_service_id is set but pagerduty.from_email is not"),
    ({"pagerduty": {"webhook_secrets": [PD_SECRET], "tier2_routing_key": "R",
                    "smoc_schedule_id": "PSMOC1"}},
     "pagerduty.smoc_schedule_id is set but TIER2GATE_PAGERDUTY__API_TOKEN is not"),
    ({"pagerduty": {"webhook_secrets": [PD_SECRET], "tier2_routing_key": "R",
                    "tier2_schedule_id": "PT2SCHED"}},
     "pagerduty.tier2_schedule_id is set but TIER2GATE_PAGERDUTY__API_TOKEN is not"),
    ({"tracker": {"kind": "jira", "project": "OPS"}},
     "the jira tracker is set up in part: TIER2GATE_TRACKER__TOKEN is missing"),
    ({"incident_io": {"webhook_secret": "not-a-whsec"}},
     "TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET does not start with whsec_"),
    ({"incident_io": {"webhook_secret": "whsec_%%%not base64"}},
     "TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET is not valid base64"),
])
def test_a_vendor_set_up_in_part_is_an_error_naming_what_is_missing(
        changes: dict[str, Any], expected: str) -> None:
    found = messages(settings(**changes))
    assert any(message.startswith(expected) for message in found), found
    shadow = messages(settings(mode="shadow", **changes))
    assert any(message.startswith(expected) for message in shadow), "in any mode"


def test_errors_never_quote_a_secret() -> None:
    bad = "whsec_!!SECRET-VALUE!!"
    text = " ".join(messages(settings(incident_io={"webhook_secret": bad})))
    assert "SECRET-VALUE" not in text


def test_gaps_that_leave_part_of_the_flow_undone_are_warnings() -> None:
    found = settings(tracker=None, pagerduty={"webhook_secrets": [PD_SECRET],
                                              "tier2_routing_key": "R"})
    warnings = messages(found, "warning")
    assert errors(check_settings(found)) == []
    assert [w.split(":")[0] for w in warnings] == ["no tracker (tracker.token, tracker.project)",
                                                   "nobody can approve"]


@pytest.mark.parametrize(("name", "suggestion"), [
    ("TIER2GATE_SLACK_BOT_TOKEN", "TIER2GATE_SLACK__BOT_TOKEN"),
    ("TIER2GATE_PAGERDUTY__WEBHOOK_SECRET", "TIER2GATE_PAGERDUTY__WEBHOOK_SECRETS"),
    ("tier2gate_incident_io_webhook_secret", "TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET"),
    ("TIER2GATE_DATABASE__URL", "TIER2GATE_DATABASE_URL"),
])
def test_an_unknown_environment_variable_is_an_error_with_a_suggestion(
        monkeypatch: pytest.MonkeyPatch, name: str, suggestion: str) -> None:
    monkeypatch.setenv(name, "xoxb-s3cr3t-value")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert f"environment variable {name}: unknown setting (did you mean {suggestion}?)" \
        in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_names_used_by_the_repository_itself_and_real_settings_are_not_flagged() -> None:
    env = {"TIER2GATE_CONFIG": "x", "TIER2GATE_UPSTREAMS": "a b", "TIER2GATE_FUZZ_SEED": "1",
           "TIER2GATE_HTTP__PORT": "1", "TIER2GATE_MODE": "shadow", "PATH": "/bin",
           "TIER2GATE_RETRO__OPEN_ON": "page"}
    assert unknown_environment(env) == []
    assert unknown_environment({"TIER2GATE_NOPE": "1"}) == [
        "environment variable TIER2GATE_NOPE: unknown setting (settings are "
        "TIER2GATE_<SECTION>__<KEY>, see config/tier2gate.yaml)"]


@pytest.mark.parametrize(("text", "words"), [
    ("http:\n\tport: 80\n", "line 2: found character '\\t' that cannot start any token "
                             "(a tab character: YAML indents with spaces only)"),
    ("slack:\n  approval_channel: C1\n rfh_channel: C2\n", "line 3: expected <block end>"),
    ("public_url: \"https://x\n", "(a quote or bracket that is never closed)"),
    ("approval:\n  backup_user_ids: [U1, U2\n", "(a [list] that is never closed"),
    ("admin:\n  proxy_user_header: @me\n", "a value starting with `@`"),
])
def test_yaml_errors_say_what_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     text: str, words: str) -> None:
    path = tmp_path / "t2g.yaml"
    path.write_text(text)
    monkeypatch.setenv("TIER2GATE_CONFIG", str(path))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert words in str(caught.value)


def test_check_config_refuses_live_mode_that_could_not_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["check-config"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "tier2gate: error: live mode has no way to page Tier 2" in captured.err
    monkeypatch.setenv("TIER2GATE_MODE", "shadow")
    assert main(["check-config"]) == 0
    captured = capsys.readouterr()
    assert "tier2gate: warning: shadow mode has no webhook source" in captured.err
    assert "# effective settings" in captured.out


def test_jobs_on_a_missing_sqlite_file_refuses_and_creates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "typo" / "tier2gate.db"
    monkeypatch.setenv("TIER2GATE_DATABASE_URL", f"sqlite:///{db}")
    assert main(["jobs"]) == 1
    assert main(["jobs", "retry", "1"]) == 1
    assert f"database file {db} is missing" in capsys.readouterr().err
    assert not db.parent.exists()


def test_the_manifest_is_filled_in_for_the_public_url() -> None:
    manifest = yaml.safe_load(render_manifest("https://t2g.example.com/"))
    assert manifest["settings"]["interactivity"] == {
        "is_enabled": True, "request_url": "https://t2g.example.com/slack/interactions"}
    [command] = manifest["features"]["slash_commands"]
    assert (command["command"], command["url"]) == ("/tier2",
                                                    "https://t2g.example.com/slack/commands")
    assert manifest["oauth_config"]["scopes"]["bot"] == [
        "chat:write", "channels:history", "groups:history", "channels:read", "groups:read",
        "users:read", "users:read.email",
        "usergroups:read", "commands"]
    assert "HOST" not in render_manifest("https://t2g.example.com:8443/tier2gate")
    assert public_base("https://t2g.example.com:8443/tier2gate/") == \
        "https://t2g.example.com:8443/tier2gate"


@pytest.mark.parametrize(("url", "why"), [
    ("http://t2g.example.com", "must start with https://"),
    ("t2g.example.com", "must start with https://"),
    ("https://", "has no host name"),
    ("https://user:pw@t2g.example.com", "user name or password"),
    ("https://t2g.example.com/?x=1", "?query"),
    ("https://HOST", "replace HOST"),
])
def test_the_manifest_refuses_a_url_slack_could_not_use(url: str, why: str) -> None:
    with pytest.raises(ManifestError, match=why.replace("?", r"\?")):
        render_manifest(url)


def test_slack_manifest_command_prints_it_and_rejects_http(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["slack-manifest", "--public-url", "https://t2g.example.com"]) == 0
    assert "request_url: https://t2g.example.com/slack/interactions" in capsys.readouterr().out
    assert main(["slack-manifest", "--public-url", "http://t2g.example.com"]) == 1
    assert "--public-url: must start with https://" in capsys.readouterr().err


def test_the_manifest_in_deploy_is_the_one_the_command_fills_in() -> None:
    shipped = (REPO / "daemon" / "defaults" / "slack-manifest.yaml").read_text()
    assert (REPO / "deploy" / "slack" / "manifest.yaml").read_text() == shipped


def test_every_slack_method_the_client_calls_has_its_scope_in_the_manifest() -> None:
    """A new Web API method in the Slack client must come with its scope (or be known to need
    none): the manifest is what an operator installs."""
    needs = {"chat.postMessage": "chat:write", "chat.update": "chat:write",
             "chat.postEphemeral": "chat:write", "conversations.history": "channels:history",
             "conversations.replies": "channels:history", "views.open": "",
             "users.lookupByEmail": "users:read.email",
             "usergroups.users.list": "usergroups:read",
             # read by `tier2gate doctor` only
             "auth.test": "", "conversations.info": "channels:read", "users.info": "users:read"}
    source = (REPO / "daemon" / "integrations" / "slack.py").read_text()
    called = set(re.findall(r'_classified\("([a-zA-Z.]+)"\)', source))
    assert called == set(needs), "update `needs` and the manifest's scopes"
    scopes = yaml.safe_load(render_manifest("https://x.example"))["oauth_config"]["scopes"]["bot"]
    assert {scope for scope in needs.values() if scope} <= set(scopes)


@pytest.mark.parametrize("url", ["https://t2g.example.com/a: b", "https://t2g.example.com/x: [y",
                                 "https://t2g.example.com/a b",
                                 "https://t2g.example.com:99999"])
def test_slack_manifest_never_prints_a_broken_manifest(url: str) -> None:
    """A path with `: ` or `[` must not break the printed YAML, nor a space or an
    out-of-range port make URLs Slack cannot call: the URL is refused, or used as given."""
    try:
        text = render_manifest(url)
    except ManifestError:
        return
    manifest = yaml.safe_load(text)
    request_url = manifest["settings"]["interactivity"]["request_url"]
    assert " " not in request_url
    assert request_url.startswith(url.rstrip("/")) or request_url.startswith(
        url.replace(" ", "%20"))
    urlsplit(request_url).port  # noqa: B018 - raises on a port Slack cannot call


def test_check_config_names_a_kpi_target_for_a_severity_the_policy_does_not_know(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIER2GATE_MODE", "shadow")
    path = tmp_path / "t2g.yaml"
    path.write_text("kpi:\n  ack_minutes: {SEV1: 15}\n  retro_completion:\n    S1: 0.95\n"
                    "    sev2: 0.8\n")
    monkeypatch.setenv("TIER2GATE_CONFIG", str(path))
    assert main(["check-config"]) == 1
    err = capsys.readouterr().err
    assert (f"tier2gate: error: {path} line 2: kpi.ack_minutes.SEV1: unknown severity 'SEV1'; "
            "the policy's canonical severities: S1, S2, S3, S4") in err
    assert f"{path} line 5: kpi.retro_completion.sev2: unknown severity 'sev2'" in err
    path.write_text("kpi:\n  ack_minutes: {S1: 15, S2: 30}\n")
    assert main(["check-config"]) == 0


def test_check_config_names_the_line_and_key_of_customer_events(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIER2GATE_MODE", "shadow")
    (tmp_path / "events.yaml").write_text(
        "events:\n  - customer: Acme\n    kind: party\n"
        "    start: 2026-12-05T08:00:00+01:00\n    end: 2026-12-06T08:00:00+01:00\n")
    config = tmp_path / "t2g.yaml"
    config.write_text("customer_events:\n  files: [events.yaml]\n  headsup_time: '25:00'\n")
    monkeypatch.setenv("TIER2GATE_CONFIG", str(config))
    assert main(["check-config"]) == 1
    assert "t2g.yaml line 3: customer_events.headsup_time: Value error, '25:00' is not a " \
           "time of day" in capsys.readouterr().err
    config.write_text("customer_events:\n  files: [events.yaml]\n")
    assert main(["check-config"]) == 1
    err = capsys.readouterr().err
    assert "tier2gate: error: customer_events: events.yaml line 3: events[0].kind:" in err
    assert "set slack.tier2_channel for the weekend heads-up" in err
    (tmp_path / "events.yaml").write_text("events: []\n")
    assert main(["check-config"]) == 0


def test_an_unquoted_headsup_time_is_refused_by_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """YAML 1.1 reads `headsup_time: 15:00` as the number 900 (base 60): the error must say
    to quote it, not "Input should be a valid string"."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIER2GATE_MODE", "shadow")
    config = tmp_path / "t2g.yaml"
    config.write_text("customer_events:\n  headsup_time: 15:00\n")
    monkeypatch.setenv("TIER2GATE_CONFIG", str(config))
    assert main(["check-config"]) == 1
    assert ("t2g.yaml line 2: customer_events.headsup_time: Value error, write the time in "
            'quotes, e.g. "15:00"') in capsys.readouterr().err


def test_a_tier2_schedule_needs_the_api_token() -> None:
    found = messages(settings(pagerduty={**COMPLETE["pagerduty"], "api_token": None,
                                         "tier2_schedule_id": "PT2"}))
    assert any("pagerduty.tier2_schedule_id is set but TIER2GATE_PAGERDUTY__API_TOKEN" in m
               for m in found)


def test_a_calendar_url_that_is_no_web_address_is_named_without_quoting_it() -> None:
    """`webcal://` (what iCloud and Outlook hand out) is read as https://; anything else that
    is no http(s) address could only fail at every fetch, so check-config says so, without
    the address itself (a shared calendar's secret)."""
    sections = {"slack": {**COMPLETE["slack"], "tier2_channel": "C0TIER2"}}
    for url in ("webcal://p12-caldav.icloud.com/published/2/SECRETTOKEN",
                "https://calendar.google.com/calendar/ical/SECRETTOKEN/basic.ics"):
        assert messages(settings(customer_events={"ical_url": url}, **sections)) == []
    found = messages(settings(customer_events={"ical_url": "calendar.example.com/SECRETTOKEN"},
                              **sections))
    assert found == ["customer_events.ical_url is not an http(s) address: give the calendar's "
                     "https:// (or webcal://) address"]
    assert calendar_url("webcal://p12.icloud.com/x.ics") == "https://p12.icloud.com/x.ics"
    assert calendar_url("WEBCALS://p12.icloud.com/x.ics") == "https://p12.icloud.com/x.ics"
