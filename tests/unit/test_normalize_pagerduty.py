"""PagerDuty V3 webhook bodies -> Escalation, from the docs example and zulip's captures."""

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
from daemon.sources.pagerduty import PagerDutyIncident, PagerDutyKind, parse_pagerduty

PAYLOADS = Path(__file__).parents[1] / "payloads" / "pagerduty"


def load(name: str) -> dict[str, Any]:
    body = json.loads((PAYLOADS / name).read_bytes())
    assert isinstance(body, dict)
    return body


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


RECEIVED = at("2026-04-01T02:25:00")  # when the delivery reached us; stands in for occurred_at


def test_docs_priority_updated_example() -> None:
    event = parse_pagerduty(load("devdocs_incident_priority_updated.json"), received_at=RECEIVED)
    assert event.event_id == "5ac64822-4adc-4fda-ade0-410becf0de4f"
    assert event.event_type == "incident.priority_updated"
    assert event.resource_type == "incident"
    assert event.occurred_at == at("2020-10-02T18:45:22.169")
    assert event.agent == "Tenex Engineer"
    assert event.kind is PagerDutyKind.INCIDENT
    assert event.incident_id == "PGR0VU2"
    assert event.incident == PagerDutyIncident(
        id="PGR0VU2",
        service_id="PF9KMXH",
        status="triggered",
        incident_key="d3640fbd41094207a1c11e58e46b1662",
        html_url="https://acme.pagerduty.com/incidents/PGR0VU2",
        title="A little bump in the road",
        number=2,
        urgency="high",
        priority="P1",
        assignees=("User 123",),
        assigned=(("PTUXL6G", "User 123"),),  # the user reference's id: whose time zone counts
    )
    assert event.agent_id == "PLH1HKV"
    assert event.escalation == Escalation(
        source=Source.PAGERDUTY,
        external_id="PGR0VU2",
        reference="#2",
        title="A little bump in the road",
        severity="P1",
        status=Status.OPEN,
        links={
            "incident": "https://acme.pagerduty.com/incidents/PGR0VU2",
            "call": "https://example.com",
        },
        origin="PF9KMXH",  # the service it was declared on: recognises its Tier 1 team
        created_at=at("2020-04-09T15:16:27"),
        updated_at=at("2020-10-02T18:45:22.169"),
    )
    assert event.fields == {}
    assert event.reason == ""


# (file, event id, type, incident id, number, title, status, priority, urgency, key, assignees,
#  created_at, occurred_at)
ZULIP = [
    (
        "zulip_triggered_v3.json",
        "01BZYIL05THJDFF2Y08X9SVMTU",
        "incident.triggered",
        "PFQZPSY",
        9,
        "Test Incident 3",
        "triggered",
        "",
        "high",
        "",
        ("PIG 208",),
        None,  # 2021 capture: no created_at, so occurred_at stands in
        "2021-06-04T13:35:29.781",
    ),
    (
        "zulip_escalate_v3.json",
        "01GI0JWUU28G8XE5M6IIT4BZ39",
        "incident.escalated",
        "Q3B15VLMF3ASBD",
        5,
        "Critical: Checkout API High Latency",
        "triggered",
        "P1",
        "high",
        "d387d7bd2e0a4294a5307339dfe1669a",
        ("Harsh Santwani",),
        "2026-04-01T02:07:30",
        "2026-04-01T02:08:04.642",
    ),
    (
        "zulip_priority_updated_v3.json",
        "01GI0KJAEAC3CFEOFSC8BIJF3O",
        "incident.priority_updated",
        "Q3B15VLMF3ASBD",
        5,
        "Critical: Checkout API High Latency",
        "triggered",
        "P2",
        "high",
        "d387d7bd2e0a4294a5307339dfe1669a",
        ("Harsh Santwani",),
        "2026-04-01T02:07:30",
        "2026-04-01T02:15:36.315",
    ),
    (
        "zulip_delegated_v3.json",
        "01GI0KCK1VJGU2A90B814E1RF0",
        "incident.delegated",
        "Q3B15VLMF3ASBD",
        5,
        "Critical: Checkout API High Latency",
        "triggered",
        "P1",
        "high",
        "d387d7bd2e0a4294a5307339dfe1669a",
        ("Harsh Santwani",),
        "2026-04-01T02:07:30",
        "2026-04-01T02:13:20.295",
    ),
    (
        "zulip_reassigned_v3.json",
        "01BZY282OVDQMFPDC3VB98DR1L",
        "incident.reassigned",
        "PIQUG8X",
        3,
        "Test Incident",
        "triggered",
        "",
        "high",
        "",
        ("Test User",),
        None,
        "2021-06-04T10:17:54.838",
    ),
    (
        "zulip_reopened_v3.json",
        "01GI0KHLHVH4YZ44BJY1VLT6F2",
        "incident.reopened",
        "Q05XJA8GDXGOB3",
        4,
        "Test Incident 2",
        "triggered",
        "P3",
        "low",
        "07261e18031d41268a16c774c1892cae",
        ("Harsh Santwani",),
        "2026-03-30T13:37:07",
        "2026-04-01T02:15:02.274",
    ),
    (
        "zulip_resolved_v3.json",
        "01BZYH1JJY09P9LEIST8HG2PMN",
        "incident.resolved",
        "PCPZE64",
        6,
        "Test Incident",
        "resolved",
        "",
        "high",
        "",
        (),  # assignees are emptied on resolve
        None,
        "2021-06-04T13:16:53.816",
    ),
    (
        "zulip_unacknowledged_v3.json",
        "01BZYK5B3WC0QI62S87MJX7FCD",
        "incident.unacknowledged",
        "PQ1K5C8",
        10,
        "Test Incident",
        "triggered",
        "",
        "high",
        "",
        ("PIG 208",),
        None,
        "2021-06-04T13:54:23.185",
    ),
]


