"""Reopened incidents are decided again, by tables: (gate resolved some way, reopening facts) ->
phase, round, timeline events, effects; and the per-round names that keep every round's
exactly-once guarantees."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.domain import transitions as t
from daemon.domain.gate import Gate, Phase, Verdict
from daemon.domain.models import Escalation, Source, Status
from daemon.domain.policy import evaluate
from daemon.ingress.pagerduty import parse_pagerduty
from daemon.jobs.escalations import changes_for
from daemon.jobs.intake import _stale, page_key, parse_page_key
from daemon.policy_source import load_policy
from daemon.store import EscalationRow
from tests.harness import payload

POLICY = load_policy(Path(__file__).resolve().parents[2] / "config" / "policy.yaml")
OPENED = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)  # a Saturday, 2 a.m.
NOW = OPENED + timedelta(minutes=5)
CLOSED_AT = OPENED + timedelta(minutes=30)
REOPENED_AT = OPENED + timedelta(minutes=40)
DUE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
EXHAUSTED = {"Support exhausted knowledge": "Yes"}
ASK = ["request_approval:request", "approval_remind:1", "approval_timeout:timeout"]


def esc(severity: str = "SEV1", fields: dict[str, str] | None = None,
        status: Status = Status.OPEN, source: Source = Source.INCIDENT_IO,
        updated_at: datetime = NOW) -> Escalation:
    return Escalation(source=source, external_id="01ABC", reference="INC-7", title="DB down",
                      severity=severity, status=status, fields=fields or {},
                      created_at=OPENED, updated_at=updated_at)


def facts(gate: Gate, escalation: Escalation, previous: Escalation | None,
          at: datetime = NOW) -> t.Step:
    return t.on_facts(gate, escalation, evaluate(POLICY, escalation, at), at,
                      previous=previous, rfh_due=DUE)


def closed(escalation: Escalation) -> Escalation:
    return escalation.model_copy(update={"status": Status.RESOLVED, "updated_at": CLOSED_AT})


def resolve(gate: Gate, last: Escalation) -> Gate:
    return facts(gate, closed(last), last, CLOSED_AT).gate


def emergency() -> Gate:
    gate = facts(Gate(), esc(fields=EXHAUSTED), None).gate
    return t.on_approval_posted(gate, "C1", "1.1", ("USMOC",), "", NOW).gate


def rfh_closed() -> Gate:
    return resolve(facts(Gate(), esc("SEV3"), None).gate, esc("SEV3"))


def ignored_closed() -> Gate:
    test = esc("SEV3").model_copy(update={"test_mode": True})
    return resolve(facts(Gate(), test, None).gate, test)


def declined_closed() -> Gate:
    gate = t.on_click(emergency(), "USMOC", Verdict.DECLINED, NOW, allowed=True, click_id="c",
                      reason="can wait", rfh_due=DUE).gate
    return resolve(gate, esc(fields=EXHAUSTED))


def closed_before_a_decision() -> Gate:
    return resolve(emergency(), esc(fields=EXHAUSTED))


def paged_closed() -> Gate:
    gate = t.on_click(emergency(), "USMOC", Verdict.APPROVED, NOW, allowed=True,
                      click_id="c").gate
    gate = t.on_paged(gate, "PT2", "https://pd/PT2", NOW, shadow=False).gate
    gate = t.on_retro_opened(gate, "https://gl/retro/1", shadow=False).gate
    return resolve(gate, esc(fields=EXHAUSTED))


REOPENED_EMERGENCY = esc(fields=EXHAUSTED, updated_at=REOPENED_AT)
REOPENED_RFH = esc("SEV3", updated_at=REOPENED_AT)


@pytest.mark.parametrize(("resolved", "before", "reopened", "phase", "round_no", "recorded",
                          "effects"), [
    # The seen example: an RFH resolved, then set active again as SEV1 with exhausted = Yes.
    (rfh_closed, esc("SEV3"), REOPENED_EMERGENCY, Phase.AWAITING_APPROVAL, 1,
     ["updated", "reopened", "classified"], ASK),
    (ignored_closed, esc("SEV3"), REOPENED_EMERGENCY, Phase.AWAITING_APPROVAL, 1,
     ["updated", "reopened", "classified"], ASK),
    # Reopened, still a request for help: nothing is asked, nothing is posted twice.
    (rfh_closed, esc("SEV3"), REOPENED_RFH, Phase.RFH, 1, ["updated", "reopened"], []),
    # The SMOC had been involved: a new round asks again.
    (paged_closed, esc(fields=EXHAUSTED), REOPENED_EMERGENCY, Phase.AWAITING_APPROVAL, 2,
     ["updated", "reopened", "classified"], ASK),
    (declined_closed, esc(fields=EXHAUSTED), REOPENED_EMERGENCY, Phase.AWAITING_APPROVAL, 2,
     ["updated", "reopened", "classified"], ASK),
    (closed_before_a_decision, esc(fields=EXHAUSTED), REOPENED_EMERGENCY,
     Phase.AWAITING_APPROVAL, 2, ["updated", "reopened", "classified"], ASK),
    # A new round that the policy now calls a request for help takes the RFH path.
    (paged_closed, esc(fields=EXHAUSTED), REOPENED_RFH, Phase.RFH, 2,
     ["updated", "reopened", "classified"], ["ee_offer:offer"]),
])
def test_a_reopen_clears_the_resolution_and_decides_again(
        resolved: Callable[[], Gate], before: Escalation, reopened: Escalation, phase: Phase,
        round_no: int, recorded: list[str], effects: list[str]) -> None:
    gate = resolved()
    assert gate.resolved_at is not None
    step = facts(gate, reopened, closed(before), REOPENED_AT)
    assert step.gate.phase is phase
    assert step.gate.resolved_at is None
    assert step.gate.reopened_at == REOPENED_AT
    assert step.gate.round == round_no
    assert [r.event for r in step.records] == recorded
    assert [f"{e.kind}:{e.name}" for e in step.effects] == effects
    [reopen] = [r for r in step.records if r.event == "reopened"]
    assert reopen.details["previous"] == gate.phase.value
    assert reopen.details["outcome"] == (gate.decision.outcome.value if gate.decision else None)


def test_a_new_round_keeps_the_earlier_one_and_starts_clean() -> None:
    gate = paged_closed()
    step = facts(gate, REOPENED_EMERGENCY, closed(esc(fields=EXHAUSTED)), REOPENED_AT)
    new = step.gate
    assert (new.approval, new.decided, new.page, new.acknowledged_at) == (None, None, None, None)
    assert new.retro_url == "https://gl/retro/1"  # the retro is the escalation's, not a round's
    [earlier] = new.earlier
    assert earlier.round == 1 and earlier.phase is Phase.CLOSED
    assert earlier.approval == gate.approval and earlier.page == gate.page
    assert earlier.decided == gate.decided and earlier.resolved_at == gate.resolved_at
    assert new.asked_earlier("C1", "1.1") and not new.asked_earlier("C1", "2.2")
    assert new.ever_paged


@pytest.mark.parametrize(("gate", "now_facts", "previous"), [
    # A timer's re-check hands in the stored facts: resolved both times.
    (rfh_closed, closed(esc("SEV1")), closed(esc("SEV1"))),
    # A Slack-declared escalation ends with its page; its own facts stay open.
    (rfh_closed, esc("SEV1", EXHAUSTED, source=Source.SLACK),
     esc("SEV1", EXHAUSTED, source=Source.SLACK)),
    # Still resolved, other details changed.
    (paged_closed, closed(esc("SEV2", EXHAUSTED)), closed(esc(fields=EXHAUSTED))),
])
def test_no_reopen_without_the_source_going_from_resolved_to_open(
        gate: Callable[[], Gate], now_facts: Escalation, previous: Escalation) -> None:
    before = gate()
    step = facts(before, now_facts, previous, REOPENED_AT)
    assert "reopened" not in [r.event for r in step.records]
    assert step.gate.resolved_at == before.resolved_at
    assert step.gate.round == before.round
    assert step.effects == ()


def row(gate: Gate) -> EscalationRow:
    return EscalationRow(id="esc-7f3k9q2m", source="incident_io", external_id="01ABC",
                         state=gate.phase.value, outcome=None, data={"gate": {}}, version=3,
                         opened_at=OPENED.timestamp(), created_at=OPENED.timestamp(),
                         updated_at=NOW.timestamp(), attention=False)


def test_a_new_round_has_its_own_job_keys_once_keys_and_payload_round() -> None:
    step = facts(paged_closed(), REOPENED_EMERGENCY, closed(esc(fields=EXHAUSTED)), REOPENED_AT)
    posted = t.on_approval_posted(step.gate, "C1", "2.2", ("USMOC",), "", REOPENED_AT)
    approved = t.on_click(posted.gate, "USMOC", Verdict.APPROVED, REOPENED_AT, allowed=True,
                          click_id="c2")
    changes = [changes_for("esc-7f3k9q2m", REOPENED_EMERGENCY, s, REOPENED_AT,
                           previous=row(Gate())) for s in (step, posted, approved)]
    keys = [job.key for c in changes for job in c.jobs]
    assert "request_approval:esc-7f3k9q2m:request@round-2" in keys
    assert "approval_timeout:esc-7f3k9q2m:timeout@round-2" in keys
    assert "page:esc-7f3k9q2m:page@round-2" in keys
    assert all(job.payload["round"] == 2 for c in changes for job in c.jobs)
    once = [e.once_key for c in changes for e in c.events if e.once_key]
    assert once == ["approval_requested@round-2", "decision@round-2"]


def test_round_one_keeps_the_names_it_always_had() -> None:
    step = facts(Gate(), esc(fields=EXHAUSTED), None)
    change = changes_for("esc-7f3k9q2m", esc(fields=EXHAUSTED), step, NOW, previous=None)
    assert [job.key for job in change.jobs] == [
        "request_approval:esc-7f3k9q2m:request", "approval_remind:esc-7f3k9q2m:1",
        "approval_timeout:esc-7f3k9q2m:timeout"]
    assert all("round" not in job.payload for job in change.jobs)


def second_round_paged() -> Gate:
    gate = facts(paged_closed(), REOPENED_EMERGENCY, closed(esc(fields=EXHAUSTED)),
                 REOPENED_AT).gate
    gate = t.on_approval_posted(gate, "C1", "2.2", ("USMOC",), "", REOPENED_AT).gate
    gate = t.on_click(gate, "USMOC", Verdict.APPROVED, REOPENED_AT, allowed=True,
                      click_id="c2").gate
    return t.on_paged(gate, "PT9", "https://pd/PT9", REOPENED_AT, shadow=False).gate


def test_a_repaged_round_resolving_asks_for_a_note_on_the_retro() -> None:
    gate = second_round_paged()
    step = facts(gate, closed(REOPENED_EMERGENCY).model_copy(
        update={"updated_at": REOPENED_AT + timedelta(minutes=30)}), REOPENED_EMERGENCY,
        REOPENED_AT + timedelta(minutes=30))
    [retro] = [e for e in step.effects if e.kind == t.RETRO]
    assert retro.name == "retro"
    note = retro.payload["note"]
    for fact in ("reopened at 2026-11-21 02:40 UTC", "round 2", "paged again at 2026-11-21 "
                 "02:40 UTC", "https://pd/PT9", "approved by USMOC"):
        assert fact in note, note
    noted = t.on_retro_noted(step.gate, 2, note, shadow=False)
    assert noted.gate.retro_round == 2
    assert [(r.event, r.once_key) for r in noted.records] == [("retro_noted", "retro_noted")]
    assert t.on_retro_noted(noted.gate, 2, note, shadow=False).records == ()


def test_a_page_of_an_earlier_round_lands_there_and_never_decides_the_new_one() -> None:
    # Approved, resolved while the page was in flight, reopened: then the page's answer comes.
    gate = t.on_click(emergency(), "USMOC", Verdict.APPROVED, NOW, allowed=True,
                      click_id="c").gate
    gate = resolve(gate, esc(fields=EXHAUSTED))
    gate = facts(gate, REOPENED_EMERGENCY, closed(esc(fields=EXHAUSTED)), REOPENED_AT).gate
    assert (gate.round, gate.phase) == (2, Phase.AWAITING_APPROVAL)
    step = t.on_paged(gate, "PT2", "https://pd/PT2", REOPENED_AT, shadow=False, page_round=1)
    assert step.gate.phase is Phase.AWAITING_APPROVAL and step.gate.page is None
    assert step.gate.earlier[0].page is not None
    assert [(r.event, r.once_key, r.details["round"]) for r in step.records] == [
        ("paged", None, 1)]
    assert [(e.kind, e.payload["round"]) for e in step.effects] == [(t.RETRO, 1)]
    again = t.on_paged(step.gate, "PT2", "https://pd/PT2", REOPENED_AT, shadow=False,
                       page_round=1)
    assert again.records == ()


def test_an_earlier_rounds_page_event_is_only_noted() -> None:
    gate = second_round_paged()
    step = t.on_page_event(gate, "acknowledged", "Tina", REOPENED_AT, "ev1",
                           source=Source.INCIDENT_IO, page_round=1)
    assert step.gate == gate
    assert [(r.event, r.details["round"]) for r in step.records] == [("acknowledged", 1)]


@pytest.mark.parametrize(("new", "stored", "stale"), [
    (esc(updated_at=NOW), closed(esc()), True),  # an old "live" delivery after "closed"
    (esc(updated_at=CLOSED_AT), closed(esc()), True),  # same instant: cannot be ordered
    (esc(updated_at=REOPENED_AT), closed(esc()), False),  # a real reopen
    (closed(esc()), esc(updated_at=CLOSED_AT), False),  # resolving at the same instant
])
def test_only_newer_facts_can_reopen(new: Escalation, stored: Escalation, stale: bool) -> None:
    assert _stale(new, stored) is stale


@pytest.mark.parametrize(("round_no", "key"), [
    (1, "tier2gate-esc-7f3k9q2m"), (2, "tier2gate-esc-7f3k9q2m.round2"),
    (12, "tier2gate-esc-7f3k9q2m.round12")])
def test_page_keys_per_round(round_no: int, key: str) -> None:
    assert page_key("esc-7f3k9q2m", round_no) == key
    assert parse_page_key(key) == ("esc-7f3k9q2m", round_no)


@pytest.mark.parametrize("data_status", ["triggered", "resolved", None])
def test_pagerduty_reopened_is_open_whatever_data_status_says(data_status: Any) -> None:
    body = json.loads(payload("pagerduty/zulip_reopened_v3.json"))
    body["event"]["data"]["status"] = data_status
    event = parse_pagerduty(body, received_at=NOW)
    assert event.escalation is not None
    assert event.escalation.status is Status.OPEN


def test_a_click_on_an_earlier_rounds_request_decides_nothing() -> None:
    gate = facts(closed_before_a_decision(), REOPENED_EMERGENCY, closed(esc(fields=EXHAUSTED)),
                 REOPENED_AT).gate
    step = t.on_click(gate, "USMOC", Verdict.APPROVED, REOPENED_AT, allowed=True,
                      click_id="old", earlier_round=True)
    assert step.gate == gate
    assert [r.event for r in step.records] == ["decision_ignored"]
    [tell] = step.effects
    assert "before the incident was reopened" in tell.payload["text"]
