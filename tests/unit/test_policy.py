"""The decision core, by tables: the shipped policy, conditions, re-evaluation, file errors."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from daemon.domain.calendar import NaiveDatetimeError
from daemon.domain.models import Escalation, Source, Status
from daemon.domain.policy import (
    Approval,
    Decision,
    OnTimeout,
    Outcome,
    Policy,
    evaluate,
    reevaluate,
)
from daemon.domain.policy_file import PolicyError, dump_policy, parse_policy
from daemon.policy_source import load_policy

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "policy.yaml"
OPENED = datetime(2026, 3, 24, 10, 0, tzinfo=UTC)  # a Tuesday, inside business hours
CRITERION_RULE = "S1/S2 meeting an emergency criterion"
AGE_RULE = "S1 unresolved after 30 minutes"
RFH_RULE = "request for help"


@pytest.fixture(scope="module")
def shipped() -> Policy:
    return load_policy(SHIPPED)


def escalation(
    severity: str = "S3",
    fields: dict[str, str] | None = None,
    *,
    status: Status = Status.OPEN,
    test_mode: bool = False,
    source: Source = Source.INCIDENT_IO,
    customer: str = "",
    labels: tuple[str, ...] = (),
) -> Escalation:
    return Escalation(
        source=source,
        external_id="01HX",
        severity=severity,
        status=status,
        fields=fields or {},
        test_mode=test_mode,
        customer=customer,
        labels=labels,
        created_at=OPENED,
        updated_at=OPENED,
    )


def minutes(value: float) -> datetime:
    return OPENED + timedelta(minutes=value)


@pytest.mark.parametrize(
    ("case", "age", "outcome", "rule", "matched", "recheck_at"),
    [
        pytest.param(
            escalation("S1", {"Support exhausted knowledge": "Yes"}),
            1,
            Outcome.EMERGENCY,
            CRITERION_RULE,
            {"severity": "S1", "status": "open", "any_criteria": ["support_exhausted_knowledge"]},
            None,
            id="incident-io-S1-support-exhausted",
        ),
        pytest.param(
            escalation("SEV-2", {"production UNSTABLE": " checked "}, source=Source.PAGERDUTY),
            1,
            Outcome.EMERGENCY,
            CRITERION_RULE,
            {"severity": "S2", "status": "open", "any_criteria": ["production_unstable"]},
            None,
            id="alias-and-field-name-ignore-case",
        ),
        pytest.param(
            escalation("S2", {"Support exhausted knowledge": "No"}),
            1,
            Outcome.RFH,
            RFH_RULE,
            {},
            None,
            id="criterion-answered-no",
        ),
        pytest.param(
            escalation("S3", {"Rollback not possible": "yes"}),
            1,
            Outcome.RFH,
            RFH_RULE,
            {},
            None,
            id="S3-with-criterion-is-rfh",
        ),
        pytest.param(escalation("S3"), 1, Outcome.RFH, RFH_RULE, {}, None, id="S3-no-criteria"),
        pytest.param(
            escalation("S1"), 29, Outcome.RFH, RFH_RULE, {}, minutes(30), id="S1-at-29-min"
        ),
        pytest.param(
            escalation("S1"),
            30,
            Outcome.EMERGENCY,
            AGE_RULE,
            {"severity": "S1", "status": "open", "min_age_minutes": 30.0},
            None,
            id="S1-at-30-min",
        ),
        pytest.param(
            escalation("S1", status=Status.RESOLVED),
            30,
            Outcome.RFH,
            RFH_RULE,
            {},
            None,
            id="S1-resolved-at-30-min",
        ),
        pytest.param(
            escalation("S1", {"Support exhausted": "yes"}, test_mode=True),
            45,
            Outcome.IGNORE,
            "test incidents are ignored",
            {"test_mode": True},
            None,
            id="test-mode",
        ),
    ],
)
def test_shipped_policy(
    shipped: Policy,
    case: Escalation,
    age: float,
    outcome: Outcome,
    rule: str,
    matched: dict[str, object],
    recheck_at: datetime | None,
) -> None:
    decision = evaluate(shipped, case, minutes(age))
    assert (decision.outcome, decision.rule, decision.matched) == (outcome, rule, matched)
    assert decision.recheck_at == recheck_at


def test_shipped_emergency_carries_runbook_and_approval(shipped: Policy) -> None:
    decision = evaluate(shipped, escalation("P1", {"Recovery deadline": "TRUE"}), minutes(2))
    assert decision.runbook == "runbooks/emergency-page.md"
    assert decision.approval == Approval(
        remind_after_minutes=10, timeout_minutes=20, on_timeout=OnTimeout.PAGE
    )
    assert decision.reason == (
        "S1/S2 with an emergency criterion asserted by Support "
        "(severity=S1, status=open, any_criteria=recovery_deadline)"
    )
    assert decision.facts.severity == "S1"
    assert decision.facts.reported_severity == "P1"
    assert decision.facts.age_minutes == 2.0
    assert [c.value for c, v in decision.facts.criteria.items() if v] == ["recovery_deadline"]


@pytest.mark.parametrize(
    ("reported", "canonical"),
    [
        ("S1", "S1"),
        ("sev1", "S1"),
        ("SEV-1", "S1"),
        ("Sev 1", "S1"),
        ("sev_1", "S1"),
        ("critical", "S1"),
        ("P2", "S2"),
        ("major", "S2"),
        ("Moderate", "S3"),
        ("minor", "S4"),
        ("S5", None),
        ("", None),
    ],
)
def test_severity_aliases(shipped: Policy, reported: str, canonical: str | None) -> None:
    assert shipped.canonical_severity(reported) == canonical


CONDITIONS_POLICY = parse_policy(
    textwrap.dedent(
        """\
        severity_aliases: {S1: [P1]}
        criteria_fields:
          production_unstable: [Unstable]
          rollback_not_possible: [No rollback]
        business_hours: {timezone: Europe/Berlin, holidays_country: DE}
        default_outcome: rfh
        rules:
          - {name: both, when: {all_criteria: [production_unstable, rollback_not_possible]},
             outcome: emergency}
          - {name: vip, when: {customer: [ACME Corp]}, outcome: emergency}
          - {name: labelled, when: {labels_any: [Outage]}, outcome: emergency}
          - {name: slack, when: {source: slack}, outcome: ignore}
          - {name: weekend, when: {weekend: true}, outcome: emergency}
          - {name: evening, when: {off_hours: true}, outcome: ignore}
        """
    ),
    "conditions.yaml",
)
WEEKDAY_NOON = datetime(2026, 3, 24, 11, 0, tzinfo=UTC)  # Tuesday 12:00 in Berlin


@pytest.mark.parametrize(
    ("case", "now", "rule", "matched"),
    [
        (
            escalation(fields={"unstable": "yes", "no rollback": "1"}),
            WEEKDAY_NOON,
            "both",
            {"all_criteria": ["production_unstable", "rollback_not_possible"]},
        ),
        (escalation(fields={"unstable": "yes"}), WEEKDAY_NOON, None, {}),
        (escalation(customer="acme corp"), WEEKDAY_NOON, "vip", {"customer": "acme corp"}),
        (
            escalation(labels=("db", "OUTAGE")),
            WEEKDAY_NOON,
            "labelled",
            {"labels_any": ["OUTAGE"]},
        ),
        (escalation(source=Source.SLACK), WEEKDAY_NOON, "slack", {"source": "slack"}),
        # Friday 23:00 UTC is Saturday 00:00 in Berlin (CET).
        (escalation(), datetime(2026, 3, 27, 23, 0, tzinfo=UTC), "weekend", {"weekend": True}),
        (escalation(), datetime(2026, 3, 27, 22, 59, tzinfo=UTC), "evening", {"off_hours": True}),
        (escalation(), datetime(2026, 12, 25, 11, 0, tzinfo=UTC), "evening", {"off_hours": True}),
        (escalation(), datetime(2026, 3, 27, 15, 59, tzinfo=UTC), None, {}),
    ],
)
def test_each_condition(
    case: Escalation, now: datetime, rule: str | None, matched: dict[str, object]
) -> None:
    decision = evaluate(CONDITIONS_POLICY, case, now)
    assert (decision.rule, decision.matched) == (rule, matched)


def test_facts_are_judged_in_the_business_timezone() -> None:
    decision = evaluate(CONDITIONS_POLICY, escalation(), datetime(2026, 3, 27, 23, 0, tzinfo=UTC))
    assert (decision.facts.weekend, decision.facts.off_hours) == (True, True)


TIMED_POLICY = """\
severity_aliases: {S1: [], S2: []}
criteria_fields: {}
default_outcome: %s
rules:
  - {name: after 45, when: {severity: S2, min_age_minutes: 45}, outcome: emergency}
  - {name: after 10, when: {severity: S2, min_age_minutes: 10}, outcome: rfh}
  - {name: S2 emergency, when: {severity: S2}, outcome: emergency}
  - {name: after 5, when: {severity: S2, min_age_minutes: 5}, outcome: ignore}
