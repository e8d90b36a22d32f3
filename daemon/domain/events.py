"""The timeline's vocabulary: every event kind tier2gate records, and the typed details of each.

A timeline entry is an `EventKind` plus a `Fact`, the small frozen dataclass of that kind's
details. The domain and the jobs build facts (`Approved(waited_s=12.5)`); the store keeps
`fact.stored()`, a JSON object exactly as earlier versions wrote it (key names, which keys are
left out); readers get the fact back with `details_of(kind, details)` or `Classified.read(...)`
and never look an event or a detail up by its name. This module is the only place the names
are spelled.

Adding an event: a member of `EventKind` in its group, a `Fact` subclass naming it as `kind`
(fields with defaults; metadata `OMIT` on a key written only when it says something), and
the producer builds it; `tests/unit/test_event_vocabulary.py` holds every kind to one fact class.

Reading the details of an entry written by another version never fails: a key they lack reads
as the field's default, a key the fact does not know is ignored. (An event name this version
does not know is a ValueError of `EventKind`.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from enum import Enum, StrEnum
from typing import Any, ClassVar, Literal, Self


class EventKind(StrEnum):
    """The name of a timeline entry, as stored in `timeline.event`."""

    # The source's facts: intake, classification, the source incident's lifecycle.
    RECEIVED = "received"
    UPDATED = "updated"
    REOPENED = "reopened"
    CLASSIFIED = "classified"
    TEAM_CHANGED = "team_changed"
    POLICY_CHANGED = "policy_changed"
    RESOLVED = "resolved"
    WITHDRAWN = "withdrawn"
    MERGED = "merged"
    MERGED_IN = "merged_in"
    MERGED_INTO = "merged_into"
    MERGE_TARGET_UNKNOWN = "merge_target_unknown"
    INCIDENT_UNREADABLE = "incident_unreadable"
    INCIDENT_FETCH_FAILED = "incident_fetch_failed"
    SOURCE_DELEGATED = "source_delegated"
    INCIDENT_UPDATE = "incident_update"

    # The SMOC's approval: the request, the clicks, reminders and the timeout.
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_CHANNEL_REFUSED = "approval_channel_refused"
    APPROVAL_COPY_POSTED = "approval_copy_posted"
    DECISION_IGNORED = "decision_ignored"
    APPROVAL_REFUSED = "approval_refused"
    APPROVED = "approved"
    SELF_APPROVED = "self_approved"
    DECLINED = "declined"
    CLICK_MISMATCH = "click_mismatch"
    DECLINE_FORM_FAILED = "decline_form_failed"
    APPROVAL_REMINDED = "approval_reminded"
    APPROVAL_TIMED_OUT = "approval_timed_out"
    TIMER_DEFERRED = "timer_deferred"

    # The Tier 2 page and what PagerDuty says happened to it.
    PAGED = "paged"
    WOULD_HAVE_PAGED = "would_have_paged"
    PAGE_ASSIGNED = "page_assigned"
    ACKNOWLEDGED = "acknowledged"
    PAGE_ESCALATED = "page_escalated"
    PAGE_REASSIGNED = "page_reassigned"
    PAGE_RESOLVED = "page_resolved"
    PAGE_UNACKNOWLEDGED = "page_unacknowledged"
    PAGE_REOPENED = "page_reopened"
    PAGE_DELEGATED = "page_delegated"  # read only: PagerDuty's delegation is now a reassignment

    # The retro issue and the follow-through on an emergency (retro poll, update cadence).
    RETRO_OPENED = "retro_opened"
    WOULD_HAVE_OPENED_RETRO = "would_have_opened_retro"
    RETRO_NOTED = "retro_noted"
    WOULD_HAVE_NOTED_RETRO = "would_have_noted_retro"
    RETRO_CLOSED = "retro_closed"
    RETRO_REMINDED = "retro_reminded"
    UPDATE_OVERDUE = "update_overdue"
    UPDATE_RESUMED = "update_resumed"

    # The request-for-help path: its issue, notes on it, the chat notice.
    RFH_ISSUE_OPENED = "rfh_issue_opened"
    WOULD_HAVE_OPENED_RFH_ISSUE = "would_have_opened_rfh_issue"
    RFH_ISSUE_SKIPPED = "rfh_issue_skipped"
    RFH_RECORDED = "rfh_recorded"
    RFH_ISSUE_NOTED = "rfh_issue_noted"
    WOULD_HAVE_NOTED_RFH_ISSUE = "would_have_noted_rfh_issue"
    RFH_NOTE_SKIPPED = "rfh_note_skipped"
    RFH_NOTICE_POSTED = "rfh_notice_posted"
    RFH_NOTICE_SKIPPED = "rfh_notice_skipped"

    # Trouble: an effect failing for good or still failing, and its recovery.
    NEEDS_ATTENTION = "needs_attention"
    ATTENTION_CLEARED = "attention_cleared"
    DEAD_LETTERED = "job.dead_lettered"

    # The Escalation Engineers' step before the SMOC.
    EE_OFFERED = "ee_offered"
    EE_SKIPPED = "ee_skipped"
    EE_ASSIGNED = "ee_assigned"
    EE_TAKEN_OVER = "ee_taken_over"
    EE_NEEDS_ENGINEERING = "ee_needs_engineering"
    EE_RESOLVED = "ee_resolved"
    EE_WAIT_OVER = "ee_wait_over"
    EE_REMINDED = "ee_reminded"
    EE_HANDED_OVER = "ee_handed_over"


_OMIT = "omit"  # metadata: the key is left out of the stored details while the field is default
_KEY = "key"  # metadata: the stored key, when it is not a Python name (`from`)
_SPREAD = "spread"  # metadata: a dict whose items are the stored details themselves


OMIT: Mapping[str, Any] = {_OMIT: True}
"""A field's metadata: stored only when it is not its default (as the producers always wrote it)."""


