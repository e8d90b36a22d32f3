"""The Escalation Engineer step's edges, by tables: the first offer, going on without an EE,
takes and outcomes beside a posted approval request, and the clicks that change nothing. Each
row drives a public transition of `daemon.domain.ee` and says what people would see."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from daemon.domain import ee as t_ee
from daemon.domain import transitions as t
from daemon.domain.gate import ApprovalState, EEOutcome, EEState, Gate, Phase
from tests.unit.test_transitions import EXHAUSTED, NOW, decide, esc

OFFERED = EEState(rotation="r1", offered_at=NOW, offered_to=("UEE1", "UEE2"), channel="C0EE",
                  ts="1.1")
OWNED = OFFERED.model_copy(update={"owner": "UEE1", "owner_name": "Ada", "assigned_at": NOW})
REQUEST = ApprovalState(requested_at=NOW, channel="C1", ts="2.2", approvers=("USMOC",))
RFH = Gate(phase=Phase.RFH, decision=decide(esc("SEV3")))
EMERGENCY = Gate(phase=Phase.AWAITING_APPROVAL, decision=decide(esc(fields=EXHAUSTED)))
ASKED = EMERGENCY.model_copy(update={"approval": REQUEST})


def kinds(step: t.Step) -> list[str]:
    return [f"{e.kind}:{e.name}" for e in step.effects]


def events(step: t.Step) -> list[str]:
    return [str(r.event) for r in step.records]


def told(step: t.Step) -> dict[str, Any]:
    """The payload of the one reply to the clicker in `step`."""
    (reply,) = [e.payload for e in step.effects if e.kind == t.TELL_USER]
    return dict(reply)


@pytest.mark.parametrize(("gate", "unclaimed", "effects"), [
    # A request for help nobody takes in time goes on without the EEs.
    (RFH, True, [f"ee_unclaimed:unclaimed@{NOW + timedelta(hours=2)}"]),
    (RFH, False, []),
    # An emergency is bounded by its wait (or the SMOC's request), not by the unclaimed timer.
    (EMERGENCY, True, []),
])
def test_the_first_offer_is_recorded_once(gate: Gate, unclaimed: bool,
                                          effects: list[str]) -> None:
    at = NOW + timedelta(hours=2) if unclaimed else None
    step = t_ee.on_ee_offered(gate, "r1", ("UEE1", "UEE2"), "C0EE", "1.1", NOW, waiting=False,
                              unclaimed_at=at)
    assert events(step) == ["ee_offered"]
    assert step.records[0].once_key == "ee_offered"
    assert step.records[0].details == {"rotation": "r1", "to": ["UEE1", "UEE2"],
                                       "channel": "C0EE", "ts": "1.1"}
    assert [f"{e.kind}:{e.name}@{e.run_at}" for e in step.effects] == effects
    assert step.gate.ee == EEState(rotation="r1", offered_at=NOW, offered_to=("UEE1", "UEE2"),
                                   channel="C0EE", ts="1.1")


@pytest.mark.parametrize(("gate", "why", "recorded", "effects", "unclaimed"), [
    # No EE layer at all: today's path, nothing on the record.
    (RFH, "", [], ["rfh_notice:notice", "rfh_issue:issue"], None),
    (RFH, "no roster is configured", ["ee_skipped"],
     ["rfh_notice:notice", "rfh_issue:issue"], None),
    # Offered, but the offer message was never posted: nothing to update.
    (RFH.model_copy(update={"ee": OFFERED.model_copy(update={"ts": ""})}),
     "nobody took it in time", ["ee_skipped"], ["rfh_notice:notice", "rfh_issue:issue"], True),
    # An emergency whose request was posted already: nothing more to ask.
    (ASKED.model_copy(update={"ee": OFFERED}), "nobody is on the EE rotation",
     ["ee_skipped"], ["ee_update:unclaimed"], True),
])
def test_going_on_without_an_ee_takes_todays_path(gate: Gate, why: str, recorded: list[str],
                                                  effects: list[str],
                                                  unclaimed: bool | None) -> None:
    step = t_ee.on_ee_nobody(gate, why, NOW)
    assert events(step) == recorded
    assert kinds(step) == effects
    assert (step.gate.ee.unclaimed if step.gate.ee else None) is unclaimed


@pytest.mark.parametrize("phase", [Phase.IGNORED, Phase.CLOSED, Phase.DECLINED])
def test_nobody_is_needed_for_an_escalation_that_is_over(phase: Phase) -> None:
    gate = RFH.model_copy(update={"phase": phase, "ee": OFFERED})
    assert t_ee.on_ee_nobody(gate, "nobody is on the EE rotation", NOW) == t.Step(gate)


def test_a_click_on_another_message_changes_nothing_and_says_so() -> None:
    gate = RFH.model_copy(update={"ee": OFFERED})
    step = t_ee.on_ee_foreign_click(gate, "UEE2", "k1", "C0EE")
    assert step.gate == gate and step.records == ()
    assert kinds(step) == ["tell_user:ee-k1"]
    assert (told(step)["user"], told(step)["channel"]) == ("UEE2", "C0EE")


def test_take_and_outcome_without_an_offer_change_nothing() -> None:
    assert t_ee.on_ee_take(RFH, "UEE1", "Ada", NOW, on_rotation=True, owner_on_rotation=True,
                           click_id="k", channel="C0EE", quiet_minutes=240) == t.Step(RFH)
    assert t_ee.on_ee_outcome(RFH, "UEE1", EEOutcome.RESOLVED, NOW, click_id="k",
                              channel="C0EE") == t.Step(RFH)


@pytest.mark.parametrize(("ee", "owner_on_rotation", "event", "effects"), [
    (OFFERED, True, "ee_assigned",
     ["ee_update:assigned", "ee_quiet:quiet-1", "update_approval:ee-assigned"]),
    (OWNED, False, "ee_taken_over",
     ["ee_update:taken-over-k2", "update_approval:ee-taken-over-k2"]),
])
def test_the_approval_request_shows_who_took_an_emergency(ee: EEState, owner_on_rotation: bool,
                                                          event: str,
                                                          effects: list[str]) -> None:
    step = t_ee.on_ee_take(ASKED.model_copy(update={"ee": ee}), "UEE2", "Grace", NOW,
                           on_rotation=True, owner_on_rotation=owner_on_rotation,
                           click_id="k2", channel="C0EE", quiet_minutes=240)
    assert events(step) == [event]
    assert kinds(step) == effects
    assert step.gate.ee is not None and step.gate.ee.owner == "UEE2"


@pytest.mark.parametrize(("outcome", "effects", "phase"), [
    # The SMOC was asked already: the request stays theirs, its message shows the EE's word.
    (EEOutcome.ENGINEERING, ["ee_update:outcome", "update_approval:ee-engineering"],
     Phase.AWAITING_APPROVAL),
    (EEOutcome.RESOLVED, ["ee_update:outcome", "update_approval:ee-resolved"],
     Phase.AWAITING_APPROVAL),
])
def test_the_ees_word_on_an_emergency_already_put_to_the_smoc(outcome: EEOutcome,
                                                             effects: list[str],
                                                             phase: Phase) -> None:
    gate = ASKED.model_copy(update={"ee": OWNED})
    step = t_ee.on_ee_outcome(gate, "UEE1", outcome, NOW, click_id="k", channel="C0EE")
    assert kinds(step) == effects
    assert step.gate.phase is phase


def test_a_request_for_help_resolved_after_it_went_on_tells_its_issue() -> None:
    gate = RFH.model_copy(update={"ee": OWNED.model_copy(update={"unclaimed": True})})
    step = t_ee.on_ee_outcome(gate, "UEE1", EEOutcome.RESOLVED, NOW, click_id="k",
                              channel="C0EE")
    assert events(step) == ["ee_resolved"]
    assert kinds(step) == ["ee_update:outcome", "rfh_note:ee-resolved"]
    (note,) = [e.payload for e in step.effects if e.kind == t.RFH_NOTE]
    assert "UEE1" in str(note["text"]) and "without Engineering" in str(note["text"])


def test_the_outcome_before_anyone_took_it_asks_to_take_it_first() -> None:
    gate = RFH.model_copy(update={"ee": OFFERED})
    step = t_ee.on_ee_outcome(gate, "UEE1", EEOutcome.RESOLVED, NOW, click_id="k",
                              channel="C0EE")
    assert step.gate == gate and step.records == ()
    assert told(step)["text"] == "Take the escalation first."


@pytest.mark.parametrize("gate", [
    RFH.model_copy(update={"ee": OWNED, "resolved_at": NOW}),  # over
    RFH.model_copy(update={"ee": OFFERED}),  # nobody owns it
    RFH.model_copy(update={"ee": OWNED.model_copy(update={"outcome": EEOutcome.ENGINEERING})}),
])
def test_the_quiet_timer_stops_when_nobody_owns_the_open_work(gate: Gate) -> None:
    step, remind = t_ee.on_ee_quiet(gate, 1, NOW, 240, NOW + timedelta(days=1))
    assert (step, remind) == (t.Step(gate), False)