@pytest.mark.parametrize(
    (
        "name",
        "event_id",
        "event_type",
        "incident_id",
        "number",
        "title",
        "status",
        "priority",
        "urgency",
        "incident_key",
        "assignees",
        "created_at",
        "occurred_at",
    ),
    ZULIP,
)
def test_zulip_incident_captures(
    name: str,
    event_id: str,
    event_type: str,
    incident_id: str,
    number: int,
    title: str,
    status: str,
    priority: str,
    urgency: str,
    incident_key: str,
    assignees: tuple[str, ...],
    created_at: str | None,
    occurred_at: str,
) -> None:
    body = load(name)
    event = parse_pagerduty(body, received_at=RECEIVED)
    data = body["event"]["data"]
    assert (event.event_id, event.event_type, event.kind) == (
        event_id,
        event_type,
        PagerDutyKind.INCIDENT,
    )
    assert event.agent == body["event"]["agent"]["summary"]
    assert event.occurred_at == at(occurred_at)
    assert event.incident == PagerDutyIncident(
        id=incident_id,
        service_id=data["service"]["id"],
        status=status,
        incident_key=incident_key,
        html_url=data["html_url"],
        title=title,
        number=number,
        urgency=urgency,
        priority=priority,
        assignees=assignees,
        assigned=tuple((a["id"], a["summary"]) for a in data.get("assignees") or ()),
    )
    assert event.agent_id == body["event"]["agent"]["id"]
    assert event.escalation == Escalation(
        source=Source.PAGERDUTY,
        external_id=incident_id,
        reference=f"#{number}",
        title=title,
        severity=priority,
        status=Status.RESOLVED if event_type == "incident.resolved" else Status.OPEN,
        links={"incident": data["html_url"]},
        # Only the user who triggered the incident declared it; later agents acted on it.
        declared_by=Person(name=body["event"]["agent"]["summary"],
                           source_id=body["event"]["agent"]["id"])
        if event_type == "incident.triggered" else None,
        origin=data["service"]["id"],
        created_at=at(created_at or occurred_at),
        updated_at=at(occurred_at),
    )


def test_status_update_published_references_the_incident_but_is_ignored() -> None:
    event = parse_pagerduty(load("zulip_status_updated_v3.json"), received_at=RECEIVED)
    assert event.event_type == "incident.status_update_published"
    assert event.kind is PagerDutyKind.IGNORED
    assert event.incident_id == "Q3B15VLMF3ASBD"
    assert event.escalation is None
    assert event.incident is None
    assert event.reason == "event carries no incident state"


def envelope(event_type: str, data: object, **event: object) -> dict[str, Any]:
    return {
        "event": {
            "id": "01TESTEVENT",
            "event_type": event_type,
            "resource_type": event_type.partition(".")[0],
            "occurred_at": "2026-04-01T02:20:00.000Z",
            "agent": None,
            "client": None,
            "data": data,
            **event,
        }
    }