def _stored_as(key: str) -> Mapping[str, Any]:
    """A field's metadata: stored under `key`, a word Python keeps for itself (`from`)."""
    return {_KEY: key}


def _default(f: Field[Any]) -> Any:
    """The field's default: every fact field has one, so that any stored version reads."""
    return f.default if f.default_factory is MISSING else f.default_factory()


@dataclass(frozen=True)
class Fact:
    """The details of one timeline entry; a subclass per `EventKind` names it as `kind` (a
    shape several kinds share, such as `PageNews`, is a base class without one)."""

    kind: ClassVar[EventKind]

    def stored(self) -> dict[str, Any]:
        """The details as the timeline stores them (a JSON object)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get(_SPREAD):
                out.update(value)
            elif not (f.metadata.get(_OMIT) and value == _default(f)):
                out[f.metadata.get(_KEY, f.name)] = value
        return out

    @classmethod
    def read(cls, details: Mapping[str, Any]) -> Self:
        """The fact of stored `details`: missing keys read as the fields' defaults."""
        known: dict[str, Any] = {}
        for f in fields(cls):
            key = f.metadata.get(_KEY, f.name)
            if f.metadata.get(_SPREAD):
                known[f.name] = dict(details)
            elif key in details:
                known[f.name] = details[key]
        return cls(**known)


# --- the source's facts ---------------------------------------------------------------------

@dataclass(frozen=True)
class Received(Fact):
    kind = EventKind.RECEIVED
    reference: str = ""
    title: str = ""
    severity: str | None = None
    status: str = ""
    customer: str | None = None
    # a `Person` dump: who declared it in the chat
    declared_by: dict[str, Any] | None = field(default=None, metadata=OMIT)


@dataclass(frozen=True)
class Updated(Fact):
    """What the source changed, as {field name: new value}."""

    kind = EventKind.UPDATED
    changed: dict[str, Any] = field(default_factory=dict, metadata={_SPREAD: True})


