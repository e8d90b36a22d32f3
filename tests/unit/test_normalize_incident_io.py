"""incident.io webhook bodies -> Escalation, from the published OpenAPI examples."""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.domain.models import Escalation, Person, Source, Status
from daemon.sources.fields import PayloadError
from daemon.sources.incident_io import (
    IncidentIoKind,
    escalation_from_incident,
    parse_incident_io,
)

PAYLOADS = Path(__file__).parents[1] / "payloads" / "incident_io"
EXAMPLE_TIME = datetime(2021, 8, 17, 13, 28, 57, 801578, tzinfo=UTC)


def load(name: str) -> dict[str, Any]:
    body = json.loads((PAYLOADS / f"openapi_example_{name}.json").read_bytes())
    assert isinstance(body, dict)
    return body


def incident_of(name: str) -> dict[str, Any]:
    """The incident object inside a public incident example, for editing."""
    body = load(name)
    inner = body[body["event_type"]]
    return copy.deepcopy(inner.get("incident", inner))


EXPECTED = Escalation(
    source=Source.INCIDENT_IO,
    external_id="01FDAG4SAP5TYPT98WGR2N7W91",
    reference="INC-123",
    title="Our database is sad",
    severity="Minor",
    status=Status.OPEN,  # the example's category is "triage" even though its name is "Closed"
    customer="",
    fields={"Affected Team": "Product"},
    links={"incident": "https://app.incident.io/incidents/123", "call": "https://zoom.us/foo"},
    test_mode=False,
    declared_by=Person(chat_id="U02AYNF2XJM", email="lisa@incident.io", name="Lisa Karlin Curtis",
                       source_id="01FCNDV6P870EA6S7TK1DSYDG0"),  # the example's creator.user
    created_at=EXAMPLE_TIME,
    updated_at=EXAMPLE_TIME,
)


@pytest.mark.parametrize(
    ("name", "event_type"),
    [
        ("public_incident_created_v2", "public_incident.incident_created_v2"),
        ("public_incident_updated_v2", "public_incident.incident_updated_v2"),
        ("public_incident_status_updated_v2", "public_incident.incident_status_updated_v2"),
    ],
)
def test_public_incident_examples(name: str, event_type: str) -> None:
    event = parse_incident_io(load(name))
    assert event.event_type == event_type
    assert event.kind is IncidentIoKind.INCIDENT
    assert event.incident_id == "01FDAG4SAP5TYPT98WGR2N7W91"
    assert event.needs_fetch is False
    assert event.reason == ""
    assert event.escalation == EXPECTED


def test_private_incident_carries_only_an_id() -> None:
    event = parse_incident_io(load("private_incident_created_v2"))
    assert event.event_type == "private_incident.incident_created_v2"
    assert event.kind is IncidentIoKind.INCIDENT
    assert event.incident_id == "abc123"
    assert event.escalation is None
    assert event.needs_fetch is True


def test_private_incident_update_needs_fetch_too() -> None:
    body: dict[str, Any] = {"event_type": "private_incident.incident_updated_v2"}
    body["private_incident.incident_updated_v2"] = {"id": "01PRIVATE"}
    event = parse_incident_io(body)
    assert (event.incident_id, event.needs_fetch, event.escalation) == ("01PRIVATE", True, None)


@pytest.mark.parametrize(
    ("name", "reason", "incident_id"),
    [
        ("public_follow_up_created_v2", "follow-ups", "01FCNDV6P870EA6S7TK1DSYDG0"),
        ("public_escalation_created_v1", "On-call escalations", ""),
        ("public_escalation_status_updated_v1", "On-call escalations", ""),
        ("public_alert_created_v1", "alerts", ""),
    ],
)
def test_non_incident_examples_are_ignored(name: str, reason: str, incident_id: str) -> None:
    body = load(name)
    event = parse_incident_io(body)
    assert event.event_type == body["event_type"]
    assert event.kind is IncidentIoKind.IGNORED
    assert reason in event.reason
    assert event.incident_id == incident_id
    assert event.escalation is None
    assert event.needs_fetch is False


@pytest.mark.parametrize(
    ("event_type", "reason"),
    [
        ("public_incident.action_created_v1", "actions"),
        ("private_incident.follow_up_updated_v2", "follow-ups"),
        ("public_incident.postmortem_document_status_updated_v1", "post-mortem"),
        ("private_incident.membership_granted_v1", "membership"),
        ("private_alert.alert_resolved_v1", "alerts"),
        ("schedule.shift_change_v1", "schedules"),
        ("status_page_incident.update_shared_v1", "status page"),
    ],
)
def test_known_event_families_are_ignored(event_type: str, reason: str) -> None:
    event = parse_incident_io({"event_type": event_type, event_type: {"id": "x"}})
    assert event.kind is IncidentIoKind.IGNORED
    assert reason in event.reason


