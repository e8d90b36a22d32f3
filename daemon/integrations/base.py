"""The small interfaces the core talks through; vendor modules implement them.

Nothing here names a vendor SDK, a Block Kit element or an HTTP status. Adapters *classify* a
failed call by raising `failures.Retry` (temporary: 5xx, 408, 429 with its Retry-After, timeouts,
connection resets) or `failures.Permanent` (retrying cannot help: 4xx, bad configuration);
the job runner owns the timing. Error messages must never contain a token or secret.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from daemon.domain.gate import Verdict
from daemon.domain.messages import Link, Message
from daemon.workers.retry import Permanent


class ChannelRefused(Permanent):
    """The chat refused to post in a channel for a reason only a person can fix: the bot is
    not a member, the channel is gone or archived, posting is restricted, a scope is missing.
    The approval request then goes to the approvers directly."""


class DecisionKind(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    TIMED_OUT = "timed_out"


class NoDecision(StrEnum):
    """Why a request wants no decision any more although nobody decided: the message must say
    so instead of offering buttons that would decide nothing."""

    RESOLVED = "resolved"  # the source incident was resolved first
    WITHDRAWN = "withdrawn"  # the source incident was declined in triage or canceled
    MERGED = "merged"  # the source incident was merged into another one
    NOT_EMERGENCY = "not_emergency"  # the policy no longer calls it an emergency


@dataclass(frozen=True)
class MessageRef:
    """Where a chat message lives, to update it or reply in its thread."""

    channel: str
    ts: str


@dataclass(frozen=True)
class Decided:
    kind: DecisionKind
    by: str = ""  # chat user id of the approver; "" for a timeout
    at: str = ""  # UTC time as people read it: "2026-11-21 03:12 UTC"
    reason: str = ""
    paging: bool = True  # whether the decision leads to a page (approved; timeout with `page`)
    self_approved: bool = False  # approved by whoever declared the escalation


@dataclass(frozen=True)
class Tier2Load:
    """The recent pages of the Tier 2 engineer who would be paged, for the SMOC to weigh."""

    name: str  # as PagerDuty gave it (untrusted text)
    on_call: bool  # True: on call on the Tier 2 schedule now; False: the engineer paged last
    pages: int  # in the last `window_days`
    weekend_pages: int  # on the current weekend, or the last one on a weekday
    sleep_pages: int  # 22:00-08:00 in their time zone, in the window
    weekends_in_a_row: int
    window_days: int
    warnings: tuple[str, ...] = ()  # the policy's fatigue thresholds reached, in words
    weekend_now: bool = True  # False: asked on a weekday, `weekend_pages` are last weekend's


@dataclass(frozen=True)
class ApprovalView:
    """Everything the SMOC needs to decide from a phone at 2 a.m., in domain terms."""

    escalation_id: str
    title: str
    reference: str
    customer: str
    severity: str
    reason: str  # why the policy says emergency, in words
    criteria: tuple[str, ...]  # criteria names that matched
    age_minutes: int
    weekend: bool
    off_hours: bool
    approver_ids: tuple[str, ...]  # chat user ids allowed to decide (SMOC first when resolved)
    smoc_note: str = ""  # e.g. "SMOC could not be resolved from PagerDuty: ..."
    smoc_resolved: bool = False  # approver_ids[0] is the SMOC; False: all are backups
    declarer_id: str = ""  # chat user id of whoever declared the escalation, when known
    declarer_name: str = ""  # their name or email as the source gave it (untrusted text)
    links: dict[str, str] = field(default_factory=dict)  # name -> URL (incident, runbook, ...)
    shadow: bool = False  # SHADOW mode: nobody will be paged whatever is clicked
    drill: bool = False  # a rehearsal (`tier2gate drill`): only the drill service is paged
    decided: Decided | None = None
    problem: str = ""  # what failed and what to do by hand, e.g. the page did not go out
    page_failed: bool = False  # the page was decided but did not go out (for good)
    no_decision: NoDecision | None = None  # set: nobody decided, and nobody needs to any more
    no_decision_detail: str = ""  # the merge target, or the policy's reason (untrusted text)
    # The customer's events in progress when judged, e.g. "migration: Move to the EU region
    # (until 2026-12-06 20:00 UTC)" (untrusted text: from a calendar)
    customer_events: tuple[str, ...] = ()
    # The evidence pack (policy `evidence`): labels of what Support handed over and of what is
    # missing. Shown so the SMOC decides with it in view; it never blocks a decision.
    evidence_present: tuple[str, ...] = ()
    evidence_missing: tuple[str, ...] = ()
    ee_id: str = ""  # chat user id of the Escalation Engineer who owns it (its DRI), if any
    ee_outcome: str = ""  # "resolved" / "engineering" once the EE said so
    tier2_load: Tier2Load | None = None  # None: nobody known to be paged, or not looked up
    team: str = ""  # the Tier 1 team whose approvers decide; "" for the implicit one

    @property
    def waiting(self) -> bool:
        """Whether a decision is wanted: the only state in which the message offers buttons."""
        return self.decided is None and self.no_decision is None


@dataclass(frozen=True)
class EEOfferView:
    """The offer to the Escalation Engineers on rotation, rendered from the current state:
    "Take it" while nobody owns it, the owner's two answers while the EE step is open, the
    answer once given."""

    escalation_id: str
    title: str
    reference: str
    customer: str
    severity: str
    emergency: bool
    reason: str  # the policy's reason, in words (untrusted text)
    offered_to: tuple[str, ...]  # chat user ids of the EEs on rotation
    owner_id: str = ""
    outcome: str = ""  # "" / "resolved" / "engineering"
    outcome_by: str = ""  # chat user id of the EE who said it (the owner may change after)
    wait_minutes: float = 0  # an emergency waiting this long for an EE before the SMOC
    shadow: bool = False  # SHADOW mode: the offer says so (nobody is paged, no issue opened)
    links: dict[str, str] = field(default_factory=dict)
    ended: str = ""  # why no EE is needed any more (resolved, withdrawn), in words
    # The owner sent it on to Engineering and it is still open: it is still theirs, and an
    # incoming EE takes it over after a rotation change.
    take_over: bool = False
    # Nobody took it in time: it went on without an EE (to Tier 2, or to the SMOC).
    went_on: bool = False
    smoc_asked: bool = False  # an emergency put to the SMOC (no longer held back for an EE)


@dataclass(frozen=True)
class EscalationFormSpec:
    """What the `/tier2` form offers: the policy's severities and criteria, in its words."""

    severities: tuple[str, ...]
    criteria: tuple[tuple[str, str], ...]  # (criterion name, label the support engineer reads)
    title: str = ""  # prefilled from the command's text
    # The policy's evidence pack: (field name the answer is stored under, label to show).
    evidence: tuple[tuple[str, str], ...] = ()
    channel: str = ""  # where `/tier2` was used: kept with the form, it recognises the team


