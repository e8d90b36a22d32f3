"""The source incident's lifecycle by tables: (gate, how the incident ended) -> phase, timeline,
effects; and the approval view that offers buttons only while a decision is wanted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.domain import transitions as t
from daemon.domain.gate import Gate, PageState, Phase, Verdict
from daemon.domain.models import Escalation, Source, Status
from daemon.domain.policy import evaluate
from daemon.integrations.base import ApprovalView, NoDecision
from daemon.integrations.slack import APPROVE_ACTION, approval_blocks, fallback_text
from daemon.policy_source import load_policy

POLICY = load_policy(Path(__file__).resolve().parents[2] / "config" / "policy.yaml")
OPENED = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
NOW = OPENED + timedelta(minutes=5)
LATER = OPENED + timedelta(minutes=30)
DUE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
EXHAUSTED = {"Support exhausted knowledge": "Yes"}


def esc(severity: str = "SEV1", fields: dict[str, str] | None = None,
        status: Status = Status.OPEN, merged_into: str = "",
        updated_at: datetime = NOW) -> Escalation:
    return Escalation(source=Source.INCIDENT_IO, external_id="01ABC", reference="INC-7",
                      title="DB down", severity=severity, status=status,
                      merged_into=merged_into, fields=fields or {}, created_at=OPENED,
                      updated_at=updated_at)


def facts(gate: Gate, escalation: Escalation, previous: Escalation | None,
          at: datetime = NOW) -> t.Step:
    return t.on_facts(gate, escalation, evaluate(POLICY, escalation, at), at,
                      previous=previous, rfh_due=DUE)


def asked() -> Gate:
    gate = facts(Gate(), esc(fields=EXHAUSTED), None).gate
    return t.on_approval_posted(gate, "C1", "1.1", ("USMOC",), "", NOW).gate


def paged() -> Gate:
    gate = t.on_click(asked(), "USMOC", Verdict.APPROVED, NOW, allowed=True, click_id="c").gate
    return t.on_paged(gate, "PT2", "https://pd/PT2", NOW, shadow=False).gate


def rfh() -> Gate:
    return facts(Gate(), esc(severity="SEV3"), None).gate


def ended(status: Status, merged_into: str = "") -> Escalation:
    return esc(fields=EXHAUSTED, status=status, merged_into=merged_into, updated_at=LATER)


def kinds(step: t.Step) -> list[str]:
    return [f"{e.kind}:{e.name}" for e in step.effects]


@pytest.mark.parametrize(("gate", "status", "phase", "event", "effects"), [
    (asked, Status.WITHDRAWN, Phase.CLOSED, "withdrawn",
     ["update_approval:ended", "thread_note:ended-before-page"]),
    (asked, Status.MERGED, Phase.CLOSED, "merged",
     ["update_approval:ended", "thread_note:ended-before-page"]),
    (paged, Status.WITHDRAWN, Phase.CLOSED, "withdrawn", ["retro:retro"]),
    (paged, Status.MERGED, Phase.CLOSED, "merged", ["merge_into:merge"]),
    (rfh, Status.WITHDRAWN, Phase.RFH, "withdrawn", ["rfh_note:ended"]),
    (rfh, Status.MERGED, Phase.RFH, "merged", ["rfh_note:ended"]),
])
def test_how_the_incident_ended_decides_what_is_left_to_do(
        gate: object, status: Status, phase: Phase, event: str, effects: list[str]) -> None:
    assert callable(gate)
    before: Gate = gate()
    step = facts(before, ended(status, "INC-9"), esc(fields=EXHAUSTED), LATER)
    assert step.gate.phase is phase
    assert [r.event for r in step.records][-1] == event
    assert kinds(step) == effects
    assert step.gate.ended_as == status.value


def test_a_withdrawn_incident_set_active_again_is_decided_again() -> None:
    gone = facts(asked(), ended(Status.WITHDRAWN), esc(fields=EXHAUSTED), LATER).gate
    step = facts(gone, esc(fields=EXHAUSTED, updated_at=LATER + timedelta(minutes=5)),
                 ended(Status.WITHDRAWN), LATER + timedelta(minutes=5))
    assert step.gate.ended_as == "" and step.gate.round == 2
    assert "request_approval:request" in kinds(step)


def test_a_merged_page_is_noted_on_the_retro_or_earns_it() -> None:
    page = PageState(incident_id="PT1", url="https://pd/PT1", at=NOW)
    with_retro = paged().model_copy(update={"retro_url": "https://gl/1"})
    assert kinds(t.on_merged_in(with_retro, "esc-a", "INC-1", page)) == [
        "retro_note:merged-esc-a"]
    over = rfh().model_copy(update={"resolved_at": LATER})
    assert kinds(t.on_merged_in(over, "esc-a", "INC-1", page)) == ["retro:retro"]
    assert kinds(t.on_merged_in(paged(), "esc-a", "INC-1", page)) == []  # its own end opens it
    once = t.on_merged_in(paged(), "esc-a", "INC-1", page).gate
    assert t.on_merged_in(once, "esc-a", "INC-1", page).records == ()
    assert kinds(facts(rfh().model_copy(update={"merged_in": once.merged_in}),
                       esc(severity="SEV3", status=Status.RESOLVED, updated_at=LATER),
                       esc(severity="SEV3"), LATER)) == ["retro:retro"]


def view(**changes: object) -> ApprovalView:
    base = ApprovalView(escalation_id="esc-1", title="DB down", reference="INC-7",
                        customer="Acme", severity="S1", reason="r", criteria=(), age_minutes=5,
                        weekend=True, off_hours=True, approver_ids=("USMOC",))
    return ApprovalView(**{**base.__dict__, **changes})


@pytest.mark.parametrize("why", list(NoDecision))
def test_a_request_nobody_needs_to_decide_offers_no_buttons(why: NoDecision) -> None:
    moot = view(no_decision=why, no_decision_detail="<@UEVIL> INC-9")
    assert not moot.waiting
    assert APPROVE_ACTION not in str(approval_blocks(moot))
    assert "needs approval" not in fallback_text(moot)
    assert "<@UEVIL>" not in str(approval_blocks(moot))
    assert APPROVE_ACTION in str(approval_blocks(view()))
