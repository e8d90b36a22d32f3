"""PagerDuty V3 webhook bodies -> `Escalation`.

A V3 delivery is `{"event": {id, event_type, resource_type, occurred_at, agent, client, data}}`.
Three kinds matter:

- `incident.*` events whose `data.type` is `incident` carry the whole incident (but never its
  custom fields or description) and become an `Escalation`;
- `incident.custom_field_values.updated` carries the custom fields, which PagerDuty sends nowhere
  else; the caller merges them into the escalation it already has;
- everything else (`pagey.ping`, `service.*`, notes, responders, status updates, unknown types)
  is acknowledged and ignored. PagerDuty disables a subscription after three 4xx answers, so
  only an envelope we cannot even identify raises `PayloadError` (400); for the two useful kinds
  also an incident without an id, or a timestamp that is there but unreadable.

Parsing is defensive because payloads vary by age: 2021 captures lack `incident_key` and
`created_at`, `assignees` is empty on resolve, `agent`, `client` and `priority` may be null, and
`conference_number` may be a number. A delivery without `occurred_at` happened, as far as we can
tell, when it was received: the caller passes that time, so a missing timestamp is never a 400.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from daemon.domain.models import Escalation, Person, Source, Status, person
from daemon.sources import fields as read
from daemon.sources.fields import PayloadError

INTAKE_PAGERDUTY = "intake_pagerduty"
"""Job kind of a stored delivery (`jobs.intake.Intake.pagerduty`)."""
CUSTOM_FIELDS_EVENT = "incident.custom_field_values.updated"
PING_EVENT = "pagey.ping"
TRIGGERED_EVENT = "incident.triggered"


class PagerDutyKind(StrEnum):
    """What the caller should do with a delivery."""

    INCIDENT = "incident"
    CUSTOM_FIELDS = "custom_fields"
    IGNORED = "ignored"


class PagerDutyIncident(BaseModel):
    """The incident as this event describes it, with references reduced to ids and summaries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    service_id: str = ""
    status: str = ""
    incident_key: str = ""
    html_url: str = ""
    title: str = ""
    number: int | None = None
    urgency: str = ""
    priority: str = ""
    assignees: tuple[str, ...] = ()
    assigned: tuple[tuple[str, str], ...] = ()  # (user id, name) of each assignee with an id


