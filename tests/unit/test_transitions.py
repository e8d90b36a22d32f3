"""The escalation state machine, by tables: (gate, event) -> phase, timeline events, effects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.domain import transitions as t
from daemon.domain.gate import ApprovalState, Gate, Phase, Verdict
from daemon.domain.models import Escalation, Source, Status
from daemon.domain.policy import Decision, OnTimeout, evaluate
from daemon.policy_source import load_policy

POLICY = load_policy(Path(__file__).resolve().parents[2] / "config" / "policy.yaml")
OPENED = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)  # a Saturday, 2 a.m.
NOW = OPENED + timedelta(minutes=5)
DUE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
EXHAUSTED = {"Support exhausted knowledge": "Yes"}


def esc(severity: str = "SEV1", fields: dict[str, str] | None = None,
        status: Status = Status.OPEN, source: Source = Source.INCIDENT_IO) -> Escalation:
    return Escalation(source=source, external_id="01ABC", reference="INC-7", title="DB down",
                      severity=severity, status=status, fields=fields or {},
                      created_at=OPENED, updated_at=NOW)


def decide(escalation: Escalation, at: datetime = NOW) -> Decision:
    return evaluate(POLICY, escalation, at)


def facts(gate: Gate, escalation: Escalation, previous: Escalation | None = None,
          at: datetime = NOW) -> t.Step:
    return t.on_facts(gate, escalation, decide(escalation, at), at, previous=previous,
                      rfh_due=DUE)


def kinds(step: t.Step) -> list[str]:
    return [f"{e.kind}:{e.name}" for e in step.effects]


def events(step: t.Step) -> list[str]:
    return [r.event for r in step.records]


def awaiting(requested: bool = True) -> Gate:
    gate = facts(Gate(), esc(fields=EXHAUSTED)).gate
    if requested:
        gate = t.on_approval_posted(gate, "C1", "1.1", ("USMOC", "UBACKUP"), "", NOW).gate
    return gate


@pytest.mark.parametrize(("escalation", "phase", "recorded", "effects"), [
    (esc(fields=EXHAUSTED), Phase.AWAITING_APPROVAL, ["received", "classified"],
     ["request_approval:request", "approval_remind:1", "approval_timeout:timeout"]),
    # The shipped policy offers a request for help to the Escalation Engineers first; the
    # offer job sends it on to the RFH notice and issue when nobody is on the rotation.
    (esc("SEV3"), Phase.RFH, ["received", "classified"], ["ee_offer:offer"]),
    (esc("SEV1"), Phase.RFH, ["received", "classified"],
     ["ee_offer:offer", f"recheck:at-{int(OPENED.timestamp()) + 1800}"]),
    (esc(fields=EXHAUSTED, status=Status.RESOLVED), Phase.RFH,
     ["received", "classified", "resolved"], ["ee_offer:offer"]),
])
def test_first_facts_classify(escalation: Escalation, phase: Phase, recorded: list[str],
                              effects: list[str]) -> None:
    step = facts(Gate(), escalation)
    assert step.gate.phase is phase
    assert events(step) == recorded
    assert kinds(step) == effects


def test_an_rfh_becomes_an_emergency_when_support_asserts_a_criterion() -> None:
    first = facts(Gate(), esc("SEV2"))
    step = facts(first.gate, esc("SEV2", EXHAUSTED), previous=esc("SEV2"))
    assert step.gate.phase is Phase.AWAITING_APPROVAL
    assert events(step) == ["updated", "classified"]
    assert step.records[0].details == {"fields": EXHAUSTED}
    assert kinds(step) == ["request_approval:request", "approval_remind:1",
                           "approval_timeout:timeout"]


def test_an_s1_timer_turns_it_into_an_emergency_at_30_minutes_if_still_open() -> None:
    gate = facts(Gate(), esc("SEV1")).gate
    later = OPENED + timedelta(minutes=30)
    step = facts(gate, esc("SEV1"), previous=esc("SEV1"), at=later)
    assert step.gate.phase is Phase.AWAITING_APPROVAL
    assert events(step) == ["classified"]
    resolved = esc("SEV1", status=Status.RESOLVED)
    step = facts(gate, resolved, previous=esc("SEV1"), at=later)
    assert step.gate.phase is Phase.RFH
    assert "request_approval:request" not in kinds(step)


def test_no_downgrade_once_the_smoc_was_asked() -> None:
    step = facts(awaiting(requested=True), esc("SEV3"), previous=esc(fields=EXHAUSTED))
    assert step.gate.phase is Phase.AWAITING_APPROVAL
    decision = step.gate.decision
    assert decision is not None
    assert "downgrade to rfh refused" in decision.reason
    assert "classified" not in events(step)


def test_a_downgrade_before_the_request_went_out_is_allowed() -> None:
    step = facts(awaiting(requested=False), esc("SEV3"), previous=esc(fields=EXHAUSTED))
    assert step.gate.phase is Phase.RFH


def test_the_approval_clocks_start_at_the_classification_not_at_the_post() -> None:
    classified = facts(Gate(), esc(fields=EXHAUSTED))
    assert [(e.kind, e.run_at) for e in classified.effects if e.run_at] == [
        ("approval_remind", NOW + timedelta(minutes=10)),
        ("approval_timeout", NOW + timedelta(minutes=20))]
    later = NOW + timedelta(minutes=7)  # Slack was down for seven minutes
    step = t.on_approval_posted(classified.gate, "C1", "1.1", ("USMOC",), "", later)
    assert events(step) == ["approval_requested"]
    assert step.records[0].once_key == "approval_requested"
    assert step.effects == ()  # the clocks keep their first deadlines
    assert t.on_approval_posted(step.gate, "C1", "2.2", ("USMOC",), "", NOW).records == ()


def test_without_a_posted_request_the_timeout_still_pages() -> None:
    step = t.on_timeout(awaiting(requested=False), NOW + timedelta(minutes=20))
    assert step.gate.phase is Phase.PAGING
    assert kinds(step) == ["update_approval:decided", "page:page"]


def test_without_a_posted_request_the_reminder_goes_to_the_approvers_directly() -> None:
    step = t.on_remind(awaiting(requested=False), 1, NOW + timedelta(minutes=10))
    assert kinds(step) == ["direct_note:remind-1", "approval_remind:2"]
    assert step.effects[0].payload["to"] == "approvers"
    assert step.records[0].details == {"n": 1, "posted": False}


def test_a_refused_channel_is_recorded_and_needs_attention_until_someone_decides() -> None:
    gate = facts(Gate(), esc(fields=EXHAUSTED)).gate
    step = t.on_approval_posted(gate, "DSMOC", "1.1", ("USMOC", "UBACKUP"), "", NOW,
                                copies=(("DBACKUP", "2.2"),), channel_refused="not_in_channel")
    assert events(step) == ["approval_requested", "approval_channel_refused"]
    assert step.gate.needs_attention
    assert step.gate.approval is not None and step.gate.approval.copies == (("DBACKUP", "2.2"),)
    decided = t.on_click(step.gate, "UBACKUP", Verdict.APPROVED, NOW, allowed=True, click_id="c")
    assert not decided.gate.needs_attention


@pytest.mark.parametrize(("user", "verdict", "allowed", "phase", "recorded", "effects"), [
    ("USMOC", Verdict.APPROVED, True, Phase.PAGING, ["approved"],
     ["update_approval:decided", "page:page"]),
    ("USMOC", Verdict.DECLINED, True, Phase.DECLINED, ["declined"],
     ["update_approval:decided", "rfh_notice:notice", "rfh_issue:issue"]),
    ("UOTHER", Verdict.APPROVED, False, Phase.AWAITING_APPROVAL, ["approval_refused"],
     ["tell_user:refused-c1"]),
])
def test_clicks(user: str, verdict: Verdict, allowed: bool, phase: Phase, recorded: list[str],
                effects: list[str]) -> None:
    step = t.on_click(awaiting(), user, verdict, NOW, allowed=allowed, click_id="c1",
                      reason="customer agreed to wait", rfh_due=DUE)
    assert step.gate.phase is phase
    assert events(step) == recorded
    assert kinds(step) == effects
    if recorded[0] in ("approved", "declined"):
        assert step.records[0].once_key == "decision"
    if verdict is Verdict.DECLINED and allowed:
        assert step.records[0].details == {"reason": "customer agreed to wait", "waited_s": 0.0}


def test_a_decision_records_how_long_the_smoc_took() -> None:
    later = NOW + timedelta(minutes=3, seconds=12)
    step = t.on_click(awaiting(), "USMOC", Verdict.APPROVED, later, allowed=True, click_id="c")
    assert step.records[0].details == {"waited_s": 192.0}


def test_a_refused_click_names_who_may_decide() -> None:
    step = t.on_click(awaiting(), "UOTHER", Verdict.APPROVED, NOW, allowed=False, click_id="x")
    assert "<@USMOC>" in step.effects[0].payload["text"]
    assert step.effects[0].payload["user"] == "UOTHER"


def test_a_second_click_changes_nothing_and_tells_the_clicker() -> None:
    approved = t.on_click(awaiting(), "USMOC", Verdict.APPROVED, NOW, allowed=True,
                          click_id="c1").gate
    step = t.on_click(approved, "UBACKUP", Verdict.DECLINED, NOW, allowed=True, click_id="c2")
    assert step.gate == approved
    assert events(step) == ["decision_ignored"]
    assert kinds(step) == ["tell_user:late-c2"]
    assert "Already approved by <@USMOC>" in step.effects[0].payload["text"]


def test_timeout_with_the_page_fallback_pages() -> None:
    step = t.on_timeout(awaiting(), NOW + timedelta(minutes=20))
    assert step.gate.phase is Phase.PAGING
    assert events(step) == ["approval_timed_out"]
    assert step.records[0].details == {"after_minutes": 20.0, "fallback": "page"}
    assert kinds(step) == ["update_approval:decided", "page:page"]


def test_timeout_with_the_hold_fallback_keeps_reminding() -> None:
    gate = awaiting()
    decision = gate.decision
    assert decision is not None and decision.approval is not None
    held = decision.model_copy(update={"approval": decision.approval.model_copy(
        update={"on_timeout": OnTimeout.HOLD})})
    gate = gate.model_copy(update={"decision": held})
    at = NOW + timedelta(minutes=20)
    step = t.on_timeout(gate, at)
    assert step.gate.phase is Phase.AWAITING_APPROVAL
    assert kinds(step) == ["thread_note:holding", "approval_remind:1"]
    again = t.on_remind(step.gate, 1, at)
    assert kinds(again) == ["thread_note:remind-1", "approval_remind:2"]
    assert again.effects[1].run_at == at + timedelta(minutes=10)


def test_a_reminder_after_the_decision_does_nothing() -> None:
    approved = t.on_click(awaiting(), "USMOC", Verdict.APPROVED, NOW, allowed=True,
                          click_id="c").gate
    assert t.on_remind(approved, 1, NOW).records == ()
    assert t.on_timeout(approved, NOW).records == ()


def paged(source: Source = Source.INCIDENT_IO) -> Gate:
    gate = t.on_click(awaiting(), "USMOC", Verdict.APPROVED, NOW, allowed=True,
                      click_id="c").gate
    return t.on_paged(gate, "PT2", "https://pd/PT2", NOW, shadow=False).gate


@pytest.mark.parametrize(("shadow", "retro_on_page", "event", "effects", "phase"), [
    (False, False, "paged", ["thread_note:paged"], Phase.PAGED),
    (True, False, "would_have_paged", ["thread_note:paged"], Phase.PAGED),
    (False, True, "paged", ["thread_note:paged", "retro:retro"], Phase.CLOSED),
])
def test_paging(shadow: bool, retro_on_page: bool, event: str, effects: list[str],
                phase: Phase) -> None:
    gate = t.on_click(awaiting(), "USMOC", Verdict.APPROVED, NOW, allowed=True,
                      click_id="c").gate
    step = t.on_paged(gate, "PT2", "https://pd/PT2", NOW, shadow=shadow,
                      retro_on_page=retro_on_page)
    assert (events(step), kinds(step), step.gate.phase) == ([event], effects, phase)
    assert step.records[0].once_key == "paged"
    assert t.on_paged(step.gate, "PT3", "", NOW, shadow=shadow).records == ()


def test_resolution_after_the_page_opens_the_retro() -> None:
    step = facts(paged(), esc(fields=EXHAUSTED, status=Status.RESOLVED),
                 previous=esc(fields=EXHAUSTED))
    assert step.gate.phase is Phase.CLOSED
    assert events(step) == ["updated", "resolved"]
    assert kinds(step) == ["retro:retro"]


def test_resolution_before_the_decision_closes_without_a_page() -> None:
    step = facts(awaiting(), esc(fields=EXHAUSTED, status=Status.RESOLVED),
                 previous=esc(fields=EXHAUSTED))
    assert step.gate.phase is Phase.CLOSED
    assert kinds(step) == ["update_approval:resolved", "thread_note:resolved-before-page"]
    late = t.on_click(step.gate, "USMOC", Verdict.APPROVED, NOW, allowed=True, click_id="z")
    assert events(late) == ["decision_ignored"]


def test_declined_escalations_never_get_a_retro() -> None:
    declined = t.on_click(awaiting(), "USMOC", Verdict.DECLINED, NOW, allowed=True,
                          click_id="c", reason="wait").gate
    step = facts(declined, esc(fields=EXHAUSTED, status=Status.RESOLVED),
                 previous=esc(fields=EXHAUSTED))
    assert "retro:retro" not in kinds(step)
    assert step.gate.phase is Phase.DECLINED


@pytest.mark.parametrize(("source", "closes"), [(Source.SLACK, True),
                                                (Source.INCIDENT_IO, False)])
def test_page_events_follow_the_page(source: Source, closes: bool) -> None:
    ack = t.on_page_event(paged(), "acknowledged", "Tier 2 Tina", NOW, "ev1", source=source)
    assert ack.gate.phase is Phase.ACKNOWLEDGED
    assert (ack.gate.acknowledged_by, events(ack)) == ("Tier 2 Tina", ["acknowledged"])
    done = t.on_page_event(ack.gate, "resolved", "Tina", NOW, "ev2", source=source)
    assert ("retro:retro" in kinds(done)) is closes
    assert (done.gate.phase is Phase.CLOSED) is closes


def test_the_retro_is_recorded_once() -> None:
    step = t.on_retro_opened(paged(), "https://gitlab/issues/1", shadow=False)
    assert (events(step), step.records[0].once_key) == (["retro_opened"], "retro")
    assert t.on_retro_opened(paged(), "", shadow=True).records[0].event == (
        "would_have_opened_retro")


def test_approval_state_is_only_for_approvers() -> None:
    gate = awaiting()
    assert isinstance(gate.approval, ApprovalState)
    assert gate.approval.approvers == ("USMOC", "UBACKUP")



def test_a_dead_page_is_told_in_the_thread_and_the_message_is_corrected() -> None:
    approved = t.on_click(awaiting(), "USMOC", Verdict.APPROVED, NOW, allowed=True,
                          click_id="c").gate
    reason = "PagerDuty answered 400: Requester User Not Found"
    step = t.on_effect_failed(approved, t.PAGE, reason, NOW, final=True,
                              runbook_url="https://runbooks.example/page.md")
    assert step.gate.needs_attention and step.gate.problems[0].final
    assert events(step) == ["needs_attention"]
    assert kinds(step) == ["update_approval:failed-page", "thread_note:failed-page"]
    text = step.effects[1].payload["text"]
    assert "Tier 2 has NOT been paged" in text and reason in text
    assert "https://runbooks.example/page.md" in text and "<@USMOC>" in text
    # told once: a second report of the same failure changes nothing
    assert t.on_effect_failed(step.gate, t.PAGE, reason, NOW, final=True).records == ()
    # the page going out later (an operator retried the job) clears it
    paged_later = t.on_paged(step.gate, "PT2", "https://pd/PT2", NOW, shadow=False)
    assert not paged_later.gate.needs_attention


def test_a_stuck_page_is_told_once_then_again_when_it_fails_for_good() -> None:
    approved = t.on_click(awaiting(), "USMOC", Verdict.APPROVED, NOW, allowed=True,
                          click_id="c").gate
    stuck = t.on_effect_failed(approved, t.PAGE, "HTTP 503", NOW, final=False)
    assert kinds(stuck) == ["update_approval:failing-page", "thread_note:failing-page"]
    assert "keeps retrying" in stuck.effects[1].payload["text"]
    assert t.on_effect_failed(stuck.gate, t.PAGE, "HTTP 503", NOW, final=False).effects == ()
    dead = t.on_effect_failed(stuck.gate, t.PAGE, "HTTP 400", NOW, final=True)
    assert kinds(dead) == ["update_approval:failed-page", "thread_note:failed-page"]


def test_a_failed_thread_note_goes_to_the_approvers_directly_with_its_text() -> None:
    step = t.on_effect_failed(awaiting(), t.THREAD_NOTE, "is_archived", NOW, final=True,
                              lost_text="Tier 2 page acknowledged by Tina.")
    assert kinds(step) == ["update_approval:failed-thread_note", "direct_note:failed-thread_note"]
    assert "acknowledged by Tina" in step.effects[1].payload["text"]
    # a direct note that fails is only recorded: telling about telling would never end
    again = t.on_effect_failed(step.gate, t.DIRECT_NOTE, "is_archived", NOW, final=True)
    assert again.effects == () and events(again) == ["needs_attention"]


def test_a_request_for_help_failure_goes_to_the_channel() -> None:
    rfh = facts(Gate(), esc("SEV3")).gate
    step = t.on_effect_failed(rfh, t.RFH_ISSUE, "GitLab answered 403", NOW, final=True)
    assert kinds(step) == ["direct_note:failed-rfh_issue"]
    assert step.effects[0].payload["to"] == "channel"
    assert step.gate.needs_attention


def test_a_decline_form_that_cannot_open_asks_to_press_again() -> None:
    step = t.on_decline_form_failed(awaiting(), "USMOC", "slack views.open: expired_trigger_id",
                                    "c9")
    assert step.gate == awaiting()
    assert events(step) == ["decline_form_failed"]
    assert kinds(step) == ["tell_user:form-c9"]
    assert "Press Decline again" in step.effects[0].payload["text"]
