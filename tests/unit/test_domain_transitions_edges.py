"""The state machine's edges, by tables: the Escalation Engineer routes of a classification, late
and foreign messages, timers that come early, policy edits, page events, effects that recover,
and the retro of a reopened round. Each row drives a public transition of
`daemon.domain.transitions` and says what a person would see: the phase, the timeline, the
effects (as `kind:name`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from daemon.domain import transitions as t
from daemon.domain.gate import (
    DecisionState,
    EEState,
    Gate,
    PageState,
    Phase,
    Problem,
    Verdict,
)
from daemon.domain.models import Escalation, Source, Status
from daemon.domain.policy import Decision, EERoute, OnTimeout
from tests.unit.test_transitions import DUE, EXHAUSTED, NOW, awaiting, decide, esc

OFFERED = EEState(rotation="r1", offered_at=NOW, offered_to=("UEE1",), channel="C0EE", ts="1.1")
OWNED = OFFERED.model_copy(update={"owner": "UEE1", "owner_name": "Ada", "assigned_at": NOW})
PAGE = PageState(incident_id="PT2", url="https://pd.example/PT2", at=NOW)


def kinds(step: t.Step) -> list[str]:
    return [f"{e.kind}:{e.name}" for e in step.effects]


def events(step: t.Step) -> list[str]:
    return [str(r.event) for r in step.records]


def payload(step: t.Step, kind: str) -> dict[str, Any]:
    """The payload of the one effect of `kind` in `step`."""
    (found,) = [e.payload for e in step.effects if e.kind == kind]
    return dict(found)


def routed(escalation: Escalation, route: EERoute | None) -> Decision:
    """The shipped policy's decision for `escalation`, with the rule's EE step set to `route`."""
    return decide(escalation).model_copy(update={"ee": route})


def classify(gate: Gate, escalation: Escalation, decision: Decision,
             previous: Escalation | None = None) -> t.Step:
    return t.on_facts(gate, escalation, decision, NOW, previous=previous, rfh_due=DUE)


# --- what a classification starts, by the rule's EE step ---------------------------------------

@pytest.mark.parametrize(("route", "effects"), [
    # The rule waits for an EE: the SMOC is asked only when the wait is over.
    (EERoute(wait_minutes=15), ["ee_offer:offer-emergency", "ee_wait:wait"]),
    # The EEs are told alongside, the SMOC is asked at once.
    (EERoute(), ["ee_offer:offer-emergency", "request_approval:request", "approval_remind:1",
                 "approval_timeout:timeout"]),
    (None, ["request_approval:request", "approval_remind:1", "approval_timeout:timeout"]),
])
def test_an_emergency_routed_to_the_ees_waits_at_most_its_wait(route: EERoute | None,
                                                               effects: list[str]) -> None:
    step = classify(Gate(), esc(fields=EXHAUSTED), routed(esc(fields=EXHAUSTED), route))
    assert step.gate.phase is Phase.AWAITING_APPROVAL
    assert kinds(step) == effects
    if route is not None:
        assert payload(step, "ee_offer")["wait_minutes"] == route.wait_minutes
    if route is not None and route.wait_minutes:
        (wait,) = [e for e in step.effects if e.kind == "ee_wait"]
        assert wait.run_at == NOW + timedelta(minutes=15)


@pytest.mark.parametrize(("ee", "route", "effects", "waiting"), [
    # Its EE holds it: the EE still says whether Engineering is needed, nothing goes out yet.
    (OWNED.model_copy(update={"waiting": True}), EERoute(), [], False),
    # Offered but nobody took it: today's request-for-help path.
    (OFFERED.model_copy(update={"waiting": True}), EERoute(),
     ["rfh_notice:notice", "rfh_issue:issue"], True),
    # A rule without an EE step: today's path at once.
    (None, None, ["rfh_notice:notice", "rfh_issue:issue"], None),
])
def test_an_emergency_that_becomes_a_request_for_help_keeps_its_ee(
        ee: EEState | None, route: EERoute | None, effects: list[str],
        waiting: bool | None) -> None:
    emergency = Gate(phase=Phase.AWAITING_APPROVAL, decision=decide(esc(fields=EXHAUSTED)), ee=ee)
    step = classify(emergency, esc("SEV3"), routed(esc("SEV3"), route),
                    previous=esc(fields=EXHAUSTED))
    assert step.gate.phase is Phase.RFH and step.gate.rfh_due_at == DUE
    assert kinds(step) == effects
    assert (step.gate.ee.waiting if step.gate.ee else None) is waiting


def test_a_request_for_help_marked_a_test_stops_offering_it_to_the_ees() -> None:
    offered = Gate(phase=Phase.RFH, decision=decide(esc("SEV3")), ee=OFFERED)
    test = esc("SEV3").model_copy(update={"test_mode": True})
    step = classify(offered, test, decide(test), previous=esc("SEV3"))
    assert step.gate.phase is Phase.IGNORED
    assert kinds(step) == [f"ee_update:ignored-{int(NOW.timestamp())}"]


@pytest.mark.parametrize(("status", "recorded", "effects"), [
    (Status.RESOLVED, ["updated", "resolved"], ["ee_update:ended"]),
    (Status.WITHDRAWN, ["updated", "withdrawn"], ["rfh_note:ended", "ee_update:ended"]),
])
def test_an_ended_incident_stops_the_ee_offer(status: Status, recorded: list[str],
                                              effects: list[str]) -> None:
    offered = Gate(phase=Phase.RFH, decision=decide(esc("SEV3")), ee=OFFERED)
    ended = esc("SEV3", status=status)
    step = classify(offered, ended, decide(ended), previous=esc("SEV3"))
    assert events(step) == recorded
    assert kinds(step) == effects
    assert step.gate.resolved_at == NOW


# --- merges --------------------------------------------------------------------------------------

def test_a_merged_in_incident_without_a_page_is_recorded_once_and_asks_for_nothing() -> None:
    step = t.on_merged_in(Gate(), "esc-2", "INC-8", None)
    assert events(step) == ["merged_in"] and step.effects == ()
    assert step.records[0].once_key == "merged_in-esc-2"
    assert step.records[0].details == {"escalation_id": "esc-2", "reference": "INC-8"}
    assert t.on_merged_in(step.gate, "esc-2", "INC-8", PAGE).records == ()  # told once


@pytest.mark.parametrize(("gate", "note"), [
    (Gate(page=PAGE), None),  # round 1: the retro issue tells the page itself
    (Gate(round=2, page=PAGE, reopened_at=NOW, decided=DecisionState(
        verdict=Verdict.TIMED_OUT, by="", at=NOW)),
     f"The incident was reopened at {NOW:%Y-%m-%d %H:%M} UTC (round 2); Tier 2 was paged again "
     f"at {NOW:%Y-%m-%d %H:%M} UTC: https://pd.example/PT2 (timed out by the approval timeout)."),
    (Gate(round=3, page=PAGE.model_copy(update={"shadow": True})),
     "The incident was reopened at an unknown time (round 3); Tier 2 would have been paged "
     "again (SHADOW mode)."),
])
def test_a_page_merged_into_an_unknown_incident_keeps_its_own_retro(gate: Gate,
                                                                    note: str | None) -> None:
    step = t.on_merge_target_unknown(gate, "INC-99")
    assert events(step) == ["merge_target_unknown"]
    assert step.records[0].details == {"merged_into": "INC-99"}
    assert kinds(step) == ["retro:retro"]
    assert payload(step, "retro").get("note") == note


# --- approval messages posted late --------------------------------------------------------------

def test_a_request_posted_after_the_decision_shows_the_decision_at_once() -> None:
    unposted = awaiting(requested=False)
    decided = t.on_click(unposted, "USMOC", Verdict.APPROVED, NOW, allowed=True, click_id="c")
    step = t.on_approval_posted(decided.gate, "C1", "1.1", ("USMOC",), "", NOW,
                                missing=("UBACKUP",))
    assert events(step) == ["approval_requested"]
    assert kinds(step) == ["update_approval:overtaken"]  # not a copy asking for a decision


def test_a_late_copy_is_recorded_once_and_shows_a_decision_made_meanwhile() -> None:
    assert t.on_copy_posted(awaiting(requested=False), "UBACKUP", "D2", "2.2").records == ()
    step = t.on_copy_posted(awaiting(), "UBACKUP", "D2", "2.2")
    assert events(step) == ["approval_copy_posted"] and step.effects == ()
    assert step.gate.approval is not None
    assert step.gate.approval.messages == (("C1", "1.1"), ("D2", "2.2"))
    assert step.gate.owns_message("D2", "2.2") and not step.gate.owns_message("D9", "9.9")
    assert t.on_copy_posted(step.gate, "UBACKUP", "D2", "2.2").records == ()
    approved = t.on_click(awaiting(), "USMOC", Verdict.APPROVED, NOW, allowed=True,
                          click_id="c").gate
    late = t.on_copy_posted(approved, "UBACKUP", "D2", "2.2")
    assert kinds(late) == ["update_approval:copy-UBACKUP"]


def test_a_click_from_another_message_decides_nothing_and_tells_the_clicker() -> None:
    gate = awaiting()
    step = t.on_foreign_click(gate, "USMOC", Verdict.APPROVED, click_id="k1", channel="C9",
                              ts="9.9")
    assert step.gate == gate
    assert events(step) == ["click_mismatch"]
    assert step.records[0].details == {"verdict": "approved", "channel": "C9", "ts": "9.9"}
    assert kinds(step) == ["tell_user:mismatch-k1"]
    assert payload(step, "tell_user")["user"] == "USMOC"


# --- reminders and the timeout --------------------------------------------------------------------

def test_a_reminder_before_the_timeout_does_not_schedule_another() -> None:
    step = t.on_remind(awaiting(), 1, NOW + timedelta(minutes=10))
    assert kinds(step) == ["thread_note:remind-1"]  # the timeout acts next
    assert step.gate.approval is not None and step.gate.approval.reminders == 1
    assert step.records[0].details == {"n": 1, "to": ["USMOC", "UBACKUP"]}


def test_a_holding_timeout_without_a_posted_request_is_recorded_and_pages_nobody() -> None:
    hold = decide(esc(fields=EXHAUSTED))
    assert hold.approval is not None
    hold = hold.model_copy(update={"approval": hold.approval.model_copy(
        update={"on_timeout": OnTimeout.HOLD})})
    gate = awaiting(requested=False).model_copy(update={"decision": hold})
    step = t.on_timeout(gate, NOW + timedelta(minutes=20))
    assert step.gate == gate and step.effects == ()
    assert events(step) == ["approval_timed_out"]
    assert step.records[0].once_key == "timeout"
    assert step.records[0].details == {"after_minutes": 20, "fallback": "hold"}


@pytest.mark.parametrize(("kind", "timer_payload", "wall_s", "reason", "label"), [
    (t.REMIND, {"n": 2, "since": 0.0}, 600.0, "clock_stepped", "remind-2"),
    (t.TIMEOUT, {"since": 0.0}, 300.0, "policy_asks_longer", "timeout"),
])
def test_an_early_timer_is_set_again_for_the_rest_of_its_time(
        kind: str, timer_payload: dict[str, Any], wall_s: float, reason: str,
        label: str) -> None:
    gate = awaiting()
    step = t.on_timer_early(gate, kind, timer_payload, measured_s=240.0, needed_s=600.0,
                            wall_s=wall_s, now=NOW)
    due = NOW + timedelta(seconds=360)
    assert step.gate == gate
    assert events(step) == ["timer_deferred"]
    assert step.records[0].details == {
        "timer": label, "reason": reason, "needed_s": 600.0, "measured_s": 240.0,
        "wall_clock_s": wall_s, "due": due.isoformat()}
    assert [(e.kind, e.name, e.payload, e.run_at) for e in step.effects] == [
        (kind, f"{label}-at-{int(due.timestamp())}", timer_payload, due)]


# --- a new policy in force ------------------------------------------------------------------------

def edited(decision: Decision) -> Decision:
    """`decision` as a new policy (another fingerprint) would make it."""
    return decision.model_copy(update={"policy": "new-policy"})


@pytest.mark.parametrize("gate", [
    Gate(phase=Phase.PAGED),  # decided: history
    Gate(phase=Phase.RFH, resolved_at=NOW),  # over
    Gate(phase=Phase.RFH, decision=edited(decide(esc("SEV3")))),  # judged by this policy
])
def test_a_policy_edit_leaves_decided_ended_and_current_escalations_alone(gate: Gate) -> None:
    step = t.on_policy_changed(gate, edited(decide(esc("SEV3"))), NOW, rfh_due=DUE)
    assert step == t.Step(gate)


def test_a_policy_edit_that_makes_a_request_for_help_an_emergency_asks_the_smoc() -> None:
    rfh = classify(Gate(), esc("SEV2", EXHAUSTED), decide(esc("SEV3"))).gate
    step = t.on_policy_changed(rfh, edited(decide(esc("SEV2", EXHAUSTED))), NOW, rfh_due=DUE)
    assert step.gate.phase is Phase.AWAITING_APPROVAL
    assert events(step) == ["policy_changed", "classified"]
    change = step.records[0].details
    assert (change["from"], change["to"], change["previous"], change["outcome"]) == (
        decide(esc("SEV3")).policy, "new-policy", "rfh", "emergency")
    assert (change["on_timeout"], change["timeout_minutes"]) == ("page", 20)
    assert "request_approval:request" in kinds(step)


def test_a_policy_edit_never_downgrades_an_emergency_whose_smoc_was_asked() -> None:
    step = t.on_policy_changed(awaiting(), edited(decide(esc("SEV3"))), NOW, rfh_due=DUE)
    assert step.gate.phase is Phase.AWAITING_APPROVAL
    assert events(step) == ["policy_changed"]
    assert step.records[0].details["outcome"] == "emergency"
    assert step.effects == ()


def test_a_policy_edit_of_a_received_escalation_records_no_previous_outcome() -> None:
    step = t.on_policy_changed(Gate(), edited(decide(esc("SEV3"))), NOW, rfh_due=DUE)
    assert events(step) == ["policy_changed", "classified"]
    assert step.records[0].details["previous"] is None
    assert "on_timeout" not in step.records[0].details  # a request for help has no timeout


# --- what happens to the page ---------------------------------------------------------------------

def test_a_page_event_before_any_page_changes_nothing() -> None:
    gate = awaiting()
    step = t.on_page_event(gate, "acknowledged", "Tina", NOW, "ev1", source=Source.INCIDENT_IO)
    assert step == t.Step(gate)


def test_the_pages_own_trigger_is_only_recorded_with_its_pagerduty_incident() -> None:
    gate = awaiting().model_copy(update={"phase": Phase.PAGED, "page": PAGE})
    step = t.on_page_event(gate, "assigned", "", NOW, "ev0", source=Source.INCIDENT_IO,
                           responders=({"id": "PU1", "name": "Tina", "time_zone": "UTC"},),
                           incident_id="Q1PAGE")
    assert step.gate == gate and step.effects == ()  # the thread heard of the page already
    assert events(step) == ["page_assigned"]
    assert step.records[0].actor == "pagerduty"
    assert step.records[0].once_key == t.vendor_event_key("ev0")
    assert step.records[0].details == {
        "event_id": "ev0", "incident_id": "Q1PAGE",
        "responders": [{"id": "PU1", "name": "Tina", "time_zone": "UTC"}]}


def test_something_noted_changes_no_state() -> None:
    gate = awaiting()
    step = t.on_noted(gate, "rfh_issue_noted", {"url": "https://gitlab.example/1"}, "once")
    assert step.gate == gate and step.effects == ()
    assert [(r.event, r.actor, r.details, r.once_key) for r in step.records] == [
        ("rfh_issue_noted", "tier2gate", {"url": "https://gitlab.example/1"}, "once")]


# --- failures that recover --------------------------------------------------------------------

@pytest.mark.parametrize(("effect", "runbook"), [
    (t.PAGE, "runbooks/page-did-not-go-out.md"),
    (t.RFH_ISSUE, "runbooks/request-for-help.md"),
    (t.THREAD_NOTE, "runbooks/job-dead-lettered.md"),  # no runbook of its own
])
def test_each_failure_names_the_runbook_that_says_what_to_do(effect: str, runbook: str) -> None:
    assert t.failure_runbook(effect) == runbook


@pytest.mark.parametrize(("gate", "effects"), [
    (awaiting(), [f"update_approval:recovered-page-{int(NOW.timestamp())}"]),
    (awaiting(requested=False), []),  # no message to correct
])
def test_a_recovered_effect_clears_the_attention_it_raised(gate: Gate,
                                                           effects: list[str]) -> None:
    failing = gate.model_copy(update={"problems": (
        Problem(effect=t.PAGE, reason="PagerDuty answered 503", at=NOW, final=False),
        Problem(effect=t.RETRO, reason="GitLab answered 500", at=NOW))})
    step = t.on_effect_recovered(failing, t.PAGE, NOW)
    assert [p.effect for p in step.gate.problems] == [t.RETRO]  # the other one still needs it
    assert events(step) == ["attention_cleared"]
    assert step.records[0].details == {"effect": t.PAGE}
    assert kinds(step) == effects
    assert t.on_effect_recovered(step.gate, t.PAGE, NOW) == t.Step(step.gate)  # told once

