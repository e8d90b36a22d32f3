"""Between stored rows and the domain: load an escalation, save what a Step decided."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from daemon.domain.effects import Payload, payload_json
from daemon.domain.gate import EEOutcome, Gate
from daemon.domain.messages import Message
from daemon.domain.models import Escalation
from daemon.domain.transitions import Step
from daemon.jobs.desk_notes import note_jobs
from daemon.markup import message_from_mrkdwn
from daemon.store import Changes, DeliveryState, EEWork, EscalationRow, Job, NewEvent, NewJob

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32: no i, l, o, u to misread


def new_escalation_id() -> str:
    """Short enough to read aloud on a call, random enough never to collide: `esc-7f3k9q2m`."""
    return "esc-" + "".join(secrets.choice(_ALPHABET) for _ in range(8))


def job_key(kind: str, escalation_id: str, name: str) -> str:
    return f"{kind}:{escalation_id}:{name}"


def per_round(name: str, round_no: int) -> str:
    """A job name or timeline once key made unique per round of the gate (a reopened incident
    decided again). Round 1 keeps the plain name, so stored jobs and timelines stay valid."""
    return name if round_no <= 1 else f"{name}@round-{round_no}"


def job_round(job: Job) -> int:
    """The round of the gate a job was made for (`changes_for` writes it from round 2 on)."""
    return int(job.payload.get("round", 1))


P = TypeVar("P", bound=Payload)


def effect_payload(job: Job, model: type[P]) -> P:
    """The payload of an effect's job as the model of its kind (`domain.effects.PAYLOADS`).

    A chat text (`text` where the model takes a `Message`) stored as a string is Slack mrkdwn
    from the version before messages were typed: read back into its `Message`. The job's
    round (`job_round`) is the job's, not the payload's. Raises pydantic's ValidationError
    when the stored payload does not fit the model (the job runner dead-letters the job)."""
    data = {key: value for key, value in job.payload.items() if key != "round"}
    field = model.model_fields.get("text")
    chat_text = field is not None and field.annotation in (Message, Message | None)
    if chat_text and isinstance(data.get("text"), str):
        data["text"] = message_from_mrkdwn(data["text"]).model_dump(mode="json")
    return model.model_validate(data)


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
        drill=escalation.drill,
        team=step.gate.team,
    )
    # Names and once keys are per round (see `domain.transitions`): a reopened incident's new
    # approval request, decision, page and retro note are new jobs and new decisions, and
    # every job knows its round so that an earlier round's timer cannot act on the new one.
    round_no = step.gate.round
    events = tuple(
        NewEvent(escalation_id, r.event, r.actor, at, r.details,
                 per_round(r.once_key, round_no) if r.once_key else None)
        for r in step.records
    )
    jobs = tuple(
        NewJob(effect.kind, job_key(effect.kind, escalation_id, per_round(effect.name, round_no)),
               _with_round(payload_json(effect.payload), effect.round or round_no),
               effect.run_at.timestamp() if effect.run_at else 0.0, escalation_id)
        for effect in step.effects
    ) + note_jobs(escalation_id, escalation, step.records, at,
                  lambda name: per_round(name, round_no))
    if previous is not None and previous.data == row.data:
        # Only the audit trail grows: no version bump, so concurrent notes never conflict.
        return Changes(events=events, jobs=jobs, delivery_done=delivery)
    return Changes(escalation=row, expected_version=previous.version if previous else 0,
                   events=events, jobs=jobs, delivery_done=delivery,
                   ee=ee_work(escalation_id, escalation, step.gate))


def _with_round(payload: dict[str, Any], round_no: int) -> dict[str, Any]:
    """A job's stored payload: round 1 writes none (as jobs stored before rounds existed)."""
    return payload if round_no <= 1 else {"round": round_no, **payload}


def ee_work(escalation_id: str, escalation: Escalation, gate: Gate) -> EEWork | None:
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