@dataclass(frozen=True)
class Reopened(Fact):
    kind = EventKind.REOPENED
    previous: str = ""  # the phase before
    outcome: str | None = None
    resolved_at: str = ""
    # the new round, when the SMOC had been involved
    round: int | None = field(default=None, metadata=OMIT)


@dataclass(frozen=True)
class Classified(Fact):
    kind = EventKind.CLASSIFIED
    outcome: str = ""
    rule: str | None = None
    reason: str = ""
    matched: dict[str, Any] = field(default_factory=dict)
    # None: classified before the held criteria were recorded
    criteria: list[str] | None = None
    severity: str | None = None
    weekend: bool = False
    off_hours: bool = False
    previous: str = ""
    team: str = ""
    due: str = field(default="", metadata=OMIT)  # a request for help's due time (ISO)
    customer_events: list[dict[str, Any]] = field(default_factory=list, metadata=OMIT)


@dataclass(frozen=True)
class TeamChanged(Fact):
    kind = EventKind.TEAM_CHANGED
    from_team: str = field(default="", metadata=_stored_as("from"))
    to: str = ""


@dataclass(frozen=True)
class PolicyChanged(Fact):
    kind = EventKind.POLICY_CHANGED
    from_policy: str = field(default="", metadata=_stored_as("from"))
    to: str = ""
    previous: str | None = None
    outcome: str = ""
    rule: str | None = None
    reason: str = ""
    on_timeout: str | None = field(default=None, metadata=OMIT)
    timeout_minutes: float | None = field(default=None, metadata=OMIT)


@dataclass(frozen=True)
class Resolved(Fact):
    kind = EventKind.RESOLVED


@dataclass(frozen=True)
class Withdrawn(Fact):
    kind = EventKind.WITHDRAWN


@dataclass(frozen=True)
class Merged(Fact):
    kind = EventKind.MERGED
    merged_into: str = ""


@dataclass(frozen=True)
class MergedIn(Fact):
    kind = EventKind.MERGED_IN
    escalation_id: str = ""
    reference: str = ""
    page_url: str = field(default="", metadata=OMIT)
    paged_at: str = field(default="", metadata=OMIT)


@dataclass(frozen=True)
class MergedInto(Fact):
    kind = EventKind.MERGED_INTO
    escalation_id: str = ""
    reference: str = ""


@dataclass(frozen=True)
class MergeTargetUnknown(Fact):
    kind = EventKind.MERGE_TARGET_UNKNOWN
    merged_into: str = ""


@dataclass(frozen=True)
class IncidentUnreadable(Fact):
    kind = EventKind.INCIDENT_UNREADABLE
    incident_id: str = ""
    reason: str = ""


@dataclass(frozen=True)
class IncidentFetchFailed(Fact):
    kind = EventKind.INCIDENT_FETCH_FAILED
    reason: str = ""
    used: str = ""


@dataclass(frozen=True)
class SourceDelegated(Fact):
    kind = EventKind.SOURCE_DELEGATED
    service_id: str = ""
    event_id: str = ""


@dataclass(frozen=True)
class IncidentUpdate(Fact):
    kind = EventKind.INCIDENT_UPDATE
    update: str = field(default="", metadata=_stored_as("kind"))  # "note" or "status_update"
    event_id: str = ""


# --- the SMOC's approval --------------------------------------------------------------------

class Unkept(Enum):
    """A detail an older version did not store (told apart from a stored null)."""

    NOT_KEPT = "not kept"


@dataclass(frozen=True)
class ApprovalRequested(Fact):
    kind = EventKind.APPROVAL_REQUESTED
    to: list[str] = field(default_factory=list)
    channel: str = ""
    ts: str = ""
    smoc_note: str = ""
    team: str = ""
    # the channel refused the bot: direct messages
    direct: bool = field(default=False, metadata=OMIT)
    # what the request showed of the evidence pack
    evidence: dict[str, Any] | None = field(default=None, metadata=OMIT)
    # the Tier 2 load line it showed (None: it showed none); `NOT_KEPT` for a request recorded
    # before the line was kept, which is then worked out again
    tier2_load: dict[str, Any] | Literal[Unkept.NOT_KEPT] | None = field(
        default=Unkept.NOT_KEPT, metadata=OMIT)


