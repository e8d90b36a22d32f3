"""The handbook: the shipped policy in words, equal to the committed docs/handbook.md."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.domain.policy_file import parse_policy
from daemon.handbook import render_handbook
from daemon.policy_source import load_policy
from daemon.settings import Settings, load_settings
from tests.harness import running

REPO = Path(__file__).resolve().parents[2]
REGENERATE = "tier2gate handbook > docs/handbook.md"


@pytest.fixture
def shipped_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The shipped settings file alone, whatever this machine's environment says."""
    for name in os.environ:
        if name.upper().startswith("TIER2GATE_"):
            monkeypatch.delenv(name)
    return load_settings(REPO / "config" / "tier2gate.yaml")


def test_docs_handbook_is_the_shipped_policy_in_words(shipped_settings: Settings) -> None:
    rendered = render_handbook(load_policy(REPO / "config" / "policy.yaml"), shipped_settings)
    committed = (REPO / "docs" / "handbook.md").read_text(encoding="utf-8")
    assert rendered == committed, f"docs/handbook.md is out of date: run `{REGENERATE}`"


def test_the_command_prints_it(shipped_settings: Settings, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(REPO)
    assert main(["handbook"]) == 0
    assert capsys.readouterr().out == (REPO / "docs" / "handbook.md").read_text()


POLICY = textwrap.dedent("""\
    severity_aliases: {S1: [SEV1], S2: [SEV2]}
    criteria_fields: {production_unstable: ["Production | unstable @all"]}
    business_hours:
      timezone: Europe/Berlin
      weekly: {mon: ["08:00-12:00", "13:00-18:00"]}
      holidays_country: DE
      holidays_subdivision: BY
      extra_holidays: [2026-12-24]
    default_outcome: rfh
    approval: {forbid_self_approval: true}
    rules:
      - name: "S2 in a migration <b>@all</b>"
        when: {severity: [S2], customer_event_active: true, off_hours: true}
        outcome: emergency
        reason: "# a heading? no | a cell? no"
        approval: {remind_after_minutes: 5, timeout_minutes: 45, on_timeout: hold}
""")


def test_it_follows_the_policy_and_escapes_what_people_wrote() -> None:
    settings = Settings(pagerduty={"smoc_schedule_id": "PSMOC01", "api_token": "pd-SECRET-x"},
                        approval={"backup_user_ids": ["UBACKUP"]},
                        slack={"bot_token": "xoxb-SECRET-y"})
    text = render_handbook(parse_policy(POLICY), settings)
    assert "### 1. S2 in a migration \\<b\\>@\u2060all\\</b\\>" in text
    assert "- the customer has an event in progress" in text
    assert "- it is outside business hours" in text
    assert "Production \\| unstable @\u2060all" in text
    assert "reminded after **5 minutes**; with no decision after **45 minutes**, the request " \
           "stays open" in text
    assert "| Monday | 08:00-12:00, 13:00-18:00 |" in text
    assert "| Saturday | weekend |" in text and "| Tuesday | closed |" in text
    assert "public holidays of **DE-BY**" in text and "2026-12-24" in text
    assert "All times are in **Europe/Berlin**" in text
    assert "PagerDuty schedule `PSMOC01` (the SMOC)" in text and "`UBACKUP`" in text
    assert "Nobody may approve an escalation they declared themselves" in text
    assert "SECRET" not in text
    assert "\n# a heading" not in text and "\\# a heading? no \\| a cell? no" in text


async def test_the_admin_listener_serves_the_policy_in_force(tmp_path: Path) -> None:
    async with running(tmp_path) as daemon:
        answer = await daemon.admin.get("/handbook")
        assert answer.status == 200
        assert answer.content_type == "text/markdown"
        text = await answer.text()
        policy = load_policy(REPO / "config" / "policy.yaml")
        assert f"fingerprint `{policy.fingerprint}`" in text
        assert "## Who approves" in text
        assert (await daemon.client.get("/handbook")).status == 404  # not on the public one


TEAMS = POLICY + textwrap.dedent("""\
    teams:
      - name: emea
        recognised_by:
          fields: {"Tier 1 team": [EMEA]}
          desk_groups: ["EMEA <Support>"]
        smoc_schedule_id: PSMOCEM
        backup_user_ids: [U0EMEALEAD]
        rules:
          - name: EMEA pages on S2
            when: {severity: [S2]}
            outcome: emergency
            reason: S2 is an emergency for EMEA
      - name: amer
        recognised_by: {jsm_projects: [AMS]}
""")


def test_each_team_says_who_approves_it_and_how_it_is_recognised() -> None:
    settings = Settings(pagerduty={"smoc_schedule_id": "PSMOC01"},
                        approval={"backup_user_ids": ["UBACKUP"]})
    text = render_handbook(parse_policy(TEAMS), settings)
    section = text.split("## Who approves", 1)[1]
    assert "**default (escalations no team recognises)**: whoever is on call on the PagerDuty " \
           "schedule `PSMOC01`" in section
    emea = section.split("**emea**", 1)[1].split("**amer**", 1)[0]
    assert "schedule `PSMOCEM` (the SMOC)" in emea and "`U0EMEALEAD`" in emea
    assert "`UBACKUP`" not in emea  # the team's own backups replace the settings'
    assert "Tier 1 team is EMEA" in emea and "Zendesk group `EMEA \\<Support\\>`" in emea
    assert "Its own rules, tried before the shared ones: EMEA pages on S2" in emea
    amer = section.split("**amer**", 1)[1]
    assert "schedule `PSMOC01`" in amer and "`UBACKUP`" in amer  # the settings fill in
    assert "Jira project `AMS`" in amer


def test_a_fixed_approver_named_with_a_schedule_is_the_one_the_handbook_names() -> None:
    """Given both, the daemon asks the fixed `smoc_user_id` and never looks the schedule up:
    the handbook must name that person, not the schedule."""
    settings = Settings(pagerduty={"smoc_schedule_id": "PSMOC01"},
                        approval={"smoc_user_id": "UFIXED"})
    text = render_handbook(parse_policy(TEAMS), settings)
    section = text.split("## Who approves", 1)[1]
    default = section.split("**emea**", 1)[0]
    assert "the Slack user `UFIXED` (the SMOC)" in default and "PSMOC01" not in default
