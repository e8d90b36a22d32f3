"""Twenty days of escalations whose KPIs were worked out by hand (`EXPECTED`).

Times are minutes after `base` (epoch seconds): the store tests pass their injected clock's
start, the command-line test the real clock, so nothing depends on today's date. "Now" is
`base + NOW_S`.

Emergencies:
- K1 S1 Acme, team emea, service checkout: paged 5 min after it arrived, acknowledged 10
  min later; complete evidence; engaged 4 → resolved 125 (121 min active), one quiet spell
  after an update at 35, due at 65, ended by an update at 75 (10 min overdue); retro closed
  complete.
- K2 S1 Acme, team amer, checkout: paged at 3, acknowledged after 20 min; evidence
  incomplete; engaged 2 → resolved 63, reopened 70, resolved again 100 (98 min active);
  retro closed incomplete.
- K3 S2 Globex, team amer, billing: paged at 6, acknowledged after 4 min; complete evidence;
  engaged 5 → resolved 66 (61 min); retro opened at 67 and still open on day 20: overdue.
- K4 S1 Initech, team emea, no service: opened an hour before now, paged at 2, acknowledged
  after 10 min (its last update); complete evidence; engaged at 1, still active (59 min);
  quiet since it fell due at 42 (18 min overdue now).
Requests for help: R1 Acme resolved; R2 Globex resolved and reopened. T1, an ignored test
incident of Acme on checkout, resolved and reopened as people practise, drives nothing and
counts in no reopen rate.
"""

from __future__ import annotations

from typing import Any

from daemon.clock import to_datetime
from daemon.domain.events import EventKind
from daemon.domain.gate import Gate, Phase
from daemon.domain.models import Criterion, Escalation, Source, Status
from daemon.domain.policy import Decision, Facts, Outcome
from daemon.store import Changes, EscalationRow, NewEvent, Store

DAY_MIN = 24 * 60
NOW_S = 20 * DAY_MIN * 60.0


def _row(esc_id: str, opened_s: float, phase: Phase, outcome: str, severity: str,
         customer: str, fields: dict[str, str], team: str = "default") -> EscalationRow:
    facts = Facts(source=Source.INCIDENT_IO, status=Status.OPEN, severity=severity,
                  reported_severity=severity, criteria={c: False for c in Criterion},
                  customer=customer, labels=(), age_minutes=0.0, weekend=False,
                  off_hours=False, test_mode=False)
    decision = Decision(outcome=Outcome(outcome), rule=None, reason="fixture", matched={},
                        facts=facts)
    opened = to_datetime(opened_s)
    escalation = Escalation(source=Source.INCIDENT_IO, external_id=esc_id,
                            reference=f"INC-{esc_id}", title=f"title {esc_id}",
                            severity=severity, customer=customer, fields=fields,
                            created_at=opened, updated_at=opened)
    gate = Gate(phase=phase, decision=decision, team=team)
    return EscalationRow(id=esc_id, source="incident_io", external_id=esc_id,
                         state=phase.value, outcome=outcome,
                         data={"escalation": escalation.model_dump(mode="json"),
                               "gate": gate.model_dump(mode="json")},
                         version=1, opened_at=opened_s, created_at=opened_s,
                         updated_at=opened_s, team=team)


def _once(event: str, details: dict[str, Any]) -> str | None:
    """The once keys the cadence job writes, which its next runs look for."""
    if event == "update_overdue":
        return str(details["once_key"])
    if event == "update_resumed":
        return f"resumed:{details['once_key']}"
    return None


def pack(complete: bool) -> dict[str, Any]:
    """The evidence pack an approval request showed, as `approval_requested` records it."""
    return {"present": ["customer impact"], "missing": [] if complete else ["deadline"],
            "complete": complete}