@dataclass(frozen=True)
class ApprovalChannelRefused(Fact):
    kind = EventKind.APPROVAL_CHANNEL_REFUSED
    error: str = ""


@dataclass(frozen=True)
class ApprovalCopyPosted(Fact):
    kind = EventKind.APPROVAL_COPY_POSTED
    to: str = ""
    channel: str = ""


@dataclass(frozen=True)
class DecisionIgnored(Fact):
    kind = EventKind.DECISION_IGNORED
    verdict: str = ""
    why: str = ""


@dataclass(frozen=True)
class ApprovalRefused(Fact):
    kind = EventKind.APPROVAL_REFUSED
    verdict: str = ""
    why: str = ""


@dataclass(frozen=True)
class Approved(Fact):
    kind = EventKind.APPROVED
    waited_s: float | None = field(default=None, metadata=OMIT)  # since the request was posted
    self_approved: bool = field(default=False, metadata=OMIT)


@dataclass(frozen=True)
class SelfApproved(Fact):
    kind = EventKind.SELF_APPROVED
    declared_by: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Declined(Fact):
    kind = EventKind.DECLINED
    reason: str = ""
    waited_s: float | None = field(default=None, metadata=OMIT)


@dataclass(frozen=True)
class ClickMismatch(Fact):
    kind = EventKind.CLICK_MISMATCH
    verdict: str = ""
    channel: str = ""
    ts: str = ""


@dataclass(frozen=True)
class DeclineFormFailed(Fact):
    kind = EventKind.DECLINE_FORM_FAILED
    error: str = ""


@dataclass(frozen=True)
class ApprovalReminded(Fact):
    kind = EventKind.APPROVAL_REMINDED
    n: int = 0
    # False: there was no request to remind in yet
    posted: bool | None = field(default=None, metadata=OMIT)
    to: list[str] | None = field(default=None, metadata=OMIT)


@dataclass(frozen=True)
class ApprovalTimedOut(Fact):
    kind = EventKind.APPROVAL_TIMED_OUT
    after_minutes: float | None = None
    fallback: str = ""


@dataclass(frozen=True)
class TimerDeferred(Fact):
    kind = EventKind.TIMER_DEFERRED
    timer: str = ""
    reason: str = ""
    needed_s: float = 0.0
    measured_s: float = 0.0
    wall_clock_s: float = 0.0
    due: str = ""


# --- the Tier 2 page ------------------------------------------------------------------------

@dataclass(frozen=True)
class PageSent(Fact):
    """Tier 2 was paged (or would have been, in shadow mode): PagerDuty's incident."""

    incident_id: str = ""
    url: str = ""
    # an earlier round's page, sent before the reopen
    round: int | None = field(default=None, metadata=OMIT)


@dataclass(frozen=True)
class Paged(PageSent):
    kind = EventKind.PAGED


@dataclass(frozen=True)
class WouldHavePaged(PageSent):
    kind = EventKind.WOULD_HAVE_PAGED


@dataclass(frozen=True)
class PageNews(Fact):
    """PagerDuty's word on the page: `event_id` is its event, `responders` the people the
    page reached (`{id, name, time_zone}` each), `incident_id` the page's incident."""

    event_id: str = ""
    round: int | None = field(default=None, metadata=OMIT)
    responders: list[dict[str, str]] = field(default_factory=list, metadata=OMIT)
    incident_id: str = field(default="", metadata=OMIT)


@dataclass(frozen=True)
class PageAssigned(PageNews):
    kind = EventKind.PAGE_ASSIGNED


@dataclass(frozen=True)
class Acknowledged(PageNews):
    kind = EventKind.ACKNOWLEDGED


