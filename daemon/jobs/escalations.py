"""What a Step decided, as the changes the store writes atomically; escalation ids and job keys."""

from __future__ import annotations

import secrets
from datetime import datetime

from daemon.domain.models import Escalation
from daemon.domain.transitions import Step
from daemon.jobs.desk_notes import note_jobs
from daemon.store import Changes, DeliveryState, EscalationRow, Job, NewEvent, NewJob
from daemon.store.mapping import escalation_changes

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
               effect.payload if round_no <= 1 else {"round": round_no, **effect.payload},
               effect.run_at.timestamp() if effect.run_at else 0.0, escalation_id)
        for effect in step.effects
    ) + note_jobs(escalation_id, escalation, step.records, at,
                  lambda name: per_round(name, round_no))
    return escalation_changes(escalation_id, escalation, step.gate, at, previous=previous,
                              events=events, jobs=jobs, delivery=delivery)