# --- The chat, by role ------------------------------------------------------------------
# A chat tool implements the roles it supports. `Chat` (approval requests, notices, identity)
# is the least the approval flow needs; the others are optional, and each consumer that uses
# one says what happens without it (`ChatRoles`).


class ApprovalRequests(Protocol):
    """The approval request: posted, found again after a crash, rendered anew from the current
    state, replied under, and the decline-reason question."""

    async def post_approval(self, channel: str, view: ApprovalView) -> MessageRef:
        """Post the approval request with Approve / Decline buttons. `channel` may be a user
        id: the request then arrives as a direct message. Raises `ChannelRefused` when the
        channel will not take the bot's message until a person fixes it."""
        ...

    async def find_approval(self, channel: str, escalation_id: str) -> MessageRef | None:
        """An approval request posted earlier for this escalation (by an attempt that died
        before recording it), so a retry does not post a second one."""
        ...

    async def update_approval(self, ref: MessageRef, view: ApprovalView) -> None:
        """Replace the message in place, e.g. buttons -> "Approved by @x at 03:12 UTC"."""
        ...

    async def post_in_thread(self, ref: MessageRef, text: Message, key: str = "") -> MessageRef:
        """A follow-up under the approval message (reminders, page status, retro link),
        rendered in the chat's own markup, tagged with `key` so that `find_in_thread` can tell
        it was already posted."""
        ...

    async def find_in_thread(self, ref: MessageRef, key: str) -> MessageRef | None:
        """A follow-up posted earlier with this key (by an attempt that died before recording
        it), so a retry does not post it twice."""
        ...

    async def ask_decline_reason(self, trigger_id: str, escalation_id: str, message: MessageRef
                                 ) -> None:
        """Open a form asking why the escalation is declined."""
        ...

    def is_direct(self, channel: str) -> bool:
        """Whether `channel` is a direct conversation with one person (where a request may be
        posted when the approval channel refuses it), as this chat names those."""
        ...


