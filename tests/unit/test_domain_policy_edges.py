"""The policy's rules about rules: what only an emergency may say (approval timings, a wait for
an EE), what an ignored escalation may not (an EE offer), and runbook links. Each mistake is
refused where the support manager wrote it; driven through `parse_policy` on the shipped policy
with one edit each."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.domain.policy_file import PolicyError, parse_policy

SHIPPED = (Path(__file__).resolve().parents[2] / "config" / "policy.yaml").read_text()
RFH = "    runbook: runbooks/request-for-help.md\n    ee: {}\n"
IGNORE = "    outcome: ignore\n    reason: test-mode escalation\n"
TIMINGS = "      remind_after_minutes: 10   # nudge the SMOC in Slack\n"


def line_of(text: str, fragment: str) -> int:
    return text[:text.index(fragment)].count("\n") + 1


@pytest.mark.parametrize(("old", "new", "rule", "path", "message", "at"), [
    (RFH, RFH + "    approval: {timeout_minutes: 30}\n", "request for help", ".approval",
     "only emergency rules ask for approval", "    approval: {timeout_minutes: 30}"),
    (IGNORE, IGNORE + "    ee: {}  # offer tests too\n", "test incidents are ignored", ".ee",
     "an ignored escalation is offered to nobody", "    ee: {}  # offer tests too"),
    (RFH, RFH.replace("ee: {}", "ee: {wait_minutes: 15}"), "request for help",
     ".ee.wait_minutes", "only an emergency waits for an EE", "    ee: {wait_minutes: 15}"),
    (TIMINGS, "      remind_after_minutes: 30\n", "S1/S2 meeting an emergency criterion",
     ".approval", "remind_after_minutes must be less than timeout_minutes",
     "    approval: &smoc_approval"),
])
def test_a_rule_says_only_what_its_outcome_allows(old: str, new: str, rule: str, path: str,
                                                  message: str, at: str) -> None:
    assert SHIPPED.count(old) == 1
    text = SHIPPED.replace(old, new)
    with pytest.raises(PolicyError) as raised:
        parse_policy(text, "policy.yaml")
    problem = raised.value.problems[0]  # the shared timings (&smoc_approval) fail in two rules
    assert (problem.rule, problem.message) == (rule, message)
    assert problem.path.startswith("rules.") and problem.path.endswith(path)
    assert problem.line == line_of(text, at)


def test_an_explicit_null_runbook_is_no_runbook() -> None:
    text = SHIPPED.replace("    runbook: runbooks/request-for-help.md\n", "    runbook: null\n")
    (rule,) = [r for r in parse_policy(text, "policy.yaml").rules if r.name == "request for help"]
    assert rule.runbook is None
