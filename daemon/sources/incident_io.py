"""incident.io webhook bodies -> `Escalation`.

The envelope is `{"event_type": T, T: {...}}`: the payload sits under a key equal to the event
type. Only the three incident events describe an escalation; everything else (follow-ups,
actions, post-mortems, on-call escalations, alerts, schedules) is acknowledged and ignored.

Private incidents arrive as `{"id": ...}` only, so their result asks the caller to fetch the
incident from the API (`GET /v2/incidents/{id}` -> `{"incident": {...}}`, same shape as a
webhook incident) and to pass it to `escalation_from_incident`.

Parsing is defensive: a field of the wrong type reads as absent. Only what we cannot work
without (an object envelope, the event type, the payload of a known event, the incident id and
creation time) raises `PayloadError`, which the endpoint turns into a 400.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict, ValidationError

from daemon.domain.models import Escalation, Person, Source, Status, person
from daemon.sources import fields as read
from daemon.sources.fields import PayloadError

INTAKE_INCIDENT_IO = "intake_incident_io"
"""Job kind of a stored delivery (`jobs.intake.Intake.incident_io`)."""

STATUS_OF_CATEGORY: dict[str, Status] = {
    "closed": Status.RESOLVED,
    "learning": Status.RESOLVED,
    "declined": Status.WITHDRAWN,
    "canceled": Status.WITHDRAWN,
    "merged": Status.MERGED,
}
"""What each `incident_status.category` means for an escalation; every other one is open.