class Notices(Protocol):
    """Standalone messages: to a channel, to one person directly, or seen by one person only."""

    async def post_notice(self, channel: str, text: Message, key: str = "") -> MessageRef:
        """A standalone message, e.g. the request-for-help notice, rendered in the chat's own
        markup and cut to its size limit; to a user id: a direct message. `key` tags it so
        that `find_notice` can tell it was already posted."""
        ...

    def notice_size(self, text: Message) -> int:
        """How many characters `text` takes as this chat sends it: a notice listing many items
        counts with it to say "and N more" rather than be cut at the chat's limit."""
        ...

    def permalink(self, ref: MessageRef) -> Link | None:
        """A link (labelled for people) that opens message `ref` for anyone in the chat, or
        None when this chat's messages have no such address."""
        ...

    async def find_notice(self, channel: str, key: str) -> MessageRef | None:
        """A notice posted earlier with this key (by an attempt that died before recording
        it), so a retry does not post it twice."""
        ...

    async def tell_user(self, channel: str, user_id: str, text: Message) -> None:
        """A message only that user sees (refused or late clicks), rendered in the chat's own
        markup."""
        ...


class Identity(Protocol):
    """Who is who in the chat: the SMOC's email to a chat user, backup approvers' groups."""

    async def user_id_for_email(self, email: str) -> str | None:
        """The chat user with this email, or None if there is none."""
        ...

    async def group_members(self, group_id: str) -> tuple[str, ...]:
        """User ids in a user group (backup approvers given as a group)."""
        ...


class Chat(ApprovalRequests, Notices, Identity, Protocol):
    """The chat tool where approvals happen: the least a chat must do to run the approval flow
    (ask, be answered, tell people, know who they are)."""


class ThreadActivity(Protocol):
    """Reading people's replies under a request. Without it, a thread is not counted among an
    emergency's updates (the update cadence judges by the other updates)."""

    async def thread_activity(self, ref: MessageRef, since_s: float) -> float | None:
        """When a person (not a bot) last wrote in the thread under `ref` after `since_s`
        (epoch seconds), or None: an emergency's thread counts as its updates."""
        ...


class EscalationForms(Protocol):
    """The `/tier2` form. Without it, `/tier2` is not offered: the person is told so."""

    async def open_escalation_form(self, trigger_id: str, spec: EscalationFormSpec) -> None:
        """Open the form a support engineer fills to declare an escalation from chat."""
        ...


class EEOffers(Protocol):
    """Offers to the Escalation Engineers on rotation. Without it, the EE step is skipped and
    recorded (`ee_skipped`, with why) as when nobody is on the rotation."""

    async def post_ee_offer(self, channel: str, view: EEOfferView) -> MessageRef:
        """Offer an escalation to the EEs on rotation, with the "Take it" button."""
        ...

    async def update_ee_offer(self, ref: MessageRef, view: EEOfferView) -> None:
        """Show the offer's current state (who owns it, the EE's answer)."""
        ...

    async def find_ee_offer(self, channel: str, escalation_id: str) -> MessageRef | None:
        """An offer posted earlier for this escalation (by an attempt that died before
        recording it), so a retry does not offer it twice."""
        ...


@dataclass(frozen=True)
class ApprovalAnswer:
    """A person's answer to an approval request as a chat's edge reads it (a button, or the
    decline-reason form): the one value the approval jobs decide on, whichever chat it came
    from. Stored as the body of the delivery that carries it (`to_body`)."""

    escalation_id: str  # the escalation the button names
    verdict: Verdict
    user_id: str  # chat user id of who answered
    channel: str  # where the message answered on lives
    message_ts: str
    answer_id: str  # one per press or submission: repeats of one press share it
    trigger_id: str = ""  # what the chat needs to open the decline-reason form
    reason: str | None = None  # the decline reason; None: a button, not the form

    def to_body(self) -> bytes:
        return json.dumps({**dataclasses.asdict(self), "verdict": self.verdict.value},
                          sort_keys=True).encode()

    @classmethod
    def from_body(cls, body: bytes) -> ApprovalAnswer:
        """The answer `to_body` stored; ValueError for anything else."""
        try:
            fields = json.loads(body)
            return cls(**{**fields, "verdict": Verdict(fields["verdict"])})
        except (TypeError, KeyError, ValueError) as exc:  # ValueError: JSON, UTF-8, verdict
            raise ValueError(f"not an approval answer: {exc}") from None


