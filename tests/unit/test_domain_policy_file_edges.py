"""The policy's text → `Policy`, at its edges: every mistake is a `PolicyError` that names the
file, the line and (inside a rule) the rule, never a Python error or a pydantic dump. Driven
through `parse_policy` on the shipped policy with one edit each."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.domain.policy_file import PolicyError, parse_policy

SHIPPED = (Path(__file__).resolve().parents[2] / "config" / "policy.yaml").read_text()
RFH_RULE = "  - name: request for help\n"


def error(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as raised:
        parse_policy(text, "policy.yaml")
    return raised.value


@pytest.mark.parametrize("text", [
    "rules: &r [*r]\n",
    "default_outcome: rfh\nbusiness_hours: &h {weekly: *h}\n",
])
def test_a_value_that_contains_itself_is_a_policy_error(text: str) -> None:
    problem = error(text)
    assert str(problem) == ("policy.yaml: (document): an alias (*name) inside the value its "
                            "anchor (&name) marks: the value would contain itself")


@pytest.mark.parametrize(("text", "message"), [
    ("", "policy.yaml:1: (document): expected a mapping of sections"),
    ("- rules\n", "policy.yaml:1: (document): expected a mapping of sections"),
    # PyYAML fails outside its own error type on a tag it cannot honour.
    ("default_outcome: !!float rfh\n",
     "policy.yaml: (document): not valid YAML: could not convert string to float: 'rfh'"),
])
def test_a_document_that_is_no_policy_says_so(text: str, message: str) -> None:
    assert str(error(text)) == message


def test_an_impossible_date_inside_a_rule_names_its_key_and_line() -> None:
    text = SHIPPED.replace(RFH_RULE, RFH_RULE + "    reason: 2026-02-30\n", 1)
    line = text[:text.index("2026-02-30")].count("\n") + 1
    (problem,) = error(text).problems
    assert (problem.line, problem.path) == (line, f"rules.{_rfh_index(text)}.reason")
    assert problem.message.startswith("'2026-02-30' is not a date")


def _rfh_index(text: str) -> int:
    """The index of the request-for-help rule among the shipped `rules`."""
    rules = text[text.index("\nrules:"):]
    return rules[:rules.index(RFH_RULE)].count("\n  - name:")


def test_a_missing_key_points_at_the_rule_that_lacks_it() -> None:
    text = SHIPPED.replace(RFH_RULE, "  - name: no outcome\n    reason: forgot it\n" + RFH_RULE, 1)
    line = text[:text.index("  - name: no outcome")].count("\n") + 1
    (problem,) = error(text).problems
    assert (problem.line, problem.rule, problem.message) == (line, "no outcome", "Field required")
    assert problem.path.endswith(".outcome")


def test_a_severity_that_is_already_an_alias_points_at_its_own_key() -> None:
    text = SHIPPED.replace("\ncriteria_fields:", "\n  P1: [Blocker]\ncriteria_fields:", 1)
    (problem,) = error(text).problems
    line = text[:text.index("  P1: [Blocker]")].count("\n") + 1
    assert (problem.line, problem.path) == (line, "severity_aliases.P1")
    assert problem.message == "severity 'P1' is already an alias of S1"


def test_an_alias_claimed_by_two_severities_points_at_the_second() -> None:
    text = SHIPPED.replace("  S4: [S4,", "  S4: [P1, S4,", 1)
    (problem,) = error(text).problems
    assert problem.path == "severity_aliases.S4.0"
    assert problem.line == text[:text.index("  S4: [P1")].count("\n") + 1
    assert problem.message == "severity 'P1' is already an alias of S1"


def test_a_bad_value_written_without_brackets_points_at_its_line() -> None:
    """`backup_user_ids: X` means `[X]`; the error is about item 0 of a list the file never
    wrote, so it points at the value's own line."""
    text = SHIPPED.replace("\nrules:\n", "\nteams:\n  - name: emea\n    backup_user_ids: "
                           "not-a-user\nrules:\n", 1)
    (problem,) = error(text).problems
    assert (problem.team, problem.path) == ("emea", "teams.0.backup_user_ids.0")
    assert problem.line == text[:text.index("not-a-user")].count("\n") + 1