def test_custom_field_values_updated_from_the_docs_fragment() -> None:
    # The docs publish only `data` for this event; the envelope is ours.
    body = envelope(
        "incident.custom_field_values.updated",
        load("devdocs_incident_field_values_data_fragment.json"),
    )
    event = parse_pagerduty(body, received_at=RECEIVED)
    assert event.kind is PagerDutyKind.CUSTOM_FIELDS
    assert event.incident_id == "PBAZLIU"
    assert event.fields == {"environment": "production", "region": "US"}
    assert event.changed_fields == ("environment",)
    assert event.escalation is None
    assert event.agent == ""  # agent null: automation


def test_custom_field_values_are_text() -> None:
    data = {
        "type": "incident_field_values",
        "incident": {"id": "PBAZLIU", "type": "incident_reference"},
        "custom_fields": [
            {"name": "production_unstable", "value": True},
            {"name": "rollback_possible", "value": False},
            {"name": "customer", "value": None},
            {"name": "seats", "value": 1500},
            {"name": "ratio", "value": 0.25},
            {"name": "regions", "value": ["EU", "US"]},
            {"name": "blob", "value": {"b": 1, "a": 2}},
            {"name": "", "value": "nameless entries are dropped"},
            "not a field",
        ],
        "changed_custom_fields": None,
    }
    event = parse_pagerduty(envelope("incident.custom_field_values.updated", data),
                            received_at=RECEIVED)
    assert event.fields == {
        "production_unstable": "true",
        "rollback_possible": "false",
        "customer": "",
        "seats": "1500",
        "ratio": "0.25",
        "regions": "EU, US",
        "blob": '{"a": 2, "b": 1}',
    }
    assert event.changed_fields == ()


@pytest.mark.parametrize(
    ("event_type", "data", "reason"),
    [
        ("pagey.ping", {"message": "Hello from your friend Pagey!", "type": "ping"}, "ping"),
        ("service.updated", {"id": "PSVC", "type": "service"}, "service changes"),
        ("service.custom_field_values.updated", {"type": "service_field_values"}, "service"),
        ("incident.annotated", {"type": "incident_note", "incident": {"id": "PX"}}, "no incident"),
        ("incident.triggered", {"type": "something_else", "id": "PX"}, "no incident"),
        ("incident.workflow.started", None, "no incident"),
        ("brand.new", {"id": "X"}, "unsupported event type"),
    ],
)
def test_other_events_are_ignored(event_type: str, data: object, reason: str) -> None:
    event = parse_pagerduty(envelope(event_type, data, occurred_at="not a time"),
                            received_at=RECEIVED)
    assert event.kind is PagerDutyKind.IGNORED
    assert reason in event.reason
    assert event.escalation is None
    assert event.occurred_at == RECEIVED  # unreadable, but not worth a 400 for an ignored event


def test_ping_keeps_envelope_facts() -> None:
    body = envelope("pagey.ping", {"message": "Hello from your friend Pagey!", "type": "ping"})
    del body["event"]["resource_type"]
    event = parse_pagerduty(body, received_at=RECEIVED)
    assert (event.event_id, event.resource_type) == ("01TESTEVENT", "pagey")
    assert event.occurred_at == at("2026-04-01T02:20:00")


def test_defensive_incident_parsing() -> None:
    body = load("devdocs_incident_priority_updated.json")
    data = body["event"]["data"]
    data["conference_bridge"] = {"conference_number": 1000, "conference_url": None}
    data["priority"] = None
    data["assignees"] = [None, {"summary": None}, {"summary": "Only Me"}]
    data["number"] = True  # a bool is not a number
    data["service"] = "PF9KMXH"
    del data["incident_key"]
    body["event"]["agent"] = None
    event = parse_pagerduty(body, received_at=RECEIVED)
    assert event.agent == ""
    assert event.incident is not None
    assert event.incident.assignees == ("Only Me",)
    assert (event.incident.number, event.incident.service_id, event.incident.incident_key) == (
        None,
        "",
        "",
    )
    assert event.escalation is not None
    assert event.escalation.reference == ""
    assert event.escalation.severity == ""
    assert event.escalation.links == {"incident": "https://acme.pagerduty.com/incidents/PGR0VU2"}