@dataclass(frozen=True)
class ChatRoles:
    """One chat tool by role, as the job handlers use it; None: the chat cannot do that (see
    each role for what happens instead)."""

    requests: ApprovalRequests
    notices: Notices
    identity: Identity
    forms: EscalationForms | None = None
    ee_offers: EEOffers | None = None
    activity: ThreadActivity | None = None

    @classmethod
    def of(cls, chat: Chat) -> ChatRoles:
        """A chat that plays the approval-flow roles only."""
        return cls(requests=chat, notices=chat, identity=chat)


@dataclass(frozen=True)
class PageRequest:
    escalation_id: str
    key: str  # derived from the escalation id: a retry can never create a second page
    title: str
    details: str  # criteria, who approved, links: what the paged engineer reads first
    links: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PageResult:
    incident_id: str  # the Tier 2 incident (REST) or dedup key (Events API)
    url: str = ""
    already_open: bool = False  # the vendor said a page with this key exists already


class Pager(Protocol):
    """Where Tier 2 gets paged and who the SMOC is (PagerDuty)."""

    async def smoc_email(self, schedule_id: str | None = None) -> str | None:
        """Email of whoever is on call now on `schedule_id` (default: the configured SMOC
        schedule; a Tier 1 team may have its own), None if nobody is."""
        ...

    async def page(self, request: PageRequest) -> PageResult:
        """Page Tier 2, idempotently on `request.key`."""
        ...

    async def on_call(self, schedule_id: str, since: datetime, until: datetime
                      ) -> tuple[OnCall, ...]:
        """Who is on call on `schedule_id` at some time in [since, until), in shift order."""
        ...

    async def user_time_zone(self, user_id: str) -> str | None:
        """The IANA time zone of a responder's profile, None when PagerDuty has none."""
        ...

    async def user_email(self, user_id: str) -> str | None:
        """The email of a responder's profile, None when PagerDuty has none."""
        ...

    async def tier2_on_call(self) -> tuple[str, str] | None:
        """(user id, name) of whoever is on call now on the Tier 2 schedule; None when no
        schedule is configured or nobody is on call."""
        ...


@dataclass(frozen=True)
class OnCall:
    """One person's on-call shift (name and email as the pager has them: untrusted text)."""

    name: str
    email: str
    start: datetime | None = None  # None: open-ended (PagerDuty leaves "always on call" empty)
    end: datetime | None = None


@dataclass(frozen=True)
class IssueDraft:
    title: str
    body: str  # Markdown
    marker: str  # deterministic, e.g. "tier2gate-retro-esc-7f3k": found again after a crash
    labels: tuple[str, ...] = ()
    assignee: str | None = None


@dataclass(frozen=True)
class IssueRef:
    id: str
    url: str


@dataclass(frozen=True)
class IssueState:
    """An issue as the tracker holds it now: whether it is closed, its body (Markdown; Jira's
    document rendered back to Markdown headings and paragraphs) and who it is assigned to
    (GitLab username, GitHub login, Jira display name; "" when nobody). All of it is text
    people wrote in the tracker: untrusted wherever it is shown."""

    ref: IssueRef
    closed: bool
    body: str
    assignee: str = ""


class IssueTracker(Protocol):
    """Where retro and request-for-help issues go (GitLab, GitHub, Jira)."""

    async def find_by_marker(self, marker: str) -> IssueRef | None:
        """An issue created earlier for this marker, if any (the exactly-once guard)."""
        ...

    async def create(self, draft: IssueDraft) -> IssueRef:
        """Create the issue, carrying the marker so `find_by_marker` finds it."""
        ...

    async def add_note(self, ref: IssueRef, text: str) -> None:
        """Add a comment (Markdown) to an existing issue, e.g. a reopened emergency's retro."""
        ...

    async def close_issue(self, ref: IssueRef) -> None:
        """Close the issue (a drill's retro, once it was shown to open)."""
        ...

    async def find_state(self, marker: str) -> IssueState | None:
        """The issue carrying this marker as it is now (one request), or None when there is
        none: how a retro's follow-through is seen without a tracker webhook."""
        ...