def escalations(base: float) -> list[tuple[EscalationRow, list[NewEvent]]]:
    def at(esc_id: str, start_min: float, *events: tuple[str, float, dict[str, Any]]
           ) -> list[NewEvent]:
        return [NewEvent(esc_id, EventKind(event), "fixture", base + (start_min + minute) * 60,
                         details,
                         _once(event, details)) for event, minute, details in events]

    def e(event: str, minute: float, **details: Any) -> tuple[str, float, dict[str, Any]]:
        return event, minute, details

    def quiet(start_min: float, last_min: float, resumed_min: float | None
              ) -> list[tuple[str, float, dict[str, Any]]]:
        """A quiet spell after the update at `last_min`, due 30 minutes later, as the cadence
        job records it; ended by an update at `resumed_min` (None: still quiet)."""
        last_s, due_s = base + (start_min + last_min) * 60, base + (start_min + last_min + 30) * 60
        once = f"update_overdue:{last_s:.3f}"
        spell = [e("update_overdue", last_min + 30, once_key=once, last_update_at=last_s,
                   due_at=due_s, cadence_minutes=30, severity="S1")]
        if resumed_min is not None:
            spell.append(e("update_resumed", resumed_min, once_key=once,
                           overdue_s=base + (start_min + resumed_min) * 60 - due_s,
                           why="update"))
        return spell

    k1, k2, k3, k4 = 0.0, DAY_MIN, 2 * DAY_MIN, 20 * DAY_MIN - 60
    return [
        (_row("K1", base + k1 * 60, Phase.CLOSED, "emergency", "S1", "Acme",
              {"Service": "checkout"}, "emea"),
         at("K1", k1, e("received", 0), e("approval_requested", 1, evidence=pack(True)),
            e("approved", 4), e("paged", 5),
            e("acknowledged", 15), *quiet(k1, 35, 75), e("resolved", 125),
            e("retro_opened", 126, url="https://gitlab.example/ops/-/issues/1"),
            e("retro_closed", 3000, complete=True, missing=[]))),
        (_row("K2", base + k2 * 60, Phase.CLOSED, "emergency", "S1", "Acme",
              {"Service": "checkout"}, "amer"),
         at("K2", k2, e("received", 0), e("approval_requested", 1, evidence=pack(False)),
            e("approved", 2), e("paged", 3),
            e("acknowledged", 23), e("resolved", 63),
            e("retro_opened", 64, url="https://gitlab.example/ops/-/issues/2"),
            e("reopened", 70), e("resolved", 100),
            e("retro_closed", 4000, complete=False, missing=["Root cause"]))),
        (_row("K3", base + k3 * 60, Phase.CLOSED, "emergency", "S2", "Globex",
              {"Service": "billing"}, "amer"),
         at("K3", k3, e("received", 0), e("approval_requested", 1, evidence=pack(True)),
            e("approved", 5), e("paged", 6),
            e("acknowledged", 10), e("resolved", 66),
            e("retro_opened", 67, url="https://gitlab.example/ops/-/issues/3"))),
        (_row("K4", base + k4 * 60, Phase.ACKNOWLEDGED, "emergency", "S1", "Initech", {},
              "emea"),
         at("K4", k4, e("received", 0), e("approval_requested", 0, evidence=pack(True)),
            e("approved", 1), e("paged", 2),
            e("acknowledged", 12), *quiet(k4, 12, None))),
        (_row("R1", base + 5 * DAY_MIN * 60, Phase.RFH, "rfh", "S3", "Acme", {}),
         at("R1", 5 * DAY_MIN, e("received", 0), e("resolved", 30))),
        (_row("R2", base + 6 * DAY_MIN * 60, Phase.RFH, "rfh", "S3", "Globex", {}),
         at("R2", 6 * DAY_MIN, e("received", 0), e("resolved", 30), e("reopened", 40))),
        # A test incident: no driver, though it names Acme and checkout.
        (_row("T1", base + 7 * DAY_MIN * 60, Phase.IGNORED, "ignore", "S3", "Acme",
              {"Service": "checkout"}),
         at("T1", 7 * DAY_MIN, e("received", 0), e("resolved", 30), e("reopened", 40))),
    ]


async def seed(store: Store, base: float) -> None:
    for row, events in escalations(base):
        await store.apply(Changes(escalation=row, events=tuple(events)))


EXPECTED: dict[str, Any] = {
    "time_to_acknowledge": [
        {"severity": "S1", "samples": 3, "p50_minutes": 10.0, "p90_minutes": 20.0,
         "target_minutes": 15.0, "meets": False},
        {"severity": "S2", "samples": 1, "p50_minutes": 4.0, "p90_minutes": 4.0,
         "target_minutes": None, "meets": None}],
    "time_to_engage": {"samples": 4, "p50_minutes": 12.0, "p90_minutes": 23.0},
    "reopen_rate": {"count": 2, "total": 5, "share": 0.4, "target": 0.05, "meets": False},
    "retro_completion": [
        {"team": "", "severity": "S1", "opened": 2, "closed": 2, "complete": 1, "share": 0.5,
         "target": 0.95, "meets": False},
        {"team": "", "severity": "S2", "opened": 1, "closed": 0, "complete": 0, "share": 0.0,
         "target": 0.8, "meets": False}],
    "retro_completion_by_team": [
        {"team": "amer", "severity": "S1", "opened": 1, "closed": 1, "complete": 0,
         "share": 0.0, "target": 0.95, "meets": False},
        {"team": "amer", "severity": "S2", "opened": 1, "closed": 0, "complete": 0,
         "share": 0.0, "target": 0.8, "meets": False},
        {"team": "emea", "severity": "S1", "opened": 1, "closed": 1, "complete": 1,
         "share": 1.0, "target": 0.95, "meets": True}],
    "overdue_retros": [
        {"escalation_id": "K3", "team": "amer", "reference": "INC-K3", "title": "title K3",
         "severity": "S2", "url": "https://gitlab.example/ops/-/issues/3", "open_days": 18.0}],
    "update_cadence": {"active_minutes": 339.0, "overdue_minutes": 28.0, "share_within": 0.9174,
                       "target": 0.95, "meets": False, "quiet_spells": 1},
    "evidence_complete": {"count": 3, "total": 4, "share": 0.75, "target": 0.9, "meets": False},
    "evidence_by_team": [
        {"team": "amer", "count": 1, "total": 2, "share": 0.5, "target": 0.9, "meets": False},
        {"team": "emea", "count": 2, "total": 2, "share": 1.0, "target": 0.9, "meets": True}],
    "repeat_customers": [{"name": "Acme", "count": 3}, {"name": "Globex", "count": 2}],
    "top_customers": [{"name": "Acme", "count": 3}, {"name": "Globex", "count": 2},
                      {"name": "Initech", "count": 1}],
    "top_services": [{"name": "checkout", "count": 2}, {"name": "billing", "count": 1}],
}
"""The KPIs of the month above at `base + NOW_S`, worked out by hand in the docstring's terms:
acknowledge S1 10/20/10 min (p50 10, p90 20 > 15), engage (arrived -> acknowledged)
15/23/10/12 (p50 12, p90 23), reopened
K2 and R2 of five resolved, retros S1 one of two complete, S2 none of one, active
121 + 98 + 61 + 59 = 339 min of which 10 + 18 overdue (1 - 28/339 = 0.9174), evidence
complete for K1, K3 and K4 of four. By team (emea: K1, K4; amer: K2, K3): emea's one S1 retro
complete, amer's S1 retro closed incomplete and its S2 open; evidence emea 2 of 2, amer 1 of
2."""