"""


@pytest.mark.parametrize(
    ("age", "rule", "recheck_after"),
    [
        pytest.param(1, "S2 emergency", 10, id="earliest-preempting-timer"),
        pytest.param(10, "after 10", 45, id="next-timer"),
        pytest.param(45, "after 45", None, id="first-rule-wins-no-timer"),
    ],
)
def test_recheck_at_only_for_rules_that_would_decide_first(
    age: float, rule: str, recheck_after: float | None
) -> None:
    policy = parse_policy(TIMED_POLICY % "rfh", "timed.yaml")
    decision = evaluate(policy, escalation("S2"), minutes(age))
    assert decision.rule == rule
    assert decision.recheck_at == (None if recheck_after is None else minutes(recheck_after))


@pytest.mark.parametrize("default", ["emergency", "rfh"])
def test_test_mode_never_pages_whatever_the_rules_say(default: str) -> None:
    policy = parse_policy(TIMED_POLICY % default, "timed.yaml")
    by_rule = evaluate(policy, escalation("S2", test_mode=True), minutes(1))
    assert (by_rule.outcome, by_rule.rule, by_rule.approval) == (
        Outcome.IGNORE,
        "S2 emergency",
        None,
    )
    assert by_rule.reason == (
        "test-mode escalation never pages (rule 'S2 emergency' would have made it an emergency)"
    )
    by_default = evaluate(policy, escalation("S3", test_mode=True), minutes(1))
    assert by_default.outcome is (Outcome.IGNORE if default == "emergency" else Outcome.RFH)


def test_default_emergency_gets_default_approval() -> None:
    policy = parse_policy(TIMED_POLICY % "emergency", "timed.yaml")
    decision = evaluate(policy, escalation("S3"), minutes(1))
    assert (decision.outcome, decision.rule, decision.approval) == (
        Outcome.EMERGENCY,
        None,
        Approval(),
    )


def test_naive_now_is_refused(shipped: Policy) -> None:
    with pytest.raises(NaiveDatetimeError):
        evaluate(shipped, escalation(), datetime(2026, 3, 24, 10, 0))


def _decided(shipped: Policy, outcome: Outcome, *, test_mode: bool = False) -> Decision:
    case = {
        Outcome.EMERGENCY: escalation("S1", {"Production unstable": "yes"}, test_mode=test_mode),
        Outcome.RFH: escalation("S3", test_mode=test_mode),
    }[outcome]
    decision = evaluate(shipped, case, minutes(1))
    assert decision.outcome is (Outcome.IGNORE if test_mode else outcome)
    return decision


@pytest.mark.parametrize(
    ("previous", "requested", "new", "test_mode", "expected", "refused"),
    [
        pytest.param("rfh", False, "emergency", False, "emergency", False, id="rfh-upgrades"),
        pytest.param("rfh", True, "emergency", False, "emergency", False, id="rfh-upgrades-2"),
        pytest.param("ignore", False, "rfh", False, "rfh", False, id="ignore-to-rfh"),
        pytest.param("emergency", False, "rfh", False, "rfh", False, id="downgrade-before-ask"),
        pytest.param("emergency", True, "rfh", False, "emergency", True, id="downgrade-refused"),
        pytest.param("emergency", True, "emergency", False, "emergency", False, id="stays"),
        pytest.param("emergency", True, "emergency", True, "ignore", False, id="test-mode-wins"),
    ],
)
def test_reevaluate(
    shipped: Policy,
    previous: str,
    requested: bool,
    new: str,
    test_mode: bool,
    expected: str,
    refused: bool,
) -> None:
    fresh = _decided(shipped, Outcome(new), test_mode=test_mode)
    result = reevaluate(Outcome(previous), requested, fresh)
    assert result.outcome is Outcome(expected)
    assert (result == fresh) is not refused
    if refused:
        assert result.reason.startswith("downgrade to rfh refused: approval was already requested")
        assert result.facts == fresh.facts


BROKEN_BASE = """\
severity_aliases:
  S1: [P1]