class IncidentSource(Protocol):
    """Where the latest state of a source incident can be fetched (incident.io API)."""

    async def fetch_incident(self, incident_id: str) -> dict[str, Any]:
        """The incident object as the vendor's API returns it now."""
        ...


class Desk(Protocol):
    """The support desk a ticket escalation came from (Zendesk, Jira Service Management), where
    each step is written back as an internal note: seen by agents, never by the customer."""

    async def has_note(self, ticket: str, marker: str) -> bool:
        """Whether a note carrying `marker` is on the ticket already (the exactly-once guard:
        an attempt may have died after the desk took the note but before we recorded it)."""
        ...

    async def add_note(self, ticket: str, text: str, marker: str) -> None:
        """Add an internal note: `text` (already made literal for this desk), cut to the
        desk's limit if need be, then the `marker` line, which is never cut."""
        ...


# --- Preflight: read-only questions `tier2gate doctor` asks each vendor ----------------------
# Kept apart from the effect protocols above: a preflight never changes anything at a vendor,
# and a stand-in or adapter can be checked without being able to page or post.


@dataclass(frozen=True)
class DeskIdentity:
    """Who a support desk's API token acts as (read-only: doctor asks, nothing changes)."""

    name: str  # the email or display name the desk reports
    role: str | None  # Zendesk's `agent` / `admin` / `end-user`; None where the desk has none
    active: bool


class DeskPreflight(Protocol):
    async def identity(self) -> DeskIdentity:
        """The token's own user; raises the classified failure when the token is refused."""
        ...


@dataclass(frozen=True)
class ChatIdentity:
    """Who the chat token is, and what it may do."""

    user_id: str
    scopes: frozenset[str] | None  # None: the chat did not say (no scopes header)


@dataclass(frozen=True)
class ChannelState:
    channel: str
    is_member: bool
    is_private: bool
    is_archived: bool


class ChatPreflight(Identity, Protocol):
    async def identity(self) -> ChatIdentity:
        """The token's own identity and granted scopes; `Permanent` when it is not valid."""
        ...

    async def channel_state(self, channel: str) -> ChannelState:
        """Whether the channel exists (else `Permanent` with the chat's code) and the bot is in
        it."""
        ...

    async def user_active(self, user_id: str) -> bool:
        """Whether the user exists and is not deactivated."""
        ...


class PagerPreflight(Protocol):
    async def smoc_email(self, schedule_id: str | None = None) -> str | None:
        ...

    async def service_name(self, service_id: str) -> str:
        """The service's name; `Permanent` when it does not exist or cannot be read."""
        ...

    async def user_exists(self, email: str) -> bool:
        """Whether a user with exactly this login email exists."""
        ...


@dataclass(frozen=True)
class CustomFieldInfo:
    name: str
    field_type: str  # the vendor's word: single_select, multi_select, text, numeric, link
    options: tuple[str, ...] = ()  # the choices of a select field


class IncidentCatalog(Protocol):
    async def custom_fields(self) -> tuple[CustomFieldInfo, ...]:
        """Every incident custom field, with the options of the select ones."""
        ...


@dataclass(frozen=True)
class TrackerAccess:
    can_create: bool
    detail: str  # what the tracker said about the token's rights, in words


class TrackerPreflight(Protocol):
    async def create_access(self) -> TrackerAccess:
        """Whether the token may create (labelled) issues in the project, asked without
        creating one; `Permanent` when the project or the token is not usable at all."""
        ...


# Each vendor client with its preflight: what wiring builds and shares between the job
# handlers and the preflight.


class Tracker(IssueTracker, TrackerPreflight, Protocol):
    """A tracker client: the effects and its preflight."""

    def close(self) -> None:
        """Release the pooled connections."""
        ...


class ChatClient(Chat, ThreadActivity, EscalationForms, EEOffers, ChatPreflight, Protocol):
    """A chat client with every role and its preflight (Slack)."""


class PagerClient(Pager, PagerPreflight, Protocol):
    """The pager client: the effects and its preflight."""


class IncidentApi(IncidentSource, IncidentCatalog, Protocol):
    """The incident API client: incidents and custom fields."""
