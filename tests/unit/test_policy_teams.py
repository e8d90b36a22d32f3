"""Tier 1 teams in the policy, by tables: how a team is recognised (and in what order), its
rules tried before the shared ones, and the file's mistakes named by team, rule and line."""

from __future__ import annotations

import pytest

from daemon.domain.models import Escalation, Source
from daemon.domain.policy import Outcome, evaluate
from daemon.domain.policy_file import PolicyError, parse_policy
from daemon.domain.teams import DEFAULT_TEAM
from tests.unit.test_policy import OPENED, SHIPPED

TEAMS = """
teams:
  - name: emea
    recognised_by:
      fields: {"Tier 1 team": [EMEA, Europe]}
      slack_channels: C0EMEA
      desk_groups: ["EMEA Support"]
    smoc_schedule_id: PSMOCEM
  - name: amer
    recognised_by:
      fields: {"Tier 1 team": [AMER, "Americas, North"], "Request type": ["Americas outage"]}
      pagerduty_services: [PAMER01]
      desk_brands: ["Acme US"]
      jsm_projects: [AMS]
    rules:
      - name: amer pages for its S3 banks
        when:
          severity: [S3]
          customer: [Big Bank]
        outcome: emergency
        reason: AMER's banking customers page on S3
"""
POLICY = parse_policy(SHIPPED.read_text() + TEAMS, "policy.yaml")


def esc(source: Source = Source.INCIDENT_IO, *, fields: dict[str, str] | None = None,
        origin: str = "", labels: tuple[str, ...] = (), severity: str = "S3",
        customer: str = "") -> Escalation:
    return Escalation(source=source, external_id="X1", severity=severity, fields=fields or {},
                      origin=origin, labels=labels, customer=customer, created_at=OPENED,
                      updated_at=OPENED)


@pytest.mark.parametrize(("escalation", "team"), [
    pytest.param(esc(fields={"Tier 1 team": "EMEA"}), "emea", id="incident.io field"),
    pytest.param(esc(fields={"tier 1 TEAM": " europe "}), "emea", id="field, any case"),
    pytest.param(esc(fields={"Tier 1 team": "APAC, AMER"}), "amer", id="multi-select"),
    pytest.param(esc(fields={"Tier 1 team": "APAC"}), DEFAULT_TEAM, id="unknown value"),
    pytest.param(esc(fields={"Tier 1 team": "Americas, North"}), "amer",
                 id="one value with a comma"),
    pytest.param(esc(Source.PAGERDUTY, origin="PAMER01"), "amer", id="pagerduty service"),
    pytest.param(esc(Source.PAGERDUTY, origin="POTHER"), DEFAULT_TEAM, id="other service"),
    pytest.param(esc(Source.CHAT, origin="C0EMEA"), "emea", id="slack channel"),
    pytest.param(esc(Source.INCIDENT_IO, origin="C0EMEA"), DEFAULT_TEAM,
                 id="a channel id from another source means nothing"),
    pytest.param(esc(Source.ZENDESK, labels=("vip", "group:EMEA Support")), "emea",
                 id="zendesk group"),
    pytest.param(esc(Source.ZENDESK, labels=("brand:acme us",)), "amer", id="zendesk brand"),
    pytest.param(esc(Source.JSM, labels=("project:AMS",)), "amer", id="jsm project"),
    pytest.param(esc(Source.JSM, fields={"Request type": "Americas outage"}), "amer",
                 id="jsm request type as a named field"),
    pytest.param(esc(Source.INCIDENT_IO, labels=("group:EMEA Support",)), DEFAULT_TEAM,
                 id="desk labels only from a desk"),
    # What Support said wins over where it was declared.
    pytest.param(esc(Source.PAGERDUTY, origin="PAMER01", fields={"Tier 1 team": "EMEA"}),
                 "emea", id="field before service"),
    pytest.param(esc(Source.CHAT, origin="C0EMEA", fields={"Tier 1 team": "AMER"}), "amer",
                 id="field before channel"),
])
def test_a_team_is_recognised_in_the_documented_order(escalation: Escalation, team: str) -> None:
    assert evaluate(POLICY, escalation, OPENED).team == team


def test_the_default_team_takes_what_no_team_recognises() -> None:
    policy = parse_policy(SHIPPED.read_text() + TEAMS + "default_team: emea\n", "policy.yaml")
    assert evaluate(policy, esc(), OPENED).team == "emea"


