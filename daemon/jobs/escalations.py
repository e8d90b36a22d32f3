"""Between stored rows and the domain: load an escalation, save what a Step decided."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from daemon.domain.gate import Gate
from daemon.domain.models import Escalation
from daemon.domain.transitions import Step
from daemon.store import Changes, DeliveryState, EscalationRow, NewEvent, NewJob

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32: no i, l, o, u to misread


def new_escalation_id() -> str:
    """Short enough to read aloud on a call, random enough never to collide: `esc-7f3k9q2m`."""
    return "esc-" + "".join(secrets.choice(_ALPHABET) for _ in range(8))


def job_key(kind: str, escalation_id: str, name: str) -> str:
    return f"{kind}:{escalation_id}:{name}"


@dataclass(frozen=True)
class Loaded:
    row: EscalationRow
    escalation: Escalation
    gate: Gate


def loaded(row: EscalationRow) -> Loaded:
    return Loaded(row, Escalation.model_validate(row.data["escalation"]),
                  Gate.model_validate(row.data["gate"]))


def changes_for(
    escalation_id: str,
    escalation: Escalation,
    step: Step,
    now: datetime,
    *,
    previous: EscalationRow | None,
    delivery: tuple[int, DeliveryState, str] | None = None,
) -> Changes:
    """The row, timeline entries and jobs a Step implies, to be written atomically."""
    at = now.timestamp()
    row = EscalationRow(
        id=escalation_id,
        source=escalation.source.value,
        external_id=escalation.external_id,
        state=step.gate.phase.value,
        outcome=step.gate.decision.outcome.value if step.gate.decision else None,
        data={"escalation": escalation.model_dump(mode="json"),
              "gate": step.gate.model_dump(mode="json")},
        version=previous.version if previous else 0,
        opened_at=escalation.created_at.timestamp(),
        created_at=previous.created_at if previous else at,
        updated_at=at,
        attention=step.gate.needs_attention,
    )
    events = tuple(
        NewEvent(escalation_id, r.event, r.actor, at, r.details, r.once_key) for r in step.records
    )
    jobs = tuple(
        NewJob(effect.kind, job_key(effect.kind, escalation_id, effect.name), effect.payload,
               effect.run_at.timestamp() if effect.run_at else 0.0, escalation_id)
        for effect in step.effects
    )
    if previous is not None and previous.data == row.data:
        # Only the audit trail grows: no version bump, so concurrent notes never conflict.
        return Changes(events=events, jobs=jobs, delivery_done=delivery)
    return Changes(escalation=row, expected_version=previous.version if previous else 0,
                   events=events, jobs=jobs, delivery_done=delivery)
