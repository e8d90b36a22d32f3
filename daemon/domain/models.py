"""Normalised escalations: the one shape the core sees, whatever vendor the webhook came from.

Vendor payloads are translated into these models at the edge (`daemon/sources/`); the policy,
the state machine and the reports never look at a vendor payload.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Source(StrEnum):
    """Where an escalation was declared."""

    INCIDENT_IO = "incident_io"
    PAGERDUTY = "pagerduty"
    # Declared with the chat's own command (`/tier2`): no incident of its own. The value is the
    # one stored and written in policies (`source: slack`), kept as users know it.
    CHAT = "slack"
    ZENDESK = "zendesk"  # a Zendesk Support ticket (trigger or automation webhook)
    JSM = "jsm"  # a Jira Service Management request (admin webhook)

    @property
    def desk(self) -> bool:
        """A support desk ticket: its outcome is written back to the ticket as internal notes."""
        return self in (Source.ZENDESK, Source.JSM)


class Status(StrEnum):
    """Lifecycle of the *source* incident (not of our decision).

    Every status but `OPEN` ends the incident; they differ in what the end means for a pending
    decision and for the issues: a resolved outage that paged earns its retro; a withdrawn one
    (triage declined it, or it was canceled: there was no incident to work on) takes back its
    pending request and tells its RFH issue; a merged one is a duplicate whose story belongs to
    the incident it was merged into, so the outage keeps one retro.
    """

    OPEN = "open"
    RESOLVED = "resolved"
    WITHDRAWN = "withdrawn"
    MERGED = "merged"

    @property
    def ended(self) -> bool:
        return self is not Status.OPEN


class Criterion(StrEnum):
    """The program's emergency criteria that a support engineer can assert on an incident.

    "An S1 not resolved within X minutes" is not a fact someone sets: the policy derives it
    from severity and age.
    """

    SUPPORT_EXHAUSTED_KNOWLEDGE = "support_exhausted_knowledge"
    PRODUCTION_UNSTABLE = "production_unstable"
    RECOVERY_DEADLINE = "recovery_deadline"
    ROLLBACK_NOT_POSSIBLE = "rollback_not_possible"


CHAT_USER_ID = r"[UW][A-Z0-9]{2,}"
"""The shape of a chat user id (`U…`, or `W…` on Enterprise Grid). A value of any other shape
is not kept as one: it is rendered as a mention and compared with the id of whoever clicks."""


class Person(BaseModel):
    """Someone a source names, e.g. who declared an escalation: whatever the source tells of
    them, neutral of the vendor.

    Every field is the source's word and so untrusted: `name` and `email` are text to show
    (escaped at each sink), never markup; `chat_id` is only set when it has the shape of a chat
    user id (`person()` drops any other), so that it can be a mention and be compared with the
    id of the person who approves.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    chat_id: str = Field(default="", pattern=f"^({CHAT_USER_ID})?$",
                         description="chat user id")
    email: str = ""
    name: str = Field(default="", description="display name as the source gave it")
    source_id: str = Field(default="", description="the source's own id, e.g. a PagerDuty user")

    @property
    def label(self) -> str:
        """The best words for this person when no mention can be made."""
        return self.name or self.email or self.chat_id or self.source_id

    def is_chat_user(self, user_id: str) -> bool:
        return bool(self.chat_id) and self.chat_id == user_id


def person(*, chat_id: str = "", email: str = "", name: str = "", source_id: str = ""
           ) -> Person | None:
    """A `Person` from untrusted parts; a chat id of the wrong shape is dropped, not trusted,
    and nobody at all is None."""
    if not re.fullmatch(CHAT_USER_ID, chat_id):
        chat_id = ""
    found = Person(chat_id=chat_id, email=email.strip(), name=name.strip(),
                   source_id=source_id.strip())
    return found if found.label else None


class Escalation(BaseModel):
    """A customer problem Support escalated, as the vendor last described it.

    `fields` keeps the vendor's custom fields by display name exactly as received; the policy
    maps display names to `Criterion` values, so renaming a field in incident.io is a policy
    edit, not a deploy.

    Facts are ordered per kind, so an older description never overwrites a newer one:
    `updated_at` orders the incident's own attributes, `fields_updated_at` the custom fields
    when they arrive in events of their own.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Source
    external_id: str = Field(min_length=1, description="the vendor's incident id")
    reference: str = Field(default="", description="human reference, e.g. INC-123 or PD #42")
    title: str = ""
    severity: str = Field(default="", description="vendor severity name, mapped by the policy")
    status: Status = Status.OPEN
    merged_into: str = Field(
        default="", description="reference of the incident a merged one was merged into, if "
        "the vendor names it")
    customer: str = ""
    fields: dict[str, str] = Field(default_factory=dict)
    labels: tuple[str, ...] = ()
    links: dict[str, str] = Field(default_factory=dict, description="name -> URL")
    test_mode: bool = Field(
        default=False, description="a test, tutorial or retrospective incident: never pages"
    )
    drill: bool = Field(
        default=False, description="a rehearsal from `tier2gate drill`: the live path end to "
        "end, kept out of the report's figures")
    declared_by: Person | None = Field(
        default=None, description="who declared it, when the source says (a person, not a bot)")
    origin: str = Field(
        default="", description="where it was declared, when the source says: the PagerDuty "
        "service id, the chat channel id `/tier2` was used in (recognises its Tier 1 team)")
    created_at: AwareDatetime
    updated_at: AwareDatetime
    fields_updated_at: AwareDatetime | None = Field(
        default=None,
        description="when `fields` were last described, for a vendor that sends them apart "
        "from the incident (PagerDuty); None when they come with the incident and `updated_at` "
        "orders both",
    )

    def age_minutes(self, now: datetime) -> float:
        """Minutes since the source incident opened, never negative (clocks drift)."""
        return max(0.0, (now - self.created_at).total_seconds() / 60.0)
