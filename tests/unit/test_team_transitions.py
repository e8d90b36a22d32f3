"""The team on the gate: set by each classification until the approval request is posted,
then kept, and written on the timeline."""

from __future__ import annotations

from daemon.domain import transitions as t
from daemon.domain.gate import Gate, Phase
from daemon.domain.models import Escalation
from daemon.domain.teams import DEFAULT_TEAM
from tests.unit.test_transitions import DUE, EXHAUSTED, NOW, decide, esc, events


def judged(gate: Gate, escalation: Escalation, team: str,
           previous: Escalation | None = None) -> t.Step:
    decision = decide(escalation).model_copy(update={"team": team})
    return t.on_facts(gate, escalation, decision, NOW, previous=previous, rfh_due=DUE)


def test_without_teams_every_escalation_belongs_to_the_default_team() -> None:
    step = t.on_facts(Gate(), esc(fields=EXHAUSTED), decide(esc(fields=EXHAUSTED)), NOW,
                      previous=None, rfh_due=DUE)
    assert step.gate.team == DEFAULT_TEAM == "default"
    classified = next(r for r in step.records if r.event == "classified")
    assert classified.details["team"] == "default"


def test_the_classification_names_the_team_and_the_request_carries_it() -> None:
    step = judged(Gate(), esc(fields=EXHAUSTED), "emea")
    assert step.gate.team == "emea"
    assert next(r for r in step.records if r.event == "classified").details["team"] == "emea"
    posted = t.on_approval_posted(step.gate, "C1", "1.1", ("USMOC",), "", NOW)
    assert posted.records[0].event == "approval_requested"
    assert posted.records[0].details["team"] == "emea"


def test_a_team_change_before_the_request_moves_the_escalation_and_says_so() -> None:
    rfh = judged(Gate(), esc("SEV3"), "emea").gate
    step = judged(rfh, esc("SEV3", {"Tier 1 team": "AMER"}), "amer", previous=esc("SEV3"))
    assert step.gate.phase is Phase.RFH and step.gate.team == "amer"
    changed = next(r for r in step.records if r.event == "team_changed")
    assert changed.details == {"from": "emea", "to": "amer"}


def test_once_the_request_is_posted_the_team_stays() -> None:
    gate = judged(Gate(), esc(fields=EXHAUSTED), "emea").gate
    gate = t.on_approval_posted(gate, "C1", "1.1", ("USMOC",), "", NOW).gate
    moved = {**EXHAUSTED, "Tier 1 team": "AMER"}
    step = judged(gate, esc(fields=moved), "amer", previous=esc(fields=EXHAUSTED))
    assert step.gate.team == "emea"
    assert "team_changed" not in events(step)


def test_the_request_keeps_the_team_whose_approvers_were_asked() -> None:
    """Facts that moved the escalation while its request was being posted do not move the
    people asked: the escalation stays with the team the request went to."""
    gate = judged(Gate(), esc(fields=EXHAUSTED), "emea").gate
    moved = judged(gate, esc(fields={**EXHAUSTED, "Tier 1 team": "AMER"}), "amer",
                   previous=esc(fields=EXHAUSTED)).gate
    assert moved.team == "amer"
    posted = t.on_approval_posted(moved, "C1", "1.1", ("UEMEASMOC",), "", NOW, team="emea")
    assert posted.gate.team == "emea"
    assert posted.records[0].details["team"] == "emea"