def test_a_teams_rules_come_before_the_shared_ones_and_only_for_it() -> None:
    bank = esc(Source.PAGERDUTY, origin="PAMER01", severity="S3", customer="Big Bank")
    amer = evaluate(POLICY, bank, OPENED)
    assert (amer.outcome, amer.rule, amer.team) == (
        Outcome.EMERGENCY, "amer pages for its S3 banks", "amer")
    emea_bank = esc(fields={"Tier 1 team": "EMEA"}, severity="S3", customer="Big Bank")
    emea = evaluate(POLICY, emea_bank, OPENED)
    assert (emea.outcome, emea.rule) == (Outcome.RFH, "request for help")


def test_without_teams_the_fingerprint_is_what_it_was() -> None:
    """A policy without `teams:` must not look changed to a daemon upgraded to this version
    (a change re-judges every open escalation)."""
    shipped = parse_policy(SHIPPED.read_text(), "policy.yaml")
    assert shipped.teams is None and "team" not in shipped.model_dump_json(exclude_none=True)
    assert POLICY.fingerprint != shipped.fingerprint


BASE = SHIPPED.read_text()


@pytest.mark.parametrize(("old", "new", "fragment"), [
    pytest.param("  - name: amer\n", "  - name: emea\n",
                 "teams.1.name: team name 'emea' is taken", id="duplicate-team"),
    pytest.param("  - name: amer\n", "  - name: AMER team\n",
                 "teams.1.name: String should match pattern", id="bad-team-name"),
    pytest.param("      pagerduty_services:", "      pagerduty_service:",
                 "team 'amer': teams.1.recognised_by.pagerduty_service: unknown key",
                 id="unknown-recognition-key"),
    pytest.param("    smoc_schedule_id: PSMOCEM\n", "    smoc_schedule: PSMOCEM\n",
                 "team 'emea': teams.0.smoc_schedule: unknown key", id="unknown-team-key"),
    pytest.param("          severity: [S3]\n", "          severity: [S9]\n",
                 "team 'amer': rule 'amer pages for its S3 banks': "
                 "teams.1.rules.0.when.severity.0: unknown severity 'S9'",
                 id="team-rule-unknown-severity"),
    pytest.param("      - name: amer pages for its S3 banks\n",
                 "      - name: request for help\n",
                 "teams.1.rules.0.name: rule name 'request for help' is taken",
                 id="team-rule-named-like-a-shared-one"),
])
def test_team_mistakes_are_named_by_team_rule_and_line(old: str, new: str,
                                                      fragment: str) -> None:
    assert old in TEAMS
    text = BASE + TEAMS.replace(old, new, 1)
    line = (BASE + TEAMS[:TEAMS.index(old)]).count("\n") + 1  # the edited line is the culprit
    with pytest.raises(PolicyError) as raised:
        parse_policy(text, "policy.yaml")
    assert fragment in str(raised.value)
    assert raised.value.problems[0].line == line, str(raised.value)


def test_default_team_must_name_a_team() -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(BASE + TEAMS + "default_team: apac\n", "policy.yaml")
    assert "default_team: no team is named 'apac'; known: amer, default, emea" in str(
        raised.value)
    assert raised.value.problems[0].line == len((BASE + TEAMS).splitlines()) + 1


def test_the_example_in_the_shipped_policy_is_a_valid_teams_section() -> None:
    text = SHIPPED.read_text()
    start = text.index("# teams:")
    example = "\n".join(line[2:] for line in text[start:].splitlines())
    policy = parse_policy(text[:start] + example + "\n", "example.yaml")
    assert [team.name for team in policy.teams or ()] == ["emea", "amer"]
    assert policy.default_team == "amer"
    assert evaluate(policy, esc(fields={"Tier 1 team": "Europe"}), OPENED).team == "emea"


def test_desk_names_ignore_outer_spaces_like_field_values() -> None:
    """`desk_groups: ["EMEA Support "]` (a space typed at the end) names the group the ticket
    is in, as a field value with spaces around it does; the ticket's own name is trimmed."""
    spaced = TEAMS.replace('desk_groups: ["EMEA Support"]', 'desk_groups: [" EMEA Support "]')
    policy = parse_policy(SHIPPED.read_text() + spaced, "policy.yaml")
    ticket = esc(Source.ZENDESK, labels=("group:EMEA Support",))
    assert evaluate(policy, ticket, OPENED).team == "emea"