@pytest.mark.parametrize(
    "body",
    [
        {"event_type": "public_incident.incident_created_v3", "whatever": 1},
        {"event_type": "brand_new_thing"},
        {"event_type": "public_incident.something_new_v1", "public_incident.something_new_v1": 5},
    ],
)
def test_unknown_event_types_are_ignored_whatever_their_shape(body: dict[str, Any]) -> None:
    event = parse_incident_io(body)
    assert event.kind is IncidentIoKind.IGNORED
    assert event.reason == "unsupported event type"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([], "not a JSON object"),
        ("public_incident.incident_created_v2", "not a JSON object"),
        ({}, "missing event_type"),
        ({"event_type": ""}, "missing event_type"),
        ({"event_type": 7}, "missing event_type"),
        ({"event_type": "public_incident.incident_created_v2"}, "missing"),
        (
            {
                "event_type": "public_incident.incident_created_v2",
                "public_incident.incident_created_v2": [],
            },
            "missing",
        ),
        (
            {
                "event_type": "private_incident.incident_created_v2",
                "private_incident.incident_created_v2": {},
            },
            "no id",
        ),
        (
            {
                "event_type": "public_incident.incident_status_updated_v2",
                "public_incident.incident_status_updated_v2": {"incident": "01FDAG"},
            },
            "without an incident object",
        ),
        ({"event_type": "public_incident.follow_up_created_v2"}, "missing"),
    ],
)
def test_malformed_bodies(body: object, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_incident_io(body)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": None}, "no id"),
        ({"id": ""}, "no id"),
        ({"id": 123}, "no id"),
        ({"created_at": None}, "no created_at"),
        ({"created_at": "yesterday"}, "created_at is not an ISO 8601"),
        ({"created_at": 1629206937}, "created_at is not a string"),
        ({"updated_at": "soon"}, "updated_at is not an ISO 8601"),
    ],
)
def test_incident_without_id_or_creation_time_is_malformed(
    change: dict[str, Any], reason: str
) -> None:
    incident = incident_of("public_incident_created_v2")
    incident.update(change)
    body: dict[str, Any] = {"event_type": "public_incident.incident_updated_v2"}
    body["public_incident.incident_updated_v2"] = incident
    with pytest.raises(PayloadError, match=reason):
        parse_incident_io(body)


@pytest.mark.parametrize(
    ("category", "status"),
    [
        ("triage", Status.OPEN),
        ("live", Status.OPEN),
        ("paused", Status.OPEN),
        ("learning", Status.RESOLVED),
        ("closed", Status.RESOLVED),
        ("declined", Status.WITHDRAWN),
        ("merged", Status.MERGED),
        ("canceled", Status.WITHDRAWN),
        ("something_new", Status.OPEN),
        (None, Status.OPEN),
    ],
)
def test_status_follows_the_category_not_the_name(category: str | None, status: Status) -> None:
    incident = incident_of("public_incident_updated_v2")
    incident["incident_status"]["category"] = category
    assert escalation_from_incident(incident).status is status


@pytest.mark.parametrize(
    ("mode", "test_mode"),
    [
        ("standard", False),
        ("test", True),
        ("tutorial", True),
        ("retrospective", True),
        (None, True),
    ],
)
def test_only_standard_incidents_can_page(mode: str | None, test_mode: bool) -> None:
    incident = incident_of("public_incident_created_v2")
    incident["mode"] = mode
    assert escalation_from_incident(incident).test_mode is test_mode


def _entry(name: str, field_type: str, *values: dict[str, Any]) -> dict[str, Any]:
    return {
        "custom_field": {"id": "01F", "name": name, "field_type": field_type},
        "values": list(values),
    }


def test_custom_fields_by_type_and_customer() -> None:
    incident = incident_of("public_incident_created_v2")
    incident["custom_field_entries"] = [
        _entry(
            "customer", "single_select", {"value_catalog_entry": {"id": "01C", "name": "Acme Corp"}}
        ),
        _entry(
            "Criteria",
            "multi_select",
            {"value_option": {"id": "1", "value": "Production unstable"}},
            {"value_option": {"id": "2", "value": "Rollback not possible"}},
        ),
        _entry("Notes", "text", {"value_text": "db down"}),
        _entry("Runbook", "link", {"value_link": "https://runbooks/db"}),
        _entry("Seats", "numeric", {"value_numeric": "1500"}),
        _entry("Users", "numeric", {"value_numeric": 42}),
        _entry("Empty", "text"),
        _entry("", "text", {"value_text": "nameless entries are dropped"}),
        "not an entry",
        {"custom_field": None, "values": None},
    ]
    escalation = escalation_from_incident(incident)
    assert escalation.fields == {
        "customer": "Acme Corp",
        "Criteria": "Production unstable, Rollback not possible",
        "Notes": "db down",
        "Runbook": "https://runbooks/db",
        "Seats": "1500",
        "Users": "42",
        "Empty": "",
    }
    assert escalation.customer == "Acme Corp"


