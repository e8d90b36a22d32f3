"""Between stored job payloads and the domain: a job's JSON payload read as the typed payload
of its effect kind (`domain.effects`), including what the version before typed payloads
stored.

The writing side is `domain.effects.payload_json`; the only difference a stored payload may
show is a chat text (`text`) written as a string of Slack mrkdwn, from the version whose core
wrote markup, which reads back into the `Message` it rendered.
"""

from __future__ import annotations

from typing import TypeVar

from daemon.domain.effects import EffectKind, Payload
from daemon.domain.messages import Message, message
from daemon.markup import message_from_mrkdwn
from daemon.store.records import Job

P = TypeVar("P", bound=Payload)


def effect_payload(job: Job, model: type[P]) -> P:
    """The payload of an effect's job as the model of its kind (`domain.effects.PAYLOADS`).

    A chat text (`text` where the model takes a `Message`) stored as a string is read back
    into its `Message`. The job's round (`jobs.escalations.job_round`) is the job's, not the
    payload's. Raises pydantic's ValidationError when the stored payload does not fit the
    model (the job runner dead-letters the job)."""
    data = {key: value for key, value in job.payload.items() if key != "round"}
    field = model.model_fields.get("text")
    chat_text = field is not None and field.annotation in (Message, Message | None)
    if chat_text and isinstance(data.get("text"), str):
        data["text"] = message_from_mrkdwn(data["text"]).model_dump(mode="json")
    return model.model_validate(data)


def stored_text(text: object) -> Message:
    """A chat text stored in a job payload: a `Message` as JSON, or a string of Slack mrkdwn,
    as versions before typed messages stored it (a job pending across the upgrade). Raises
    pydantic's ValidationError for anything else."""
    if isinstance(text, str):
        return message_from_mrkdwn(text)
    return Message.model_validate(text)


def lost_text(job: Job) -> Message | None:
    """The text of a note or notice `job` was to deliver, to pass on when it failed: a chat
    text (`stored_text`), or the plain text of a tracker note. None: it had none."""
    text = job.payload.get("text")
    if text is None:
        return None
    if isinstance(text, str) and job.kind == EffectKind.RFH_NOTE:
        return message(text)
    return stored_text(text)
