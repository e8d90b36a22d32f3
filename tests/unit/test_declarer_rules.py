"""Who declared an escalation, self-approval and "nobody can approve", by tables."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.domain import transitions as t
from daemon.domain.gate import Gate, Verdict
from daemon.domain.models import Escalation, Person, Source, person
from daemon.domain.policy import Approval, OnTimeout, evaluate
from daemon.domain.policy_file import PolicyError, parse_policy
from daemon.ingress.incident_io import escalation_from_incident
from daemon.ingress.pagerduty import parse_pagerduty
from daemon.integrations.base import ApprovalView, Decided, DecisionKind
from daemon.integrations.slack import approval_blocks
from daemon.policy_source import load_policy

REPO = Path(__file__).resolve().parents[2]
POLICY_TEXT = (REPO / "config" / "policy.yaml").read_text(encoding="utf-8")
POLICY = load_policy(REPO / "config" / "policy.yaml")
OPENED = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
NOW = OPENED + timedelta(minutes=5)
SMOC = Person(chat_id="USMOC", name="Sam")
HOSTILE = "<!channel> *bold* <https://evil.example|click>"


def awaiting(declared_by: Person | None = SMOC) -> tuple[Gate, Escalation]:
    escalation = Escalation(source=Source.SLACK, external_id="V1", severity="S1",
                            fields={"Support exhausted knowledge": "yes"}, declared_by=declared_by,
                            created_at=OPENED, updated_at=OPENED)
    step = t.on_facts(Gate(), escalation, evaluate(POLICY, escalation, NOW), NOW, previous=None,
                      rfh_due=NOW)
    gate = t.on_approval_posted(step.gate, "C1", "1.1", ("USMOC", "UBACKUP"), "", NOW,
                                smoc_resolved=True).gate
    return gate, escalation


def click(gate: Gate, user: str, verdict: Verdict, declared_by: Person | None, *,
          forbid: bool) -> t.Step:
    return t.on_click(gate, user, verdict, NOW, allowed=True, click_id="c1", reason="no",
                      rfh_due=NOW, declared_by=declared_by, forbid_self_approval=forbid)


@pytest.mark.parametrize(("user", "verdict", "forbid", "recorded", "self_approved"), [
    ("USMOC", Verdict.APPROVED, False, ["approved", "self_approved"], True),
    ("USMOC", Verdict.APPROVED, True, ["approval_refused"], False),
    ("UBACKUP", Verdict.APPROVED, True, ["approved"], False),
    ("USMOC", Verdict.DECLINED, True, ["declined"], False),  # declining pages nobody
])
def test_self_approval_is_refused_when_forbidden_and_flagged_when_allowed(
        user: str, verdict: Verdict, forbid: bool, recorded: list[str], self_approved: bool
) -> None:
    gate, escalation = awaiting()
    step = click(gate, user, verdict, escalation.declared_by, forbid=forbid)
    assert [r.event for r in step.records] == recorded
    if recorded == ["approval_refused"]:
        assert step.records[0].details["why"] == "self_approval_forbidden"
        [tell] = step.effects
        assert tell.kind == t.TELL_USER and "<@UBACKUP>" in tell.payload["text"]
        assert step.gate == gate
    else:
        assert step.gate.decided is not None
        assert step.gate.decided.self_approved is self_approved


def test_a_declarer_known_only_by_name_is_never_taken_for_an_approver() -> None:
    """A PagerDuty agent has no chat id: nothing to compare, so no self-approval is claimed."""
    gate, _escalation = awaiting(Person(name="USMOC", source_id="PXYZ"))
    step = click(gate, "USMOC", Verdict.APPROVED, Person(name="USMOC"), forbid=True)
    assert [r.event for r in step.records] == ["approved"]


def test_the_declarer_is_on_the_received_record() -> None:
    escalation = awaiting()[1]
    step = t.on_facts(Gate(), escalation, evaluate(POLICY, escalation, NOW), NOW,
                      previous=None, rfh_due=NOW)
    assert step.records[0].details["declared_by"] == {"chat_id": "USMOC", "name": "Sam"}


@pytest.mark.parametrize(("on_timeout", "says"), [
    (OnTimeout.PAGE, "the policy pages Tier 2 after 20 minutes"),
    (OnTimeout.HOLD, "the policy holds and nobody is paged after 20 minutes"),
])
def test_nobody_can_approve_needs_attention_and_tells_the_channel(
        on_timeout: OnTimeout, says: str) -> None:
    gate, _escalation = awaiting()
    assert gate.decision is not None
    decision = gate.decision.model_copy(update={"approval": Approval(on_timeout=on_timeout)})
    step = t.on_nobody_can_approve(gate.model_copy(update={"decision": decision}),
                                   "Nobody is on call.", "esc-1 (INC-7)", NOW)
    assert step.gate.needs_attention
    [problem] = step.gate.problems
    assert problem.effect == t.APPROVERS and problem.final
    assert [f"{e.kind}:{e.name}" for e in step.effects] == [
        "update_approval:nobody-can-approve", "direct_note:nobody-can-approve"]
    note = step.effects[1].payload
    assert note["to"] == "channel" and says in note["text"] and "esc-1 (INC-7)" in note["text"]
    # Whoever decides after all (the on-call changed) clears it.
    decided = click(step.gate, "UBACKUP", Verdict.APPROVED, None, forbid=False)
    assert not decided.gate.needs_attention


@pytest.mark.parametrize(("chat_id", "kept"), [
    ("U02AYNF2XJM", "U02AYNF2XJM"), ("W012A3CDE", "W012A3CDE"), ("U1>|<!channel", ""),
    ("<@U123>", ""), ("u123", ""), ("", ""),
])
def test_a_chat_id_of_the_wrong_shape_is_dropped_and_the_name_kept_as_given(
        chat_id: str, kept: str) -> None:
    found = person(chat_id=chat_id, name=HOSTILE)
    assert found is not None and found.chat_id == kept and found.name == HOSTILE


def test_nobody_named_is_no_person() -> None:
    assert person(chat_id="not an id") is None


INCIDENT: dict[str, Any] = {"id": "01X", "created_at": "2026-11-21T02:00:00Z"}


@pytest.mark.parametrize(("creator", "expected"), [
    ({"user": {"id": "01U", "name": "Lisa", "email": "l@x.io", "slack_user_id": "U09"}},
     Person(chat_id="U09", email="l@x.io", name="Lisa", source_id="01U")),
    ({"api_key": {"id": "01K", "name": "CI key"}}, None),  # automation, no person
    ({"workflow": {"id": "01W", "name": "Auto-declare"}}, None),
    (None, None),
])
def test_the_incident_io_creator_is_the_declarer_when_it_is_a_user(
        creator: object, expected: Person | None) -> None:
    assert escalation_from_incident({**INCIDENT, "creator": creator}).declared_by == expected


@pytest.mark.parametrize(("agent", "expected"), [
    ({"id": "PU1", "type": "user_reference", "summary": "Pat"},
     Person(name="Pat", source_id="PU1")),
    ({"id": "PS1", "type": "service_reference", "summary": "Monitoring"}, None),
    (None, None),
])
def test_the_pagerduty_agent_who_triggered_is_the_declarer_when_it_is_a_user(
        agent: object, expected: Person | None) -> None:
    body = json.loads((REPO / "tests/payloads/pagerduty/zulip_triggered_v3.json").read_bytes())
    body["event"]["agent"] = agent
    event = parse_pagerduty(body, received_at=NOW)
    assert event.escalation is not None and event.escalation.declared_by == expected


def test_the_policy_option_is_validated_with_its_line() -> None:
    bad = POLICY_TEXT.replace("  forbid_self_approval: false\n", "  forbid_self_approval: maybe\n")
    with pytest.raises(PolicyError) as raised:
        parse_policy(bad, "policy.yaml")
    line = bad.splitlines().index("  forbid_self_approval: maybe") + 1
    assert f"policy.yaml:{line}:" in str(raised.value)
    assert "approval.forbid_self_approval" in str(raised.value)
    typo = POLICY_TEXT.replace("  forbid_self_approval: false\n", "  forbid_self: true\n")
    with pytest.raises(PolicyError, match="unknown key 'forbid_self'"):
        parse_policy(typo, "policy.yaml")
    assert parse_policy(POLICY_TEXT).approval.forbid_self_approval is False


VIEW = ApprovalView(escalation_id="esc-1", title="DB down", reference="INC-7", customer="Acme",
                    severity="S1", reason="why", criteria=(), age_minutes=5, weekend=False,
                    off_hours=False, approver_ids=("UBACK1", "UBACK2"))


def shown(view: ApprovalView) -> str:
    return json.dumps([block.to_dict() for block in approval_blocks(view)])


def test_backups_are_not_called_the_smoc_and_a_declarer_name_stays_text() -> None:
    text = shown(replace(VIEW, declarer_name=HOSTILE))
    assert "(SMOC)" not in text and "no SMOC \\u00b7 backups <@UBACK1>, <@UBACK2>" in text
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "<@USMOC> (SMOC)" in shown(replace(VIEW, approver_ids=("USMOC",), smoc_resolved=True))
    assert "nobody can approve this request" in shown(replace(VIEW, approver_ids=()))


def test_a_self_approval_is_flagged_where_the_buttons_were() -> None:
    decided = Decided(kind=DecisionKind.APPROVED, by="USMOC", at="2026-11-21 02:10 UTC",
                      self_approved=True)
    text = shown(replace(VIEW, decided=decided, declarer_id="USMOC"))
    assert "self-approved" in text and "*Declared by:* <@USMOC>" in text