criteria_fields:
  production_unstable: [Unstable]
default_outcome: rfh
rules:
  - name: unstable S1
    when:
      severity: [S1]
      any_criteria: [production_unstable]
    outcome: emergency
  - name: the rest
    outcome: rfh
"""


@pytest.mark.parametrize(
    ("old", "new", "line", "fragment"),
    [
        pytest.param(
            "      severity: [S1]\n",
            "      sevrity: [S1]\n",
            9,
            "rule 'unstable S1': rules.0.when.sevrity: unknown condition 'sevrity'; known: source",
            id="unknown-fact",
        ),
        pytest.param(
            "    outcome: rfh\n",
            "    outcome: escalate\n",
            13,
            "rule 'the rest': rules.1.outcome: 'escalate' is not allowed",
            id="unknown-outcome",
        ),
        pytest.param(
            "    outcome: rfh\n",
            "    outcome: rfh\n    page: true\n",
            14,
            "rule 'the rest': rules.1.page: unknown key 'page'",
            id="unknown-rule-key",
        ),
        pytest.param(
            "      any_criteria: [production_unstable]\n",
            "      any_criteria: [production_unstable, customer_angry]\n",
            10,
            "rule 'unstable S1': rules.0.when.any_criteria.1: 'customer_angry' is not allowed",
            id="unknown-criterion",
        ),
        pytest.param(
            "      severity: [S1]\n",
            "      severity: [S1, S2]\n",
            9,
            "rule 'unstable S1': rules.0.when.severity.1: unknown severity 'S2'; known: S1",
            id="unknown-severity",
        ),
        pytest.param(
            "  - name: the rest\n",
            "  - name: unstable S1\n",
            12,
            "rules.1.name: rule name 'unstable S1' is taken",
            id="duplicate-rule-name",
        ),
        pytest.param(
            "    outcome: emergency\n",
            "    outcome: emergency\n    runbook: runbooks/../../etc/passwd\n",
            12,
            "rules.0.runbook: 'runbooks/../../etc/passwd' must be a relative path under runbooks/",
            id="runbook-escapes",
        ),
        pytest.param(
            "    outcome: emergency\n",
            "    outcome: emergency\n    outcome: ignore\n",
            12,
            "rule 'unstable S1': rules.0.outcome: key 'outcome' appears twice",
            id="duplicate-key",
        ),
        pytest.param(
            "  S1: [P1]\n",
            "  S1: [P1, yes]\n",
            2,
            "severity_aliases.S1.1: True is not text",
            id="unquoted-yes",
        ),
        pytest.param(
            "default_outcome: rfh\n",
            "default_outcome: rfh\ndefault_outcom: rfh\n",
            6,
            "default_outcom: unknown key 'default_outcom'",
            id="unknown-top-key",
        ),
        pytest.param(
            "    when:\n      severity",
            "    when:\n     severity",
            10,  # where the parser notices, the line after the bad indentation
            "(document): not valid YAML",
            id="yaml-syntax",
        ),
        pytest.param(
            "default_outcome: rfh\n",
            "default_outcome: rfh\nbusiness_hours:\n  extra_holidays: [2026-12-24, 2026-02-30]\n",
            7,  # PyYAML reads it as a date and fails outside its own error type
            "business_hours.extra_holidays.1: '2026-02-30' is not a date",
            id="impossible-date",
        ),
    ],
)
def test_policy_file_errors_name_rule_and_line(
    old: str, new: str, line: int, fragment: str
) -> None:
    assert old in BROKEN_BASE
    with pytest.raises(PolicyError) as raised:
        parse_policy(BROKEN_BASE.replace(old, new, 1), "policy.yaml")
    assert raised.value.problems[0].line == line
    assert f"policy.yaml:{line}:" in str(raised.value)
    assert fragment in str(raised.value)


def test_unreadable_policy_file_is_a_policy_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError, match=r"nope\.yaml: \(document\): cannot read"):
        load_policy(missing)


def test_dump_is_the_effective_policy_and_reloads_to_the_same(shipped: Policy) -> None:
    dumped = dump_policy(shipped)
    assert dumped["rules"][1]["approval"] == {
        "remind_after_minutes": 10.0,
        "timeout_minutes": 20.0,
        "on_timeout": "page",
    }
    assert dumped["business_hours"]["weekly"]["mon"] == ["09:00-17:00"]
    assert parse_policy(yaml.safe_dump(dumped), "dumped.yaml") == shipped


def test_fatigue_thresholds_warn_in_words_and_a_bad_one_names_its_line() -> None:
    from daemon.domain.policy import Fatigue

    shipped = (Path(__file__).resolve().parents[2] / "config" / "policy.yaml").read_text()
    fatigue = Fatigue(warn_sleep_pages=2, warn_weekend_pages=None)
    assert fatigue.warnings(sleep_pages=1, weekend_pages=9, weekends_in_a_row=2) == (
        "weekends paged in a row: 2 (the policy warns at 2)",)
    assert fatigue.warnings(2, 0, 0) == ("sleep-hour pages: 2 (the policy warns at 2)",)
    assert parse_policy(shipped).fatigue == Fatigue()  # the shipped file states the defaults
    text = shipped.replace("  warn_sleep_pages: 1 ", "  warn_sleep_pages: -1 ")
    assert text != shipped
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    line = 1 + shipped.splitlines().index("  warn_sleep_pages: 1            # sleep-hour pages "
                                          "in the window (null: no warning)")
    assert str(caught.value).startswith(f"<policy>:{line}: fatigue.warn_sleep_pages: ")
