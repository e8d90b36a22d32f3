"""The retro issue's body: durations computed by hand, the timeline in UTC, a custom template."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.domain import transitions as t
from daemon.domain.gate import Gate, Verdict
from daemon.domain.models import Escalation, Source, Status
from daemon.domain.policy import evaluate
from daemon.jobs.escalations import changes_for
from daemon.jobs.issues import render, retro_context
from daemon.policy_source import PolicySource
from daemon.settings import RetroSettings, RfhSettings, Settings
from daemon.store import EscalationRow, TimelineEntry
from daemon.store.mapping import loaded

POLICY_FILE = Path(__file__).resolve().parents[2] / "config" / "policy.yaml"
OPENED = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)  # Saturday 02:00 UTC


def minutes(n: float) -> datetime:
    return OPENED + timedelta(minutes=n)


def story() -> tuple[EscalationRow, list[TimelineEntry]]:
    esc = Escalation(source=Source.INCIDENT_IO, external_id="01X", reference="INC-9",
                     title="Checkout down", severity="SEV1", customer="Acme Corp",
                     fields={"Support exhausted knowledge": "Yes"},
                     links={"incident": "https://app.incident.io/incidents/9"},
                     created_at=OPENED, updated_at=OPENED)
    policy = PolicySource(POLICY_FILE).current()
    steps = [t.on_facts(Gate(), esc, evaluate(policy, esc, OPENED), OPENED, previous=None,
                        rfh_due=OPENED)]
    steps.append(t.on_approval_posted(steps[-1].gate, "C1", "1.1", ("USMOC",), "", minutes(1)))
    steps.append(t.on_click(steps[-1].gate, "USMOC", Verdict.APPROVED, minutes(3), allowed=True,
                            click_id="c"))
    steps.append(t.on_paged(steps[-1].gate, "Q1", "https://pd/Q1", minutes(3.2), shadow=False))
    steps.append(t.on_page_event(steps[-1].gate, "acknowledged", "Tina", minutes(10), "e1",
                                 source=Source.INCIDENT_IO))
    resolved = esc.model_copy(update={"status": Status.RESOLVED, "updated_at": minutes(90)})
    steps.append(t.on_facts(steps[-1].gate, resolved, evaluate(policy, resolved, minutes(90)),
                            minutes(90), previous=esc, rfh_due=OPENED))
    times = [OPENED, minutes(1), minutes(3), minutes(3.2), minutes(10), minutes(90)]
    entries = [TimelineEntry(n, "esc-1", at.timestamp(), r.event, r.actor, r.details)
               for n, (step, at) in enumerate(zip(steps, times, strict=True))
               for r in step.records]
    row = changes_for("esc-1", resolved, steps[-1], minutes(90), previous=None).escalation
    assert row is not None
    return row, entries


def test_durations_and_timeline_in_the_default_retro() -> None:
    row, entries = story()
    context = retro_context(loaded(row), entries, Settings())
    assert context["durations"] == {"to_approval": "3 min", "to_page": "3 min",
                                    "to_acknowledgement": "7 min", "to_resolution": "1 h 30 min"}
    assert context["weekend"] is True
    body = render(RetroSettings(), "retro.md.j2", context)
    assert "| 2026-11-21 02:03:00 | approved | USMOC |" in body
    assert "| 2026-11-21 03:30:00 | resolved | incident_io |" in body
    assert "**Weekend** escalation" in body
    assert "support exhausted knowledge" in body
    assert "Which doc or error message would have let Support solve this without Dev?" in body


def test_a_custom_template_replaces_the_built_in_one(tmp_path: Path) -> None:
    template = tmp_path / "retro.md.j2"
    template.write_text("{{ title }} for {{ customer }}: {{ durations.to_resolution }}\n")
    row, entries = story()
    body = render(RetroSettings(template_file=template), "retro.md.j2",
                  retro_context(loaded(row), entries, Settings()))
    assert body == "Checkout down for Acme Corp: 1 h 30 min\n"


def test_the_retro_and_the_rfh_name_the_tier1_team() -> None:
    row, entries = story()
    current = loaded(row)
    moved = current.gate.model_copy(update={"team": "emea"})
    data = {**row.data, "gate": moved.model_dump(mode="json")}
    context = retro_context(loaded(replace(row, data=data)), entries, Settings())
    assert "- Tier 1 team: emea" in render(RetroSettings(), "retro.md.j2", context)
    assert "- Tier 1 team: emea" in render(RfhSettings(), "rfh.md.j2", context)
    assert "- Tier 1 team: default" in render(
        RetroSettings(), "retro.md.j2", retro_context(current, entries, Settings()))
