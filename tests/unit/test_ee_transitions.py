"""The Escalation Engineer step of the state machine, by tables: pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.domain import ee as t_ee
from daemon.domain import transitions as t
from daemon.domain.effects import EffectKind
from daemon.domain.gate import ApprovalState, EEOutcome, EEState, Gate, Phase
from tests.support import said as chat_text
from tests.unit.test_transitions import decide, esc

NOW = datetime(2026, 11, 21, 2, 5, tzinfo=UTC)
OFFERED = EEState(rotation="r1", offered_at=NOW, offered_to=("UEE1", "UEE2"), channel="C0EE",
                  message_id="1.1")
OWNED = OFFERED.model_copy(update={"owner": "UEE1", "owner_name": "Ada",
                                   "assigned_at": NOW + timedelta(minutes=3)})
RFH = Gate(phase=Phase.RFH, decision=decide(esc("SEV3")), ee=OFFERED)
WAITING = Gate(phase=Phase.AWAITING_APPROVAL, decision=decide(esc(fields={
    "Support exhausted knowledge": "Yes"})), ee=OFFERED.model_copy(update={"waiting": True}))


def kinds(step: t.Step) -> list[str]:
    return [f"{e.kind}:{e.name}" for e in step.effects]


def take(gate: Gate, user: str, *, on_rotation: bool = True,
         owner_on_rotation: bool = True) -> t.Step:
    return t_ee.on_ee_take(gate, user, "Name", NOW + timedelta(minutes=3),
                           on_rotation=on_rotation, owner_on_rotation=owner_on_rotation,
                           click_id=f"{user}-1", channel="C0EE", quiet_minutes=240)


@pytest.mark.parametrize(("gate", "user", "on_rotation", "owner_stays", "owner", "events",
                          "told"), [
    (RFH, "UEE1", True, True, "UEE1", ["ee_assigned"], ""),
    (RFH, "USTRANGER", False, True, "", [], "Only the Escalation Engineers"),
    (RFH.model_copy(update={"ee": OWNED}), "UEE2", True, True, "UEE1", [],
     "<@UEE1> has already taken"),
    (RFH.model_copy(update={"ee": OWNED}), "UEE1", True, True, "UEE1", [], "already own"),
    # After a rotation change an incoming EE takes over from an outgoing one.
    (RFH.model_copy(update={"ee": OWNED}), "UEE3", True, False, "UEE3", ["ee_taken_over"], ""),
    (RFH.model_copy(update={"resolved_at": NOW}), "UEE1", True, True, "", [],
     "This escalation is over"),
])
def test_take_it(gate: Gate, user: str, on_rotation: bool, owner_stays: bool, owner: str,
                 events: list[str], told: str) -> None:
    step = take(gate, user, on_rotation=on_rotation, owner_on_rotation=owner_stays)
    assert step.gate.ee is not None and step.gate.ee.owner == owner
    assert [r.event for r in step.records] == events
    texts = [chat_text(e) for e in step.effects if e.kind == EffectKind.TELL_USER]
    assert (told in texts[0]) if told else texts == []


def test_the_first_take_sets_the_quiet_timer_and_updates_the_offer() -> None:
    step = take(RFH, "UEE1")
    assert kinds(step) == ["ee_update:assigned", "ee_quiet:quiet-1"]
    assert step.records[0].once_key == "ee_assigned"
    assert step.records[0].details["after_s"] == 180.0


@pytest.mark.parametrize(("gate", "outcome", "phase", "event", "effects"), [
    (RFH.model_copy(update={"ee": OWNED}), EEOutcome.RESOLVED, Phase.RFH, "ee_resolved",
     ["ee_update:outcome"]),
    (RFH.model_copy(update={"ee": OWNED}), EEOutcome.ENGINEERING, Phase.RFH,
     "ee_needs_engineering", ["ee_update:outcome", "rfh_notice:notice", "rfh_issue:issue"]),
    (WAITING.model_copy(update={"ee": OWNED.model_copy(update={"waiting": True})}),
     EEOutcome.RESOLVED, Phase.CLOSED, "ee_resolved", ["ee_update:outcome"]),
    # An emergency on its way to the SMOC (its rule does not wait for an EE, or the wait is
    # over) stays the SMOC's to decide, even before the request is posted.
    (WAITING.model_copy(update={"ee": OWNED}), EEOutcome.RESOLVED, Phase.AWAITING_APPROVAL,
     "ee_resolved", ["ee_update:outcome"]),
    (WAITING.model_copy(update={"ee": OWNED}), EEOutcome.ENGINEERING, Phase.AWAITING_APPROVAL,
     "ee_needs_engineering", ["ee_update:outcome", "request_approval:request",
                              "approval_remind:1", "approval_timeout:timeout"]),
])
def test_the_owner_ends_the_ee_step(gate: Gate, outcome: EEOutcome, phase: Phase, event: str,
                                    effects: list[str]) -> None:
    step = t_ee.on_ee_outcome(gate, "UEE1", outcome, NOW, click_id="c", channel="C0EE")
    assert step.gate.phase is phase
    assert [r.event for r in step.records] == [event]
    assert kinds(step) == effects
    again = t_ee.on_ee_outcome(step.gate, "UEE1", outcome, NOW, click_id="d", channel="C0EE")
    assert again.records == () and again.gate == step.gate  # said once


def test_only_the_owner_ends_the_ee_step() -> None:
    gate = RFH.model_copy(update={"ee": OWNED})
    step = t_ee.on_ee_outcome(gate, "UEE2", EEOutcome.RESOLVED, NOW, click_id="c",
                              channel="C0EE")
    assert step.gate == gate and step.records == ()
    assert "Only the EE who took this escalation (<@UEE1>)" in chat_text(step.effects[0])


@pytest.mark.parametrize(("gate", "effects"), [
    (RFH, ["rfh_notice:notice", "rfh_issue:issue", "ee_update:unclaimed"]),
    (WAITING, ["request_approval:request", "approval_remind:1", "approval_timeout:timeout",
               "ee_update:unclaimed"]),
    (RFH.model_copy(update={"ee": OWNED}), []),  # an EE took it meanwhile: the EE decides
])
def test_nobody_on_rotation_goes_on_at_once(gate: Gate, effects: list[str]) -> None:
    step = t_ee.on_ee_nobody(gate, "nobody is on the EE rotation", NOW)
    assert kinds(step) == effects
    if effects:
        assert step.gate.ee is not None and step.gate.ee.unclaimed


@pytest.mark.parametrize(("gate", "asks"), [
    (WAITING, True),
    (WAITING.model_copy(update={"ee": OWNED}), True),  # taken, but no word yet
    (WAITING.model_copy(update={"ee": OWNED.model_copy(update={
        "outcome": EEOutcome.RESOLVED})}), False),
    (WAITING.model_copy(update={"approval": ApprovalState(
        requested_at=NOW, channel="C1", message_id="2.2", approvers=("USMOC",))}), False),
])
def test_the_bounded_wait_ends_by_asking_the_smoc(gate: Gate, asks: bool) -> None:
    step = t_ee.on_ee_wait_over(gate, NOW + timedelta(minutes=15))
    assert ("request_approval:request" in kinds(step)) is asks


def test_a_quiet_timer_reminds_only_after_the_quiet_time() -> None:
    gate = RFH.model_copy(update={"ee": OWNED})
    busy, remind = t_ee.on_ee_quiet(gate, 1, NOW, 240, NOW + timedelta(minutes=100))
    due = int((NOW + timedelta(minutes=240)).timestamp())
    assert not remind and kinds(busy) == [f"ee_quiet:quiet-1-{due}"]
    quiet, remind = t_ee.on_ee_quiet(gate, 1, NOW, 240, NOW + timedelta(minutes=241))
    assert remind and [r.event for r in quiet.records] == ["ee_reminded"]
    assert kinds(quiet) == ["ee_quiet:quiet-2"]


def test_an_emergency_whose_ee_already_answered_asks_the_smoc_at_once() -> None:
    """A request for help the EE sent to Engineering becomes an emergency whose rule would wait
    for an EE: the EE has spoken already, so nobody waits."""
    said = OWNED.model_copy(update={"outcome": EEOutcome.ENGINEERING})
    gate = WAITING.model_copy(update={"ee": said})
    step = t_ee.on_ee_offered(gate, "r1", ("UEE1",), "C0EE", "1.1", NOW, waiting=True,
                              unclaimed_at=None)
    assert "request_approval:request" in kinds(step)
    assert step.gate.ee is not None and not step.gate.ee.waiting
    undecided = t_ee.on_ee_offered(WAITING.model_copy(update={"ee": OWNED}), "r1", ("UEE1",),
                                   "C0EE", "1.1", NOW, waiting=True, unclaimed_at=None)
    assert kinds(undecided) == ["ee_update:emergency"]  # the bounded wait decides