class PagerDutyEvent(BaseModel):
    """One normalised delivery.

    `event_id` is unique per event (PagerDuty repeats it, and `X-Webhook-Id`, on redelivery).
    `occurred_at` is the event's own time, or the time of receipt when it carries none.
    `incident_id` is also set for ignored `incident.*` events that reference an incident, so the
    timeline can note them. `fields` and `changed_fields` are only set for `CUSTOM_FIELDS`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str
    event_type: str
    resource_type: str = ""
    occurred_at: AwareDatetime
    agent: str = ""
    agent_id: str = ""  # the PagerDuty user id when the agent is a user reference
    kind: PagerDutyKind
    reason: str = ""
    incident_id: str = ""
    incident: PagerDutyIncident | None = None
    escalation: Escalation | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    changed_fields: tuple[str, ...] = ()


def parse_pagerduty(payload: object, *, received_at: datetime) -> PagerDutyEvent:
    """Normalise a decoded PagerDuty V3 webhook body that arrived at `received_at`.

    The ingress and the intake job parse the same stored body, so both pass the delivery's
    time of receipt and get the same answer.
    """
    if not isinstance(payload, dict):
        raise PayloadError("body is not a JSON object")
    event = payload.get("event")
    if not isinstance(event, dict):
        raise PayloadError("missing event object")
    event_id = read.text(event.get("id"))
    if not event_id:
        raise PayloadError("missing event.id")
    event_type = read.text(event.get("event_type"))
    if not event_type:
        raise PayloadError("missing event.event_type")
    data = event.get("data")
    wants_incident = event_type.startswith("incident.") and read.obj(data).get("type") == "incident"
    wants_fields = event_type == CUSTOM_FIELDS_EVENT
    try:
        occurred_at = read.timestamp(event.get("occurred_at"), "event.occurred_at") or received_at
    except PayloadError:
        if wants_incident or wants_fields:
            raise
        occurred_at = received_at  # an ignored event needs no time; answering 400 would cost more
    base: dict[str, Any] = {
        "event_id": event_id,
        "event_type": event_type,
        "resource_type": read.text(event.get("resource_type")) or event_type.partition(".")[0],
        "occurred_at": occurred_at,
        "agent": read.text(read.obj(event.get("agent")).get("summary")),
        "agent_id": _user_id(event.get("agent")),
    }
    if wants_incident:
        incident = _incident(read.obj(data))
        return PagerDutyEvent(
            **base,
            kind=PagerDutyKind.INCIDENT,
            incident_id=incident.id,
            incident=incident,
            escalation=_escalation(incident, read.obj(data), occurred_at, event_type,
                                   _declarer(event.get("agent"), event_type)),
        )
    if wants_fields:
        incident_id = read.text(read.obj(read.obj(data).get("incident")).get("id"))
        if not incident_id:
            raise PayloadError("custom field event without data.incident.id")
        return PagerDutyEvent(
            **base,
            kind=PagerDutyKind.CUSTOM_FIELDS,
            incident_id=incident_id,
            fields=_custom_fields(read.obj(data).get("custom_fields")),
            changed_fields=tuple(_custom_fields(read.obj(data).get("changed_custom_fields"))),
        )
    return PagerDutyEvent(
        **base,
        kind=PagerDutyKind.IGNORED,
        reason=_ignore_reason(event_type),
        incident_id=read.text(read.obj(read.obj(data).get("incident")).get("id"))
        if event_type.startswith("incident.")
        else "",
    )


def _ignore_reason(event_type: str) -> str:
    if event_type == PING_EVENT:
        return "test ping from PagerDuty"
    if event_type.startswith("service."):
        return "service changes are not escalations"
    if event_type.startswith("incident."):
        return "event carries no incident state"
    return "unsupported event type"


def _incident(data: dict[str, Any]) -> PagerDutyIncident:
    incident_id = read.text(data.get("id"))
    if not incident_id:
        raise PayloadError("incident event without data.id")
    number = data.get("number")
    assignees = data.get("assignees")
    return PagerDutyIncident(
        id=incident_id,
        service_id=read.text(read.obj(data.get("service")).get("id")),
        status=read.text(data.get("status")),
        incident_key=read.text(data.get("incident_key")),
        html_url=read.text(data.get("html_url")),
        title=read.text(data.get("title")),
        number=number if isinstance(number, int) and not isinstance(number, bool) else None,
        urgency=read.text(data.get("urgency")),
        priority=read.text(read.obj(data.get("priority")).get("summary")),
        assignees=tuple(
            summary
            for summary in (read.text(read.obj(a).get("summary")) for a in _list(assignees))
            if summary
        ),
        assigned=tuple((user_id, read.text(read.obj(a).get("summary")))
                       for a in _list(assignees) if (user_id := _user_id(a))),
    )


def _user_id(reference: object) -> str:
    """The id of a `user_reference` (`{id, type, summary}`), else ""."""
    found = read.obj(reference)
    return read.text(found.get("id")) if found.get("type") == "user_reference" else ""


_STATUS_OF_EVENT = {"incident.reopened": Status.OPEN, "incident.resolved": Status.RESOLVED}
"""Event types that name the incident's new status. The event type is the authority there: a
reopen must count as open (it makes the escalation be decided again) even if `data.status`
were missing or lagged behind, which the captures do not promise against."""


def _declarer(agent: object, event_type: str) -> Person | None:
    """Who triggered the incident: the agent of `incident.triggered` when it is a user
    (`{id, type: "user_reference", summary}`; the summary is the user's name). Agents of later
    events acknowledged or resolved, they did not declare; a null agent or a service or
    integration reference is automation, no person."""
    reference = read.obj(agent)
    if event_type != TRIGGERED_EVENT or reference.get("type") != "user_reference":
        return None
    return person(name=read.text(reference.get("summary")),
                  source_id=read.text(reference.get("id")))


def _escalation(
    incident: PagerDutyIncident, data: dict[str, Any], occurred_at: datetime, event_type: str,
    declared_by: Person | None,
) -> Escalation:
    """Severity is the priority name ("P1") or empty: urgency is about noise, not impact.

    Custom fields stay empty here; they arrive only in `incident.custom_field_values.updated`.
    The event's time orders updates, so a later event without `occurred_at` (read as its time
    of receipt) still counts as newer than what came before it.
    """
    created_at = read.timestamp(data.get("created_at"), "data.created_at") or occurred_at
    links = {"incident": incident.html_url} if incident.html_url else {}
    conference_url = read.text(read.obj(data.get("conference_bridge")).get("conference_url"))
    if conference_url:
        links["call"] = conference_url
    try:
        return Escalation(
            source=Source.PAGERDUTY,
            external_id=incident.id,
            reference=f"#{incident.number}" if incident.number is not None else "",
            title=incident.title,
            severity=incident.priority,
            status=_STATUS_OF_EVENT.get(
                event_type, Status.RESOLVED if incident.status == "resolved" else Status.OPEN),
            links=links,
            declared_by=declared_by,
            origin=incident.service_id,
            created_at=created_at,
            updated_at=occurred_at,
        )
    except ValidationError as exc:
        raise PayloadError(
            f"incident does not fit an escalation: {exc.error_count()} errors"
        ) from None


def _custom_fields(entries: object) -> dict[str, str]:
    """Field name -> value as text, in the spelling the policy file uses."""
    fields: dict[str, str] = {}
    for entry in _list(entries):
        name = read.text(read.obj(entry).get("name"))
        if name:
            fields[name] = _value_text(read.obj(entry).get("value"))
    return fields


def _value_text(value: object) -> str:
    """Booleans as "true"/"false" (what a policy file would write), null as "", multi-value
    fields joined with ", "."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return ", ".join(text for text in (_value_text(item) for item in value) if text)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)




def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
