"""Effects: the side effects a step of the state machine asks the job runner for, typed.

Every effect has a kind (`EffectKind`, also the job's kind) and a payload of the model that
kind takes (`PAYLOADS`), checked when the effect is made. A job stores its payload as
`payload.model_dump(mode="json", exclude_defaults=True)` (`payload_json`) and the handler
reads it back with the kind's model, so the stored JSON is the one the previous version wrote
for every kind: only a chat text (`text` of a thread note, direct note or reply to a click)
is now a `Message` instead of a string of chat markup (the job layer upgrades such a string
when it reads a job stored before).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from daemon.domain.messages import Message


class EffectKind(StrEnum):
    REQUEST_APPROVAL = "request_approval"
    REMIND = "approval_remind"
    TIMEOUT = "approval_timeout"
    PAGE = "page"
    THREAD_NOTE = "thread_note"  # a reply in the approval thread
    UPDATE_APPROVAL = "update_approval"  # show the approval message's current state
    TELL_USER = "tell_user"  # a reply to a click, seen only by the clicker
    RFH_NOTICE = "rfh_notice"
    RFH_ISSUE = "rfh_issue"
    RETRO = "retro"
    RECHECK = "recheck"  # judge the escalation again at a time the policy named
    DIRECT_NOTE = "direct_note"  # a note to the approvers directly, or to the channel
    APPROVAL_COPY = "approval_copy"  # a direct-message copy of the request for one approver
    ATTENTION = "needs_attention"  # tell people an effect failed (made by the job runner)
    MERGE_INTO = "merge_into"
    RETRO_NOTE = "retro_note"
    RFH_NOTE = "rfh_note"
    EE_OFFER = "ee_offer"  # offer the escalation to the EEs on rotation (or go on without them)
    EE_UPDATE = "ee_update"  # show the offer message's current state
    EE_WAIT = "ee_wait"  # an emergency's bounded wait for an EE is over: ask the SMOC
    EE_UNCLAIMED = "ee_unclaimed"  # nobody took a request for help in time: today's path
    EE_QUIET = "ee_quiet"  # remind the owning EE when the escalation goes quiet


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Nothing(Payload):
    """The payload of a kind that needs nothing but its escalation."""


class Remind(Payload):
    """`n`: the reminder's number; `since`: when its time started counting (epoch seconds;
    None for a reminder stored before it was recorded: counted from the job's creation)."""

    n: int = 1
    since: float | None = None


class Timeout(Payload):
    since: float | None = None  # as `Remind.since`


class ThreadNote(Payload):
    text: Message


class Audience(StrEnum):
    APPROVERS = "approvers"  # each approver directly
    CHANNEL = "channel"  # the approval channel (nobody is asked to decide, e.g. an RFH)


class DirectNote(Payload):
    text: Message
    to: Audience


class TellUser(Payload):
    """`channel`: where the user clicked when that is not the escalation's approval message
    ("": the approval message's)."""

    user: str
    text: Message
    channel: str = ""


class Retro(Payload):
    note: str = ""  # a later round's page, told on the retro issue that exists already


class ApprovalCopy(Payload):
    user: str


class RetroNote(Payload):
    note: str


class RfhNote(Payload):
    text: str  # plain text for the tracker (its adapter escapes it)


class EEOffer(Payload):
    wait_minutes: float = 0.0  # an emergency's bounded wait for an EE (0: ask the SMOC too)


class EEQuiet(Payload):
    n: int = 1


class Attention(Payload):
    """Job `job_id` of kind `kind` failed for good (`final`) or keeps failing, for `error`;
    `text`: the chat text it could not deliver. `recovered`: it has succeeded since."""

    kind: str
    error: str = ""
    final: bool = False
    job_id: int = 0
    text: Message | None = None
    recovered: bool = False


PAYLOADS: dict[EffectKind, type[Payload]] = {
    EffectKind.REMIND: Remind,
    EffectKind.TIMEOUT: Timeout,
    EffectKind.THREAD_NOTE: ThreadNote,
    EffectKind.TELL_USER: TellUser,
    EffectKind.RETRO: Retro,
    EffectKind.DIRECT_NOTE: DirectNote,
    EffectKind.APPROVAL_COPY: ApprovalCopy,
    EffectKind.ATTENTION: Attention,
    EffectKind.RETRO_NOTE: RetroNote,
    EffectKind.RFH_NOTE: RfhNote,
    EffectKind.EE_OFFER: EEOffer,
    EffectKind.EE_QUIET: EEQuiet,
}
"""The payload model of each kind; a kind not named takes `Nothing`."""


def payload_model(kind: EffectKind) -> type[Payload]:
    return PAYLOADS.get(kind, Nothing)


NOTHING = Nothing()


@dataclass(frozen=True)
class Effect:
    """A side effect for the job runner. `name` is unique per escalation and kind: the job's
    idempotency key. `round`: the round of the gate it is for, when not the current one.

    Left out, `payload` is the kind's model with its defaults. Raises TypeError when it is not
    of the model `kind` takes (pydantic's ValidationError when that model has no defaults)."""

    kind: EffectKind
    name: str
    payload: Payload = NOTHING
    run_at: datetime | None = None
    round: int | None = None

    def __post_init__(self) -> None:
        model = payload_model(self.kind)
        if self.payload is NOTHING and model is not Nothing:
            object.__setattr__(self, "payload", model())  # frozen: set once, here
        if type(self.payload) is not model:
            raise TypeError(f"a {self.kind} effect takes {payload_model(self.kind).__name__}, "
                            f"not {type(self.payload).__name__}")


def payload_json(payload: Payload) -> dict[str, Any]:
    """The payload as stored in its job (values left at their defaults are left out)."""
    return payload.model_dump(mode="json", exclude_defaults=True)
