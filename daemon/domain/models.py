"""Normalised escalations: the one shape the core sees, whatever vendor the webhook came from.

Vendor payloads are translated into these models at the edge (`daemon/ingress/`); the policy,
the state machine and the reports never look at a vendor payload.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Source(StrEnum):
    """Where an escalation was declared."""

    INCIDENT_IO = "incident_io"
    PAGERDUTY = "pagerduty"
    SLACK = "slack"


class Status(StrEnum):
    """Lifecycle of the *source* incident (not of our decision)."""

    OPEN = "open"
    RESOLVED = "resolved"


class Criterion(StrEnum):
    """The program's emergency criteria that a support engineer can assert on an incident.

    "An S1 not resolved within X minutes" is not a fact someone sets: the policy derives it
    from severity and age.
    """

    SUPPORT_EXHAUSTED_KNOWLEDGE = "support_exhausted_knowledge"
    PRODUCTION_UNSTABLE = "production_unstable"
    RECOVERY_DEADLINE = "recovery_deadline"
    ROLLBACK_NOT_POSSIBLE = "rollback_not_possible"


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
    customer: str = ""
    fields: dict[str, str] = Field(default_factory=dict)
    labels: tuple[str, ...] = ()
    links: dict[str, str] = Field(default_factory=dict, description="name -> URL")
    test_mode: bool = Field(
        default=False, description="a test, tutorial or retrospective incident: never pages"
    )
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