@dataclass(frozen=True)
class PageEscalated(PageNews):
    kind = EventKind.PAGE_ESCALATED


@dataclass(frozen=True)
class PageReassigned(PageNews):
    kind = EventKind.PAGE_REASSIGNED


@dataclass(frozen=True)
class PageResolved(PageNews):
    kind = EventKind.PAGE_RESOLVED


@dataclass(frozen=True)
class PageUnacknowledged(PageNews):
    kind = EventKind.PAGE_UNACKNOWLEDGED


@dataclass(frozen=True)
class PageReopened(PageNews):
    kind = EventKind.PAGE_REOPENED


@dataclass(frozen=True)
class PageDelegated(PageNews):
    kind = EventKind.PAGE_DELEGATED


PAGE_NEWS: Mapping[str, type[PageNews]] = {
    "assigned": PageAssigned, "acknowledged": Acknowledged, "escalated": PageEscalated,
    "reassigned": PageReassigned, "resolved": PageResolved,
    "unacknowledged": PageUnacknowledged, "reopened": PageReopened,
}
"""The fact of each word `jobs.intake` turns PagerDuty's page events into."""


# --- the retro and the follow-through -------------------------------------------------------

@dataclass(frozen=True)
class RetroIssue(Fact):
    """The retro issue was opened (or would have been, in shadow mode)."""

    url: str = ""


@dataclass(frozen=True)
class RetroOpened(RetroIssue):
    kind = EventKind.RETRO_OPENED


@dataclass(frozen=True)
class WouldHaveOpenedRetro(RetroIssue):
    kind = EventKind.WOULD_HAVE_OPENED_RETRO


@dataclass(frozen=True)
class RetroNote(Fact):
    """A note on the existing retro issue (or one that would have been added)."""

    url: str = ""
    round: int | None = field(default=None, metadata=OMIT)  # the reopened round the note tells of
    note: str = ""


@dataclass(frozen=True)
class RetroNoted(RetroNote):
    kind = EventKind.RETRO_NOTED


@dataclass(frozen=True)
class WouldHaveNotedRetro(RetroNote):
    kind = EventKind.WOULD_HAVE_NOTED_RETRO


@dataclass(frozen=True)
class RetroClosed(Fact):
    kind = EventKind.RETRO_CLOSED
    url: str = ""
    complete: bool = False
    missing: list[str] = field(default_factory=list)  # sections still to fill in
    completed_after_close: bool = field(default=False, metadata=OMIT)


@dataclass(frozen=True)
class RetroReminded(Fact):
    kind = EventKind.RETRO_REMINDED
    period: int = 0
    url: str = ""
    assignee: str | None = None
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UpdateOverdue(Fact):
    kind = EventKind.UPDATE_OVERDUE
    once_key: str = ""
    last_update_at: float = 0.0
    due_at: float = 0.0
    cadence_minutes: float = 0.0
    severity: str | None = None


@dataclass(frozen=True)
class UpdateResumed(Fact):
    kind = EventKind.UPDATE_RESUMED
    once_key: str = ""  # the overdue spell's
    overdue_s: float = 0.0
    why: str = ""


# --- the request for help -------------------------------------------------------------------

@dataclass(frozen=True)
class RfhIssueOpened(Fact):
    kind = EventKind.RFH_ISSUE_OPENED
    url: str = ""


@dataclass(frozen=True)
class WouldHaveOpenedRfhIssue(Fact):
    kind = EventKind.WOULD_HAVE_OPENED_RFH_ISSUE


@dataclass(frozen=True)
class RfhIssueSkipped(Fact):
    kind = EventKind.RFH_ISSUE_SKIPPED
    why: str = ""


@dataclass(frozen=True)
class RfhRecorded(Fact):
    kind = EventKind.RFH_RECORDED
    note: str = ""


@dataclass(frozen=True)
class RfhNote(Fact):
    """A note on the request-for-help issue (`url`), or why none was added (`why`)."""

    note: str = ""
    why: str = field(default="", metadata=OMIT)
    url: str = field(default="", metadata=OMIT)


