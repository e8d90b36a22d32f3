"""Between stored rows and the domain: an escalation row read as its `Escalation` and `Gate`,
and the changes (its row, its `ee_work` row) an escalation and its gate are written as.

The only place that knows the row's `data` layout (`{"escalation": …, "gate": …}`) and which
columns are copied out of the domain objects for queries.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.domain.gate import EEOutcome, Gate
from daemon.domain.models import Escalation
from daemon.store.records import (
    Changes,
    DeliveryState,
    EEWork,
    EscalationRow,
    NewEvent,
    NewJob,
)


@dataclass(frozen=True)
class Loaded:
    """An escalation as read: its domain objects, and the row they came from (its id, its
    version for the write's check, and when it was created and last updated)."""

    row: EscalationRow
    escalation: Escalation
    gate: Gate


def loaded(row: EscalationRow) -> Loaded:
    """The domain objects of a stored row. Raises pydantic's `ValidationError` when `data`
    is not an escalation and a gate (a row written by something else)."""
    return Loaded(row, Escalation.model_validate(row.data["escalation"]),
                  Gate.model_validate(row.data["gate"]))


def escalation_changes(escalation_id: str, escalation: Escalation, gate: Gate, at: float, *,
                       previous: EscalationRow | None, events: tuple[NewEvent, ...],
                       jobs: tuple[NewJob, ...],
                       delivery: tuple[int, DeliveryState, str] | None) -> Changes:
    """What writes `escalation` under `gate` at `at` (epoch seconds) over `previous` (None: a
    new escalation, version 0, created now), with `events`, `jobs` and `delivery` marked done:
    under the version check when the row changes, as an append only when it does not."""
    row = _row(escalation_id, escalation, gate, at, previous=previous)
    if previous is not None and previous.data == row.data:
        # Only the audit trail grows: no version bump, so concurrent notes never conflict.
        return Changes(events=events, jobs=jobs, delivery_done=delivery)
    return Changes(escalation=row, expected_version=previous.version if previous else 0,
                   events=events, jobs=jobs, delivery_done=delivery,
                   ee=_ee_work(escalation_id, escalation, gate))


def _row(escalation_id: str, escalation: Escalation, gate: Gate, at: float, *,
         previous: EscalationRow | None) -> EscalationRow:
    return EscalationRow(
        id=escalation_id,
        source=escalation.source.value,
        external_id=escalation.external_id,
        state=gate.phase.value,
        outcome=gate.decision.outcome.value if gate.decision else None,
        data={"escalation": escalation.model_dump(mode="json"),
              "gate": gate.model_dump(mode="json")},
        version=previous.version if previous else 0,
        opened_at=escalation.created_at.timestamp(),
        created_at=previous.created_at if previous else at,
        updated_at=at,
        attention=gate.needs_attention,
        drill=escalation.drill,
        team=gate.team,
    )


def _ee_work(escalation_id: str, escalation: Escalation, gate: Gate) -> EEWork | None:
    """The `ee_work` row of an escalation offered to the EEs (None: never offered)."""
    ee = gate.ee
    if ee is None:
        return None
    # Asking the SMOC reaches Engineering either way: a page, or a request for help to Tier 2,
    # whatever the EE says meanwhile (the SMOC still decides).
    engineering = (ee.outcome is EEOutcome.ENGINEERING or gate.ever_paged or ee.unclaimed
                   or gate.approval is not None)
    return EEWork(
        escalation_id=escalation_id, rotation=ee.rotation,
        opened_at=escalation.created_at.timestamp(), offered_at=ee.offered_at.timestamp(),
        owner=ee.owner, assigned_at=ee.assigned_at.timestamp() if ee.assigned_at else None,
        outcome=ee.outcome.value if ee.outcome else "", engineering=engineering,
        open=gate.ee_open, drill=escalation.drill)
