"""The escalation gate's state: where an escalation stands on its way to (maybe) a page.

Kept separate from `Escalation` (what the vendor says) so vendor updates never overwrite a
decision a human made. Stored as JSON beside the escalation; `Phase` is also a column for queries.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AliasChoices, AwareDatetime, BaseModel, ConfigDict, Field

from daemon.domain.policy import Decision
from daemon.domain.teams import DEFAULT_TEAM


class Phase(StrEnum):
    RECEIVED = "received"  # stored, not yet classified
    IGNORED = "ignored"
    RFH = "rfh"  # request for help: queued for business hours, never paged
    AWAITING_APPROVAL = "awaiting_approval"
    DECLINED = "declined"
    PAGING = "paging"  # approved (or approval timed out with the `page` fallback)
    PAGED = "paged"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"  # resolved; nothing more will happen but the retro


class Verdict(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    TIMED_OUT = "timed_out"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_MESSAGE_ID = AliasChoices("message_id", "ts")
"""A chat message's id within its conversation, stored as `ts` before it had a chat-neutral
name: gates stored then are read as they are."""


class ApprovalState(_Model):
    requested_at: AwareDatetime
    channel: str  # the conversation it was posted in: a channel or a direct message
    message_id: str = Field(validation_alias=_MESSAGE_ID)
    # Further copies of the request (one direct message per approver when the channel refused
    # the bot), as (channel, message id): every copy shows the decision.
    copies: tuple[tuple[str, str], ...] = ()
    approvers: tuple[str, ...]  # chat user ids allowed to decide, SMOC first
    smoc_note: str = ""
    # Whether approvers[0] is the SMOC rather than a backup. False for requests stored before
    # this was recorded: their message then calls nobody the SMOC rather than maybe a backup.
    smoc_resolved: bool = False
    reminders: int = 0
    holding: bool = False  # timed out under the `hold` fallback: keep reminding, never page

    @property
    def messages(self) -> tuple[tuple[str, str], ...]:
        """Every (channel, message id) that carries this request's buttons."""
        return ((self.channel, self.message_id), *self.copies)


class DecisionState(_Model):
    verdict: Verdict
    by: str  # chat user id; "" for a timeout
    at: AwareDatetime
    reason: str = ""
    pages: bool = True
    self_approved: bool = False  # approved by whoever declared the escalation (policy allowed)


class PageState(_Model):
    incident_id: str
    url: str = ""
    at: AwareDatetime
    shadow: bool = False


class Problem(_Model):
    """Something a person must act on: an effect that failed for good, or keeps failing."""

    effect: str  # the effect kind that failed, e.g. "page", "request_approval", "retro"
    reason: str  # in words, with the vendor's reason (secrets scrubbed)
    at: AwareDatetime
    final: bool = True  # False: still being retried


class EarlierRound(_Model):
    """A round of the gate that a reopen closed: what was asked, decided and paged then.

    Kept so that a new round never mistakes the earlier round's chat message for its own and
    so that a page that went out in an earlier round still earns (or is noted on) the retro.
    """

    round: int
    phase: Phase  # where that round ended
    approval: ApprovalState | None = None
    decided: DecisionState | None = None
    page: PageState | None = None
    acknowledged_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None


class MergedIn(_Model):
    """An escalation whose incident was merged into this one's: its page belongs to this
    outage's retro."""

    escalation_id: str
    reference: str = ""
    page: PageState | None = None


class EEOutcome(StrEnum):
    RESOLVED = "resolved"  # resolved by the EE without Engineering
    ENGINEERING = "engineering"  # the EE asked for Engineering: today's path continues


class EEState(_Model):
    """The escalation's Escalation Engineer step: offered to the rotation, taken by one EE
    (its directly responsible individual, DRI), and ended by the EE's word.

    `rotation` is the roster's id of the rotation it was offered to; `channel`/`message_id`
    the offer message ("" until posted); `owner` the chat user id of the EE who took it."""

    rotation: str
    offered_at: AwareDatetime
    offered_to: tuple[str, ...] = ()
    channel: str = ""
    message_id: str = Field(default="", validation_alias=_MESSAGE_ID)
    owner: str = ""
    owner_name: str = ""
    assigned_at: AwareDatetime | None = None
    outcome: EEOutcome | None = None
    outcome_at: AwareDatetime | None = None
    outcome_by: str = ""
    waiting: bool = False  # an emergency whose SMOC request waits for the EE's word
    unclaimed: bool = False  # nobody took it in time: it went on to Engineering without an EE
    quiet_reminders: int = 0


class Gate(_Model):
    phase: Phase = Phase.RECEIVED
    decision: Decision | None = None  # the policy's latest classification
    approval: ApprovalState | None = None
    decided: DecisionState | None = None
    page: PageState | None = None
    acknowledged_at: AwareDatetime | None = None
    acknowledged_by: str = ""
    resolved_at: AwareDatetime | None = None
    rfh_due_at: AwareDatetime | None = None
    retro_url: str = ""
    # The latest round whose page the retro issue tells of (its body, or a note added to it).
    retro_round: int = 1
    problems: tuple[Problem, ...] = ()  # non-empty: the escalation needs attention
    # A reopened incident that had reached the SMOC is decided again in a new round: its
    # approval, decision and page are new, and the earlier rounds are kept in `earlier`.
    round: int = 1
    reopened_at: AwareDatetime | None = None  # the source's latest reopen, if any
    earlier: tuple[EarlierRound, ...] = ()
    # How the source incident ended when it did not simply resolve: "withdrawn" (declined in
    # triage or canceled) or "merged"; "" while open or resolved.
    ended_as: str = ""
    merged_in: tuple[MergedIn, ...] = ()  # escalations merged into this one
    ee: EEState | None = None  # offered to the Escalation Engineers (None: never)
    # The Tier 1 team whose approvers decide (`domain.teams`): the latest classification's,
    # until the approval request is posted; then it stays, so the people asked stay the ones
    # who may decide.
    team: str = DEFAULT_TEAM

    @property
    def needs_attention(self) -> bool:
        return bool(self.problems)

    def without_problems(self, *effects: str) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.effect not in effects)

    def asked_earlier(self, channel: str, message_id: str) -> bool:
        """Whether (channel, message_id) is an approval message of an earlier round."""
        return any(r.approval is not None and (channel, message_id) in r.approval.messages
                   for r in self.earlier)

    def asked_on(self, channel: str, message_id: str) -> bool:
        """Whether (channel, message_id) is an approval message of this round."""
        return self.approval is not None and (channel, message_id) in self.approval.messages

    def owns_message(self, channel: str, message_id: str) -> bool:
        """Whether (channel, message_id) is an approval message of any round."""
        return self.asked_on(channel, message_id) or self.asked_earlier(channel, message_id)

    @property
    def ever_paged(self) -> bool:
        """Tier 2 was paged in this round or an earlier one, or for an incident merged into
        this one: the escalation earns a retro."""
        return (self.page is not None or any(r.page is not None for r in self.earlier)
                or any(m.page is not None for m in self.merged_in))

    @property
    def ee_open(self) -> bool:
        """An EE owns it and it is not over: on the next rotation's handoff list."""
        return (self.ee is not None and bool(self.ee.owner)
                and self.ee.outcome is not EEOutcome.RESOLVED and self.resolved_at is None
                and self.phase not in (Phase.IGNORED, Phase.CLOSED))

    @property
    def emergency(self) -> bool:
        return self.phase not in (Phase.RECEIVED, Phase.IGNORED, Phase.RFH)
