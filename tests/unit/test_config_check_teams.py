"""`check-config` on the policy's Tier 1 teams: ids of the wrong shape named by team, key and
line; teams whose SMOC cannot be looked up or nobody can approve for; the effective teams."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.cli import main
from daemon.config_check import check_teams
from daemon.domain.policy_file import PolicyError, parse_policy
from tests.unit.test_config_check import settings
from tests.unit.test_policy import SHIPPED

TEAMS = """
teams:
  - name: emea
    recognised_by:
      fields: {"Tier 1 team": EMEA}
    smoc_schedule_id: PSMOCEM
    approval_channel: C0EMEA
  - name: amer
    recognised_by:
      pagerduty_services: [PAMER01]
    smoc_user_id: UAMERSMOC
  - name: apac
"""


@pytest.mark.parametrize(("old", "new", "key"), [
    ("    approval_channel: C0EMEA\n", "    approval_channel: '#emea-approvals'\n",
     "teams.0.approval_channel"),
    ("    smoc_user_id: UAMERSMOC\n", "    smoc_user_id: amer-smoc@example.com\n",
     "teams.1.smoc_user_id"),
    ("    smoc_schedule_id: PSMOCEM\n", "    smoc_schedule_id: emea on-call\n",
     "teams.0.smoc_schedule_id"),
])
def test_an_id_of_the_wrong_shape_is_named_by_team_key_and_line(old: str, new: str,
                                                               key: str) -> None:
    line = (SHIPPED.read_text() + TEAMS[:TEAMS.index(old)]).count("\n") + 1
    with pytest.raises(PolicyError) as raised:
        parse_policy(SHIPPED.read_text() + TEAMS.replace(old, new), "policy.yaml")
    assert f"policy.yaml:{line}: team " in str(raised.value)
    assert f"{key}: String should match pattern" in str(raised.value)


def test_teams_that_cannot_work_are_named() -> None:
    policy = parse_policy(SHIPPED.read_text() + TEAMS, "policy.yaml")
    complete = settings()
    assert [f.message for f in check_teams(complete, policy)] == [
        "team 'apac' has no recognised_by: no escalation can belong to it"]
    without_token = settings(pagerduty={"webhook_secrets": ["x"]})
    found = [(f.level, f.message) for f in check_teams(without_token, policy)]
    assert found[0] == ("error", "team 'emea' names smoc_schedule_id PSMOCEM but "
                                 "TIER2GATE_PAGERDUTY__API_TOKEN is not set: its SMOC cannot be "
                                 "looked up")
    # AMER has a fixed SMOC; APAC falls back on the settings, whose schedule needs the token.
    assert ("warning", "nobody can approve for team 'apac': give it a smoc_schedule_id, "
                       "smoc_user_id or backups in the policy (or set them in the settings)"
            ) in found
    assert not any("'amer'" in message for _level, message in found)


def test_check_config_validates_the_teams_and_prints_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    policy = tmp_path / "policy.yaml"
    policy.write_text(SHIPPED.read_text() + TEAMS.replace("C0EMEA", "emea-approvals"))
    monkeypatch.setenv("TIER2GATE_MODE", "shadow")
    monkeypatch.setenv("TIER2GATE_POLICY_FILE", str(policy))
    assert main(["check-config"]) == 1
    err = capsys.readouterr().err
    assert f"{policy}:{len(SHIPPED.read_text().splitlines()) + 7}: team 'emea': " \
           "teams.0.approval_channel: String should match pattern" in err
    policy.write_text(SHIPPED.read_text() + TEAMS)
    assert main(["check-config"]) == 1  # EMEA's schedule needs the PagerDuty API key
    assert "error: team 'emea' names smoc_schedule_id" in capsys.readouterr().err
    monkeypatch.setenv("TIER2GATE_PAGERDUTY__API_TOKEN", "pd-token")
    assert main(["check-config"]) == 0
    captured = capsys.readouterr()
    assert "warning: team 'apac' has no recognised_by" in captured.err
    assert "teams:\n- name: emea\n" in captured.out


SHADOWED = """
teams:
  - name: emea
    recognised_by:
      fields: {"Tier 1 team": [EMEA, Europe]}
      slack_channels: [C0SUPPORT]
      desk_groups: ["EMEA Support"]
  - name: dedicated
    recognised_by:
      fields: {"tier 1 TEAM": [europe]}
      slack_channels: [C0DEDICATED, C0SUPPORT]
      desk_groups: ["emea support"]
      pagerduty_services: [PDEDICATED]
"""


def test_a_recogniser_another_team_already_claims_is_named_by_line() -> None:
    """Teams are tried in order, so a channel, field value or desk group that an earlier team
    lists can never recognise a later one: its escalations would go to the earlier team's
    approver without a word. The copy-paste is named at its line."""
    text = SHIPPED.read_text() + SHADOWED
    base = SHIPPED.read_text().count("\n")
    with pytest.raises(PolicyError) as raised:
        parse_policy(text, "policy.yaml")
    message = str(raised.value)
    assert (f"policy.yaml:{base + 10}: team 'dedicated': teams.1.recognised_by.fields.tier 1 "
            "TEAM.0: 'europe' already recognises team 'emea' (teams are tried in order: it "
            "could never recognise this one)"
            in message)
    assert (f"policy.yaml:{base + 11}: team 'dedicated': teams.1.recognised_by.slack_channels.1:"
            " 'C0SUPPORT' already recognises team 'emea'" in message)
    assert (f"policy.yaml:{base + 12}: team 'dedicated': teams.1.recognised_by.desk_groups.0: "
            "'emea support' already recognises team 'emea'" in message)
    assert "C0DEDICATED" not in message and "PDEDICATED" not in message


def test_a_rule_on_customer_events_without_a_calendar_is_named() -> None:
    """`customer_event_active: true` with no calendar configured can never hold: the S2
    during a migration the rule was written for would stay a request for help unnoticed."""
    rule = """
      - name: S2 during a migration
        when:
          severity: [S2]
          customer_event_active: true
        outcome: emergency
"""
    text = SHIPPED.read_text() + TEAMS.replace("  - name: apac\n",
                                               "  - name: apac\n    rules:" + rule)
    policy = parse_policy(text, "policy.yaml")
    found = [(f.level, f.message) for f in check_teams(settings(), policy)]
    assert ("warning", "team 'apac' rule 'S2 during a migration' needs a customer event "
                       "(customer_event_active: true) but no customer-events calendar is "
                       "configured (customer_events.files or ical_url): it can never "
                       "match") in found
    with_calendar = settings(customer_events={"files": ["events.yaml"]})
    assert not any("customer event" in f.message for f in check_teams(with_calendar, policy))
