"""Support desk tickets -> `Escalation`: Zendesk trigger bodies and Jira Service Management
admin webhooks, one ticket-escalation source with a field mapping per desk.

A desk ticket becomes an escalation whose external id is the ticket id (Zendesk's number, the
Jira issue key), so the policy, approval, page, retro and report work as for any source:

- severity: the ticket priority as written (`Urgent`, `High`, `Highest`, …), which the policy's
  `severity_aliases` map to a canonical severity;
- criteria: custom fields by id, renamed through `field_names` (settings) to the display names
  the policy's `criteria_fields` use; a field without a name keeps its id, so a policy may name
  the id itself;
- customer: the Zendesk organization, or the JSM `Organizations` field (`customer_field`);
- labels: the ticket's tags (Zendesk) or labels (Jira), plus `group:…`, `brand:…` (Zendesk) or
  `project:…` (Jira), so a policy rule (`labels_any`) can single out a team by desk group or
  brand; a tag or label of the ticket's own that starts with one of those prefixes is left
  out, so that only the ticket's group, brand and project say where it is;
- declared_by: whoever changed the ticket and so fired the trigger or webhook.

Parsing is defensive like the other sources (`sources.fields`): what is absent or of another
type reads as empty; only a missing ticket id or timestamp is a `PayloadError` (400).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from daemon.domain.models import Escalation, Source, Status, person
from daemon.sources import fields as read
from daemon.sources.fields import PayloadError

INTAKE_DESK = "intake_desk"
"""Job kind of a stored Zendesk or JSM delivery, which names its desk
(`jobs.intake.Intake.desk`)."""

ZENDESK_ENDED = {"solved": Status.RESOLVED, "closed": Status.RESOLVED,
                 "deleted": Status.WITHDRAWN}
"""Zendesk ticket statuses that end an escalation (`{{ticket.status}}` renders the status's
name: New, Open, Pending, On-hold, Solved, Closed; case is ignored). Every other one is open:
a status Zendesk adds later must not silently close an escalation."""

JIRA_EVENTS = frozenset({"jira:issue_created", "jira:issue_updated", "jira:issue_deleted"})
"""Jira webhook events about a request itself
(https://developer.atlassian.com/cloud/jira/platform/webhooks/#registering-events-for-a-webhook);
comments, worklogs and the rest are acknowledged and ignored."""


@dataclass(frozen=True)
class DeskEvent:
    """One desk delivery, normalised: `escalation` is None when it is about no ticket we
    escalate (`reason` says why: it is recorded with the ignored delivery)."""

    event_type: str
    escalation: Escalation | None
    reason: str = ""
    sent_at: datetime | None = None  # when the desk says it sent it (Jira's signed timestamp)


def parse_zendesk(payload: object, *, field_names: Mapping[str, str]) -> DeskEvent:
    """A Zendesk trigger or automation body as `docs/setup/zendesk.md` writes it:
    `{"ticket": {"id", "subject", "priority", "status", "tags", "organization", "group",
    "brand", "url", "created_at", "updated_at", "custom_fields", "updated_by"}}`. Placeholders
    render as text, so ids and tags may arrive as strings; the API's own shapes (numbers, a
    list of tags, `custom_fields` as `[{"id", "value"}]`) are read too."""
    ticket = read.obj(read.obj(payload).get("ticket"))
    if not ticket:
        raise PayloadError("body has no ticket object")
    ticket_id = _id_text(ticket.get("id"))
    if not ticket_id:
        raise PayloadError("ticket has no id")
    created_at = read.timestamp(ticket.get("created_at") or None, "created_at")
    updated_at = read.timestamp(ticket.get("updated_at") or None, "updated_at")
    if updated_at is None:
        raise PayloadError("ticket has no updated_at")
    tags = ticket.get("tags")
    labels = [*_own(tags.split() if isinstance(tags, str) else _texts(tags)),
              *_prefixed("group", ticket.get("group")), *_prefixed("brand", ticket.get("brand"))]
    status = read.text(ticket.get("status")).strip().casefold()
    priority = read.text(ticket.get("priority")).strip()
    author = read.obj(ticket.get("updated_by"))
    url = read.text(ticket.get("url"))
    escalation = _escalation(
        source=Source.ZENDESK, external_id=ticket_id, reference=f"ZD-{ticket_id}",
        title=read.text(ticket.get("subject")),
        severity="" if priority == "-" else priority,  # "-": the ticket has no priority
        status=ZENDESK_ENDED.get(status, Status.OPEN),
        customer=read.text(ticket.get("organization")).strip(),
        fields=_named(_custom_fields(ticket.get("custom_fields")), field_names),
        labels=tuple(dict.fromkeys(label for label in labels if label)),
        links={"ticket": url} if url else {},
        declared_by=person(name=read.text(author.get("name")),
                           email=read.text(author.get("email"))),
        created_at=created_at or updated_at, updated_at=updated_at)
    return DeskEvent("ticket", escalation)


def parse_jsm(payload: object, *, field_names: Mapping[str, str], customer_field: str
              ) -> DeskEvent:
    """A Jira admin webhook body (`{"timestamp", "webhookEvent", "issue", "user"}`,
    https://developer.atlassian.com/cloud/jira/platform/webhooks/#example-callback-for-an-issue-related-event)
    about a Jira Service Management request."""
    body = read.obj(payload)
    if not body:
        raise PayloadError("body is not a JSON object")
    event_type = read.text(body.get("webhookEvent"))
    if not event_type:
        raise PayloadError("missing webhookEvent")
    sent_ms = body.get("timestamp")
    sent_at = (datetime.fromtimestamp(sent_ms / 1000, tz=UTC)
               if isinstance(sent_ms, int) and not isinstance(sent_ms, bool)
               and 0 < sent_ms < 10**14 else None)
    if event_type not in JIRA_EVENTS:
        return DeskEvent(event_type, None, "not an event about a request", sent_at)
    issue = read.obj(body.get("issue"))
    key = read.text(issue.get("key"))
    fields = read.obj(issue.get("fields"))
    if not key:
        raise PayloadError("issue has no key")
    created_at = read.timestamp(fields.get("created") or None, "created")
    updated_at = read.timestamp(fields.get("updated") or None, "updated") or sent_at
    if updated_at is None:
        raise PayloadError("issue has neither fields.updated nor a timestamp")
    category = read.text(read.obj(read.obj(fields.get("status")).get("statusCategory"))
                         .get("key"))
    status = (Status.WITHDRAWN if event_type == "jira:issue_deleted"
              else Status.RESOLVED if category == "done" else Status.OPEN)
    custom = {name: _value_text(value) for name, value in fields.items()
              if name.startswith("customfield_") and name != customer_field}
    project = read.text(read.obj(fields.get("project")).get("key"))
    user = read.obj(body.get("user"))
    escalation = _escalation(
        source=Source.JSM, external_id=key, reference=key,
        title=read.text(fields.get("summary")),
        severity=read.text(read.obj(fields.get("priority")).get("name")),
        status=status, customer=_value_text(fields.get(customer_field)),
        fields=_named({k: v for k, v in custom.items() if v}, field_names),
        labels=tuple(dict.fromkeys([*_own(_texts(fields.get("labels"))),
                                    *_prefixed("project", project)])),
        links=_browse_link(read.text(issue.get("self")), key),
        declared_by=person(name=read.text(user.get("displayName")),
                           email=read.text(user.get("emailAddress")),
                           source_id=read.text(user.get("accountId"))),
        created_at=created_at or updated_at, updated_at=updated_at)
    return DeskEvent(event_type, escalation, sent_at=sent_at)


def _escalation(**facts: Any) -> Escalation:
    try:
        return Escalation(**facts)
    except ValidationError as exc:
        raise PayloadError(f"ticket does not fit an escalation: {exc.error_count()} errors"
                           ) from None


def _id_text(value: object) -> str:
    """A ticket id as text: a placeholder renders it as a string, the API as a number."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return read.text(value).strip()


def _texts(values: object) -> list[str]:
    return [v.strip() for v in values if isinstance(v, str)] if isinstance(values, list) else []


def _own(tags: list[str]) -> list[str]:
    """The ticket's tags or labels without those that read like the `group:`, `brand:` and
    `project:` labels we add: those say where the ticket is, and so which Tier 1 team approves
    it (`domain.teams`); a tag is text anyone editing the ticket types."""
    return [tag for tag in tags if not tag.casefold().startswith(_WHERE)]


_WHERE = ("group:", "brand:", "project:")


def _prefixed(prefix: str, value: object) -> list[str]:
    name = read.text(value).strip() or read.text(read.obj(value).get("name")).strip()
    return [f"{prefix}:{name}"] if name else []


def _custom_fields(value: object) -> dict[str, str]:
    """Field id -> value text, from `[{"id", "value"}]` (the API's shape) or `{id: value}`."""
    if isinstance(value, dict):
        return {str(k): _value_text(v) for k, v in value.items()}
    found: dict[str, str] = {}
    if isinstance(value, list):
        for entry in value:
            field_id = _id_text(read.obj(entry).get("id"))
            if field_id:
                found[field_id] = _value_text(read.obj(entry).get("value"))
    return found


def _named(by_id: Mapping[str, str], names: Mapping[str, str]) -> dict[str, str]:
    """Values by the policy's display name (`field_names`); an unnamed field keeps its id."""
    return {names.get(field_id, field_id): value for field_id, value in by_id.items()}


def _value_text(value: object) -> str:
    """One field value as text: a string, a number or boolean, a Jira option (`value`),
    object (`name`) or request type (`requestType.name`), or a list of those joined with
    ", "."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        # JSM's "Customer Request Type" field holds `{"requestType": {"name", …}, …}`
        # (developer.atlassian.com/cloud/jira/service-desk/exploring-the-jira-service-desk-
        # domain-model-via-the-rest-apis): its name, so a team can be recognised by it.
        kind = read.obj(value.get("requestType"))
        return read.text(value.get("value") or value.get("name") or kind.get("name")).strip()
    if isinstance(value, list):
        return ", ".join(text for text in (_value_text(v) for v in value) if text)
    return ""


def _browse_link(self_url: str, key: str) -> dict[str, str]:
    """The request's page for people, from the API URL Jira sends (`…/rest/api/2/issue/ID`)."""
    site, found, _rest = self_url.partition("/rest/")
    return {"ticket": f"{site}/browse/{key}"} if found and site.startswith("http") else {}