def test_customer_field_names_are_configurable_in_priority_order() -> None:
    incident = incident_of("public_incident_created_v2")
    incident["custom_field_entries"] = [
        _entry("Account", "text", {"value_text": "Globex"}),
        _entry("Customer", "text", {"value_text": "Acme"}),
    ]
    assert escalation_from_incident(incident).customer == "Acme"
    named = escalation_from_incident(incident, customer_fields=("ACCOUNT", "Customer"))
    assert named.customer == "Globex"
    body: dict[str, Any] = {"event_type": "public_incident.incident_created_v2"}
    body["public_incident.incident_created_v2"] = incident
    event = parse_incident_io(body, customer_fields=("account",))
    assert event.escalation is not None
    assert event.escalation.customer == "Globex"


def test_optional_fields_may_be_absent_or_null() -> None:
    incident = {
        "id": "01MIN",
        "created_at": "2026-01-10T08:00:00Z",
        "mode": "standard",
        "severity": None,
        "incident_status": None,
        "custom_field_entries": None,
        "permalink": None,
    }
    escalation = escalation_from_incident(incident)
    assert escalation == Escalation(
        source=Source.INCIDENT_IO,
        external_id="01MIN",
        created_at=datetime(2026, 1, 10, 8, tzinfo=UTC),
        updated_at=datetime(2026, 1, 10, 8, tzinfo=UTC),
    )


def test_zone_less_timestamps_are_read_as_utc_and_offsets_kept() -> None:
    incident = incident_of("public_incident_created_v2")
    incident["created_at"] = "2026-01-10T08:00:00"
    incident["updated_at"] = "2026-01-10T10:30:00+02:00"
    escalation = escalation_from_incident(incident)
    assert escalation.created_at == datetime(2026, 1, 10, 8, tzinfo=UTC)
    assert escalation.updated_at == datetime(2026, 1, 10, 8, 30, tzinfo=UTC)


def test_api_fetch_result_has_the_webhook_shape() -> None:
    # GET /v2/incidents/{id} answers {"incident": {...}}; the caller unwraps it.
    fetched = {"incident": incident_of("public_incident_updated_v2")}
    assert escalation_from_incident(fetched["incident"]) == EXPECTED


def test_escalation_from_incident_rejects_a_non_object() -> None:
    with pytest.raises(PayloadError, match="not an object"):
        escalation_from_incident(["01FDAG"])


# --- properties -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
event_types = st.sampled_from(
    [
        "public_incident.incident_created_v2",
        "public_incident.incident_updated_v2",
        "public_incident.incident_status_updated_v2",
        "private_incident.incident_created_v2",
        "public_incident.follow_up_created_v2",
        "public_alert.alert_created_v1",
        "schedule.created_v1",
    ]
) | st.text(max_size=30)
incident_keys = st.sampled_from(
    [
        "id",
        "created_at",
        "updated_at",
        "name",
        "reference",
        "severity",
        "incident_status",
        "mode",
        "custom_field_entries",
        "permalink",
        "call_url",
        "incident",
    ]
)
timestamps = st.datetimes(timezones=st.none() | st.timezones()).map(datetime.isoformat)
incident_like = st.dictionaries(
    incident_keys, json_values | timestamps | st.just("standard"), max_size=12
)


@given(json_values)
def test_arbitrary_json_returns_or_raises_payload_error(body: object) -> None:
    with contextlib.suppress(PayloadError):
        parse_incident_io(body)


@given(event_type=event_types, inner=json_values | incident_like)
def test_arbitrary_envelopes_return_or_raise_payload_error(event_type: str, inner: object) -> None:
    try:
        event = parse_incident_io({"event_type": event_type, event_type: inner})
    except PayloadError:
        return
    assert event.event_type == event_type


@given(incident_like)
def test_arbitrary_incidents_return_or_raise_payload_error(incident: dict[str, Any]) -> None:
    try:
        escalation = escalation_from_incident(incident)
    except PayloadError:
        return
    assert escalation.external_id == incident["id"]
    assert escalation.created_at.tzinfo is not None