The categories (https://docs.incident.io/api-reference/incident-statuses-v1) and their meaning
(https://help.incident.io/en/articles/6878776-triaging-your-incidents,
https://docs.incident.io/incidents/lifecycle): `triage` is someone deciding whether this is an
incident at all, `live` ("Active") is being worked on, `paused` is work on hold (the impact is
not over), so all three are open, and so is any category incident.io adds later: an unknown
state must not silently close an escalation. `learning` ("Post-incident") and `closed` mean the
impact is over: resolved, which is when a retro issue is opened. `declined` (triage concluded it
is no problem) and `canceled` withdraw the incident: it never needed anyone. `merged` marks a
duplicate of another incident, which carries on.
"""

INCIDENT_EVENTS = frozenset(
    {"incident_created_v2", "incident_updated_v2", "incident_status_updated_v2"}
)

_IGNORED_INCIDENT_EVENTS: tuple[tuple[str, str], ...] = (
    ("follow_up_", "follow-ups do not change an escalation"),
    ("action_", "incident actions do not change an escalation"),
    ("postmortem_", "post-mortem documents do not change an escalation"),
    ("membership_", "private-incident membership does not change an escalation"),
)
_IGNORED_SCOPES: dict[str, str] = {
    "public_escalation": "incident.io On-call escalations are not Support escalations",
    "private_escalation": "incident.io On-call escalations are not Support escalations",
    "public_alert": "alerts are not Support escalations",
    "private_alert": "alerts are not Support escalations",
    "schedule": "on-call schedules are not escalations",
    "status_page_incident": "status page updates do not change an escalation",
}


class IncidentIoKind(StrEnum):
    """What the caller should do with a delivery."""

    INCIDENT = "incident"
    IGNORED = "ignored"


class IncidentIoEvent(BaseModel):
    """One normalised delivery.

    For a public incident event `escalation` is set. For a private one it is None and
    `needs_fetch` is True: the webhook carries only the id. `reason` says why a delivery was
    ignored, for the timeline and logs.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: str
    kind: IncidentIoKind
    incident_id: str = ""
    escalation: Escalation | None = None
    needs_fetch: bool = False
    reason: str = ""


CUSTOMER_FIELDS = ("Customer",)
"""The incident.io custom field(s) naming the affected customer."""

def parse_incident_io(
    payload: object, *, customer_fields: Sequence[str] = CUSTOMER_FIELDS
) -> IncidentIoEvent:
    """Normalise a decoded incident.io webhook body."""
    event = _read(payload, customer_fields, full=True)
    assert event is not None  # `full` always gives one
    return event


def check_incident_io(payload: object) -> str:
    """The event type, once the body passed every check of `parse_incident_io` that can refuse
    it (`PayloadError`, the same reasons) without building the escalation: what the endpoint
    must know before it answers (400 or 2xx). The intake job parses it fully, once."""
    _read(payload, (), full=False)
    event_type: str = payload["event_type"]  # type: ignore[index]  # checked by _read
    return event_type


class _Identity(msgspec.Struct):
    """The fields of an incident object `_identity` reads; any JSON value, absent = None."""

    id: Any = None
    created_at: Any = None
    updated_at: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "created_at": self.created_at, "updated_at": self.updated_at}


class _StatusUpdate(msgspec.Struct):
    incident: _Identity | None = None


class _Envelope(msgspec.Struct):
    """The public incident events' envelope, as far as `check_incident_io` reads it."""

    event_type: Any = None
    created: _Identity | None = msgspec.field(
        name="public_incident.incident_created_v2", default=None)
    updated: _Identity | None = msgspec.field(
        name="public_incident.incident_updated_v2", default=None)
    status_updated: _StatusUpdate | None = msgspec.field(
        name="public_incident.incident_status_updated_v2", default=None)

    def incident(self) -> _Identity | None:
        """The incident object of this envelope's own event type, if it is one of these."""
        if self.event_type == "public_incident.incident_created_v2":
            return self.created
        if self.event_type == "public_incident.incident_updated_v2":
            return self.updated
        if self.event_type == "public_incident.incident_status_updated_v2":
            return None if self.status_updated is None else self.status_updated.incident
        return None


_ENVELOPE = msgspec.json.Decoder(_Envelope)


def check_incident_io_body(body: bytes) -> str:
    """`check_incident_io(decode_json(body))`, the same event type or the same `PayloadError`,
    at a fraction of the cost for the usual delivery: a public incident event whose body
    `read.skippable` says a typed decoder judges as `decode_json` does. Only its event type
    and the incident's identity are read; every other body, and every body that fails here,
    goes the full way, which gives the reason."""
    if read.skippable(body):
        try:
            envelope: _Envelope | None = _ENVELOPE.decode(body)
        except msgspec.DecodeError:  # a field of another type: the full way says what
            envelope = None
        incident = None if envelope is None else envelope.incident()
        if envelope is not None and incident is not None:
            with contextlib.suppress(PayloadError):
                _identity(incident.as_dict())
                event_type: str = envelope.event_type
                return event_type
    return check_incident_io(read.decode_json(body))


def _read(payload: object, customer_fields: Sequence[str], *, full: bool
          ) -> IncidentIoEvent | None:
    """`parse_incident_io` (`full`) or only its checks (None): one path for both, so the
    endpoint refuses exactly what the job could not read."""
    if not isinstance(payload, dict):
        raise PayloadError("body is not a JSON object")
    event_type = payload.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise PayloadError("missing event_type")
    scope, _, name = event_type.partition(".")
    inner = payload.get(event_type)

    if scope in ("public_incident", "private_incident") and name in INCIDENT_EVENTS:
        if not isinstance(inner, dict):
            raise PayloadError(f"missing {event_type} object")
        if scope == "private_incident":
            private = _private(event_type, inner)
            return private if full else None
        incident = inner.get("incident") if name == "incident_status_updated_v2" else inner
        if not isinstance(incident, dict):
            raise PayloadError("incident_status_updated_v2 without an incident object")
        if not full:
            _identity(incident)
            return None
        escalation = escalation_from_incident(incident, customer_fields=customer_fields)
        return IncidentIoEvent(
            event_type=event_type,
            kind=IncidentIoKind.INCIDENT,
            incident_id=escalation.external_id,
            escalation=escalation,
        )

    reason = _ignore_reason(scope, name)
    if reason is None:
        # Unknown event types are acknowledged whatever their shape: incident.io adds types,
        # and a 400 would only make it retry for a day and then disable the endpoint.
        return IncidentIoEvent(
            event_type=event_type, kind=IncidentIoKind.IGNORED, reason="unsupported event type"
        ) if full else None
    if not isinstance(inner, dict):
        raise PayloadError(f"missing {event_type} object")
    return IncidentIoEvent(
        event_type=event_type,
        kind=IncidentIoKind.IGNORED,
        incident_id=read.text(inner.get("incident_id")),
        reason=reason,
    ) if full else None


def _identity(incident: dict[str, Any]) -> tuple[str, datetime, datetime]:
    """(id, created_at, updated_at) of an incident object: what an escalation cannot do
    without (`PayloadError` otherwise)."""
    incident_id = read.text(incident.get("id"))
    if not incident_id:
        raise PayloadError("incident has no id")
    created_at = read.timestamp(incident.get("created_at"), "created_at")
    if created_at is None:
        raise PayloadError("incident has no created_at")
    updated_at = read.timestamp(incident.get("updated_at"), "updated_at") or created_at
    return incident_id, created_at, updated_at


def escalation_from_incident(
    incident: object, *, customer_fields: Sequence[str] = CUSTOMER_FIELDS
) -> Escalation:
    """Translate an incident object (webhook payload or `GET /v2/incidents/{id}` `incident`).

    `customer_fields` names the custom field(s) that hold the customer, compared without
    regard to case; the first one present wins.
    """
    if not isinstance(incident, dict):
        raise PayloadError("incident is not an object")
    incident_id, created_at, updated_at = _identity(incident)

    fields = _custom_fields(incident.get("custom_field_entries"))
    status = _status(incident.get("incident_status"))
    links = {
        name: url
        for name, url in (
            ("incident", read.text(incident.get("permalink"))),
            ("call", read.text(incident.get("call_url"))),
        )
        if url
    }
    try:
        return Escalation(
            source=Source.INCIDENT_IO,
            external_id=incident_id,
            reference=read.text(incident.get("reference")),
            title=read.text(incident.get("name")),
            severity=read.text(read.obj(incident.get("severity")).get("name")),
            status=status,
            merged_into=_merge_target(incident) if status is Status.MERGED else "",
            customer=_customer(fields, customer_fields),
            fields=fields,
            links=links,
            # Tests, tutorials and retrospective imports never page; so does a missing mode.
            test_mode=incident.get("mode") != "standard",
            declared_by=_creator(incident.get("creator")),
            created_at=created_at,
            updated_at=updated_at,
        )
    except ValidationError as exc:
        raise PayloadError(
            f"incident does not fit an escalation: {exc.error_count()} errors"
        ) from None


def _private(event_type: str, inner: dict[str, Any]) -> IncidentIoEvent:
    # Only `{"id": ...}` is documented; accept `{"incident": {"id": ...}}` in case a status
    # update for a private incident is ever wrapped like its public twin.
    incident_id = read.text(inner.get("id")) or read.text(read.obj(inner.get("incident")).get("id"))
    if not incident_id:
        raise PayloadError("private incident event has no id")
    return IncidentIoEvent(
        event_type=event_type,
        kind=IncidentIoKind.INCIDENT,
        incident_id=incident_id,
        needs_fetch=True,
    )


def _ignore_reason(scope: str, name: str) -> str | None:
    """Why a known, non-incident event type is ignored; None for a type we do not know."""
    if scope in ("public_incident", "private_incident"):
        for prefix, reason in _IGNORED_INCIDENT_EVENTS:
            if name.startswith(prefix):
                return reason
        return None
    return _IGNORED_SCOPES.get(scope) if name else None


def _creator(creator: object) -> Person | None:
    """The person who declared the incident: `creator.user` (`{id, name, email,
    slack_user_id}`). A creator that is an API key, a workflow or an alert is no person, so
    nobody is recorded as the declarer then."""
    user = read.obj(read.obj(creator).get("user"))
    return person(chat_id=read.text(user.get("slack_user_id")), email=read.text(user.get("email")),
                  name=read.text(user.get("name")), source_id=read.text(user.get("id")))


def _status(incident_status: object) -> Status:
    category = read.text(read.obj(incident_status).get("category"))
    return STATUS_OF_CATEGORY.get(category, Status.OPEN)


def _merge_target(incident: dict[str, Any]) -> str:
    """The reference of the incident a merged one went into, when the webhook lets us tell.

    The webhook incident (WebhookIncidentV2 in incident.io's OpenAPI) has no merge-target field;
    its optional `related_incidents` lists incident references. Only when it names exactly one
    is that taken as the target; otherwise the target is unknown and the merged escalation
    keeps its own story (see `transitions._ended`).
    """
    related = incident.get("related_incidents")
    if not isinstance(related, list):
        return ""
    names = [read.text(r) or read.text(read.obj(r).get("reference")) for r in related]
    names = [n for n in names if n]
    return names[0] if len(names) == 1 else ""


def _custom_fields(entries: object) -> dict[str, str]:
    """Display name -> value text; several values are joined with ", "."""
    fields: dict[str, str] = {}
    if not isinstance(entries, list):
        return fields
    for entry in entries:
        custom_field = read.obj(read.obj(entry).get("custom_field"))
        name = read.text(custom_field.get("name"))
        if not name:
            continue
        values = read.obj(entry).get("values")
        texts = (
            [_value_text(value, read.text(custom_field.get("field_type"))) for value in values]
            if isinstance(values, list)
            else []
        )
        fields[name] = ", ".join(text for text in texts if text)
    return fields


_VALUE_ORDER: dict[str, tuple[str, ...]] = {
    "single_select": ("option", "catalog", "text", "numeric", "link"),
    "multi_select": ("option", "catalog", "text", "numeric", "link"),
    "text": ("text", "option", "catalog", "numeric", "link"),
    "numeric": ("numeric", "text", "option", "catalog", "link"),
    "link": ("link", "text", "option", "catalog", "numeric"),
}
_DEFAULT_VALUE_ORDER = ("text", "option", "catalog", "numeric", "link")


def _value_text(value: object, field_type: str) -> str:
    """The text of one value, read by the field's type first.

    A value object normally has one `value_*` key, but the published example fills all five;
    reading by field type gives the answer the incident.io UI shows (an option's label for a
    select). Catalog-backed selects carry `value_catalog_entry` instead of `value_option`.
    """
    value = read.obj(value)
    readers = {
        "text": lambda: read.text(value.get("value_text")),
        "option": lambda: read.text(read.obj(value.get("value_option")).get("value")),
        "catalog": lambda: read.text(read.obj(value.get("value_catalog_entry")).get("name")),
        "numeric": lambda: _scalar_text(value.get("value_numeric")),
        "link": lambda: read.text(value.get("value_link")),
    }
    for kind in _VALUE_ORDER.get(field_type, _DEFAULT_VALUE_ORDER):
        text = readers[kind]()
        if text:
            return text
    return ""


def _customer(fields: dict[str, str], names: Sequence[str]) -> str:
    by_folded = {name.casefold(): value for name, value in fields.items()}
    for name in names:
        value = by_folded.get(name.casefold())
        if value:
            return value
    return ""





def _scalar_text(value: object) -> str:
    """`value_numeric` is a string in the schema; accept a JSON number too, never a bool."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int | float):
        return str(value)
    return read.text(value)