@pytest.mark.parametrize("missing", ["absent", "null"])
def test_the_time_of_receipt_stands_in_when_occurred_at_is_missing(missing: str) -> None:
    body = load("devdocs_incident_priority_updated.json")
    if missing == "absent":
        del body["event"]["occurred_at"]
    else:
        body["event"]["occurred_at"] = None
    event = parse_pagerduty(body, received_at=RECEIVED)
    assert event.occurred_at == RECEIVED
    assert event.escalation is not None
    assert event.escalation.created_at == at("2020-04-09T15:16:27")
    # Newer than anything applied before it, so a resolve without a time is not dropped.
    assert event.escalation.updated_at == RECEIVED


def test_without_any_timestamp_the_incident_was_created_when_received() -> None:
    body = load("zulip_triggered_v3.json")  # a 2021 capture: no data.created_at
    del body["event"]["occurred_at"]
    event = parse_pagerduty(body, received_at=RECEIVED)
    assert event.escalation is not None
    assert (event.escalation.created_at, event.escalation.updated_at) == (RECEIVED, RECEIVED)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([], "not a JSON object"),
        (None, "not a JSON object"),
        ({}, "missing event object"),
        ({"event": []}, "missing event object"),
        ({"event": {"event_type": "incident.triggered"}}, "missing event.id"),
        ({"event": {"id": "X", "event_type": ""}}, "missing event.event_type"),
        ({"event": {"id": 5, "event_type": "pagey.ping"}}, "missing event.id"),
        (envelope("incident.triggered", {"type": "incident"}), "without data.id"),
        (
            envelope("incident.triggered", {"type": "incident", "id": "P1"}, occurred_at="later"),
            "occurred_at is not an ISO 8601",
        ),
        (
            envelope("incident.triggered", {"type": "incident", "id": "P1", "created_at": 1}),
            "created_at is not a string",
        ),
        (
            envelope("incident.custom_field_values.updated", {"custom_fields": []}),
            "without data.incident.id",
        ),
    ],
)
def test_malformed_bodies(body: object, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_pagerduty(body, received_at=RECEIVED)


def test_parsing_does_not_mutate_the_payload() -> None:
    body = load("zulip_resolved_v3.json")
    before = copy.deepcopy(body)
    parse_pagerduty(body, received_at=RECEIVED)
    assert body == before


# --- properties -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
timestamps = st.datetimes(timezones=st.none() | st.timezones()).map(datetime.isoformat)
event_types = st.sampled_from(
    [
        "incident.triggered",
        "incident.resolved",
        "incident.custom_field_values.updated",
        "pagey.ping",
    ]
) | st.text(max_size=30)
data_like = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["incident", "incident_field_values"]) | json_values,
        "id": st.text(max_size=10) | json_values,
        "number": st.integers() | json_values,
        "status": st.just("resolved") | json_values,
        "created_at": timestamps | json_values,
        "priority": json_values,
        "service": json_values,
        "assignees": json_values,
        "conference_bridge": json_values,
        "incident": st.fixed_dictionaries({"id": st.text(min_size=1, max_size=5)}) | json_values,
        "custom_fields": st.lists(
            st.fixed_dictionaries({"name": st.text(max_size=10), "value": json_values}),
            max_size=3,
        )
        | json_values,
    },
)
event_like = st.fixed_dictionaries(
    {"id": st.text(max_size=10) | json_values, "event_type": event_types | json_values},
    optional={
        "occurred_at": timestamps | json_values,
        "agent": json_values,
        "resource_type": json_values,
        "data": data_like | json_values,
    },
)


@given(json_values)
def test_arbitrary_json_returns_or_raises_payload_error(body: object) -> None:
    with contextlib.suppress(PayloadError):
        parse_pagerduty(body, received_at=RECEIVED)


@given(event_like)
def test_arbitrary_events_return_or_raise_payload_error(event: dict[str, Any]) -> None:
    try:
        parsed = parse_pagerduty({"event": event}, received_at=RECEIVED)
    except PayloadError:
        return
    assert parsed.event_id == event["id"]
    if parsed.escalation is not None:
        assert parsed.escalation.external_id == parsed.incident_id
        assert parsed.escalation.updated_at.tzinfo is not None