@dataclass(frozen=True)
class RfhIssueNoted(RfhNote):
    kind = EventKind.RFH_ISSUE_NOTED


@dataclass(frozen=True)
class WouldHaveNotedRfhIssue(RfhNote):
    kind = EventKind.WOULD_HAVE_NOTED_RFH_ISSUE


@dataclass(frozen=True)
class RfhNoteSkipped(RfhNote):
    kind = EventKind.RFH_NOTE_SKIPPED


@dataclass(frozen=True)
class RfhNoticePosted(Fact):
    kind = EventKind.RFH_NOTICE_POSTED
    channel: str = ""
    ts: str = ""


@dataclass(frozen=True)
class RfhNoticeSkipped(Fact):
    kind = EventKind.RFH_NOTICE_SKIPPED
    note: str = ""


# --- trouble --------------------------------------------------------------------------------

@dataclass(frozen=True)
class NeedsAttention(Fact):
    kind = EventKind.NEEDS_ATTENTION
    effect: str = ""
    reason: str = ""
    final: bool = False


@dataclass(frozen=True)
class AttentionCleared(Fact):
    kind = EventKind.ATTENTION_CLEARED
    effect: str = ""


@dataclass(frozen=True)
class DeadLettered(Fact):
    kind = EventKind.DEAD_LETTERED
    job_id: int = 0
    job_kind: str = field(default="", metadata=_stored_as("kind"))
    attempts: int = 0
    error: str = ""


# --- the Escalation Engineers ---------------------------------------------------------------

@dataclass(frozen=True)
class EEOffered(Fact):
    kind = EventKind.EE_OFFERED
    rotation: str = ""
    to: list[str] = field(default_factory=list)
    channel: str = ""
    ts: str = ""


@dataclass(frozen=True)
class EESkipped(Fact):
    kind = EventKind.EE_SKIPPED
    why: str = ""


@dataclass(frozen=True)
class EEAssigned(Fact):
    kind = EventKind.EE_ASSIGNED
    rotation: str = ""
    name: str = ""
    after_s: float | None = None  # since the offer


@dataclass(frozen=True)
class EETakenOver(Fact):
    kind = EventKind.EE_TAKEN_OVER
    from_owner: str = field(default="", metadata=_stored_as("from"))
    name: str = ""
    rotation: str = ""


@dataclass(frozen=True)
class EENeedsEngineering(Fact):
    kind = EventKind.EE_NEEDS_ENGINEERING
    rotation: str = ""


@dataclass(frozen=True)
class EEResolved(Fact):
    kind = EventKind.EE_RESOLVED
    rotation: str = ""


@dataclass(frozen=True)
class EEWaitOver(Fact):
    kind = EventKind.EE_WAIT_OVER


@dataclass(frozen=True)
class EEReminded(Fact):
    kind = EventKind.EE_REMINDED
    owner: str = ""
    n: int = 0


@dataclass(frozen=True)
class EEHandedOver(Fact):
    kind = EventKind.EE_HANDED_OVER
    rotation: str = ""
    owner: str = ""
    to: list[str] = field(default_factory=list)


def _facts() -> dict[EventKind, type[Fact]]:
    found: dict[EventKind, type[Fact]] = {}
    todo = list(Fact.__subclasses__())
    while todo:
        cls = todo.pop()
        if "kind" in vars(cls):  # not a shape shared by several kinds (`PageNews`)
            found[cls.kind] = cls
        todo += cls.__subclasses__()
    return found


FACTS: Mapping[EventKind, type[Fact]] = _facts()
"""The fact class of every kind (one each: `tests/unit/test_event_vocabulary.py`)."""


def details_of(kind: EventKind, details: Mapping[str, Any]) -> Fact:
    """The typed fact of a stored entry (`kind`, its `details` object). Never raises for an
    entry of another version (see the module docstring)."""
    return FACTS[kind].read(details)
