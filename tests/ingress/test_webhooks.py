"""Intake over HTTP: verified vendor webhooks become escalations; everything else is refused
with the contract's status code and leaves nothing behind."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from daemon.store import DeliveryState
from tests.harness import INC_SECRET, PD_SECRET, Harness, payload, recent_pagerduty, running

INC_CREATED = "incident_io/openapi_example_public_incident_created_v2.json"
PD_TRIGGERED = "pagerduty/zulip_triggered_v3.json"


@pytest.fixture
async def harness(tmp_path: Path) -> Any:
    async with running(tmp_path) as h:
        yield h


async def test_a_signed_incident_io_incident_becomes_an_escalation(harness: Harness) -> None:
    response = await harness.incident_io(payload(INC_CREATED))
    assert (response.status, await response.json()) == (202, {"status": "accepted"})
    await harness.settle()
    [row] = await harness.escalations()
    assert (row.source, row.external_id) == ("incident_io", "01FDAG4SAP5TYPT98WGR2N7W91")
    escalation = row.data["escalation"]
    assert (escalation["reference"], escalation["title"], escalation["severity"]) == (
        "INC-123", "Our database is sad", "Minor")
    assert escalation["links"]["incident"] == "https://app.incident.io/incidents/123"
    events = await harness.events(row.id)
    assert events[:2] == ["received", "classified"]
    assert row.outcome == "rfh"


async def test_a_signed_pagerduty_incident_becomes_an_escalation(harness: Harness) -> None:
    response = await harness.pagerduty(recent_pagerduty(PD_TRIGGERED))
    assert response.status == 202
    await harness.settle()
    [row] = await harness.escalations()
    assert (row.source, row.external_id) == ("pagerduty", "PFQZPSY")
    assert row.data["escalation"]["title"] == "Test Incident 3"
    assert row.data["escalation"]["reference"] == "#9"


async def test_the_same_delivery_five_times_is_one_delivery_and_one_entry(harness: Harness
                                                                          ) -> None:
    statuses = [(await harness.incident_io(payload(INC_CREATED), msg_id="msg_same")).status
                for _ in range(5)]
    pd = [(await harness.pagerduty(recent_pagerduty(PD_TRIGGERED), webhook_id="wh_same")).status
          for _ in range(5)]
    assert statuses == [202, 200, 200, 200, 200]
    assert pd == [202, 200, 200, 200, 200]
    await harness.settle()
    assert await harness.store.count_deliveries() == 2
    for row in await harness.escalations():
        assert (await harness.events(row.id)).count("received") == 1


async def test_an_update_to_a_known_incident_appends_to_its_timeline(harness: Harness) -> None:
    created = json.loads(payload(INC_CREATED))
    await harness.incident_io(created)
    await harness.settle()
    inner = created["public_incident.incident_created_v2"]
    updated = {"event_type": "public_incident.incident_updated_v2",
               "public_incident.incident_updated_v2": {
                   **inner, "name": "Our database is very sad",
                   "updated_at": "2021-08-17T14:00:00Z"}}
    await harness.incident_io(updated)
    await harness.settle()
    [row] = await harness.escalations()
    assert row.data["escalation"]["title"] == "Our database is very sad"
    timeline = await harness.store.timeline(row.id)
    [update] = [e for e in timeline if e.event == "updated"]
    assert update.details == {"title": "Our database is very sad"}


async def test_an_older_update_delivered_late_changes_nothing(harness: Harness) -> None:
    created = json.loads(payload(INC_CREATED))
    inner = created["public_incident.incident_created_v2"]
    newer = {**created, "public_incident.incident_created_v2": {
        **inner, "name": "newest title", "updated_at": "2021-08-17T15:00:00Z"}}
    await harness.incident_io(newer)
    await harness.settle()
    await harness.incident_io(created)  # the original, older state arrives second
    await harness.settle()
    [row] = await harness.escalations()
    assert row.data["escalation"]["title"] == "newest title"
    assert "updated" not in await harness.events(row.id)


@pytest.mark.parametrize("name", [
    "pagerduty/zulip_resolved_v3.json", "pagerduty/devdocs_incident_priority_updated.json",
])
async def test_every_validly_signed_pagerduty_delivery_is_answered_2xx(harness: Harness,
                                                                       name: str) -> None:
    assert (await harness.pagerduty(recent_pagerduty(name))).status == 202


@pytest.mark.parametrize("name", [
    "pagerduty/zulip_resolved_v3.json", "pagerduty/devdocs_incident_priority_updated.json",
])
async def test_a_years_old_pagerduty_sample_is_stale_and_still_2xx(harness: Harness,
                                                                  name: str) -> None:
    response = await harness.pagerduty(payload(name))
    assert (response.status, await response.json()) == (200, {"status": "stale"})


async def test_a_pagey_ping_is_recorded_and_not_processed(harness: Harness) -> None:
    ping = {"event": {"id": "01PING", "event_type": "pagey.ping", "resource_type": "pagey",
                      "occurred_at": "2026-11-21T03:00:00Z", "agent": None, "client": None,
                      "data": {"message": "Hello from your friend Pagey!", "type": "ping"}}}
    assert (await harness.pagerduty(ping)).status == 202
    await harness.settle()
    assert await harness.store.count_deliveries() == 1
    assert await harness.escalations() == []
    delivery = await harness.store.get_delivery(1)
    assert delivery is not None
    assert delivery.state == "ignored"


async def test_follow_ups_are_ignored_explicitly(harness: Harness) -> None:
    body = payload("incident_io/openapi_example_public_follow_up_created_v2.json")
    assert (await harness.incident_io(body)).status == 202
    await harness.settle()
    assert await harness.escalations() == []


async def _nothing_stored(harness: Harness) -> None:
    assert await harness.store.count_deliveries() == 0
    assert await harness.work() == []


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "missing"),
    ({"X-PagerDuty-Signature": "v1=" + "0" * 64}, "no matching"),
    ({"X-PagerDuty-Signature": "v2=abc"}, "no v1"),
])
async def test_bad_pagerduty_signatures_are_401_and_store_nothing(
    harness: Harness, headers: dict[str, str], reason: str
) -> None:
    with capture_logs() as logs:
        response = await harness.client.post(
            "/webhooks/pagerduty", data=payload(PD_TRIGGERED),
            headers={"Content-Type": "application/json", **headers})
    assert response.status == 401
    assert reason in (await response.json())["error"]
    await _nothing_stored(harness)
    assert PD_SECRET not in repr(logs)


async def test_a_pagerduty_delivery_signed_with_another_secret_is_401(harness: Harness) -> None:
    response = await harness.pagerduty(payload(PD_TRIGGERED), secret="another-secret")
    assert response.status == 401
    await _nothing_stored(harness)


@pytest.mark.parametrize("skew_s", [-301, 301])
async def test_stale_or_future_incident_io_timestamps_are_401(harness: Harness, skew_s: int
                                                              ) -> None:
    response = await harness.incident_io(payload(INC_CREATED),
                                         timestamp=int(harness.clock.now()) + skew_s)
    assert response.status == 401
    await _nothing_stored(harness)


async def test_incident_io_with_a_wrong_secret_or_no_headers_is_401(harness: Harness) -> None:
    wrong = "whsec_" + "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA=="
    assert (await harness.incident_io(payload(INC_CREATED), secret=wrong)).status == 401
    bare = await harness.client.post("/webhooks/incident-io", data=payload(INC_CREATED),
                                     headers={"Content-Type": "application/json"})
    assert bare.status == 401
    await _nothing_stored(harness)


async def test_malformed_json_is_400_after_a_valid_signature(harness: Harness) -> None:
    assert (await harness.pagerduty(b'{"event": ')).status == 400
    assert (await harness.incident_io(b"not json")).status == 400
    assert (await harness.pagerduty({"event": {"event_type": "x"}})).status == 400
    await _nothing_stored(harness)


async def test_a_2_mib_body_is_413(harness: Harness) -> None:
    big = b'{"event": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    for path in ("/webhooks/pagerduty", "/webhooks/incident-io"):
        response = await harness.client.post(path, data=io.BytesIO(big),
                                             headers={"Content-Type": "application/json"})
        assert response.status == 413
        assert "limit" in (await response.json())["error"]
    await _nothing_stored(harness)


async def test_the_wrong_content_type_is_415(harness: Harness) -> None:
    response = await harness.client.post("/webhooks/pagerduty", data=payload(PD_TRIGGERED),
                                         headers={"Content-Type": "text/plain"})
    assert response.status == 415
    await _nothing_stored(harness)


async def test_rejections_never_log_a_secret(harness: Harness) -> None:
    with capture_logs() as logs:
        await harness.pagerduty(payload(PD_TRIGGERED), secret="nope")
        await harness.incident_io(payload(INC_CREATED), secret="whsec_bm9wZW5vcGVub3Blbm9wZQ==")
        await harness.incident_io(payload(INC_CREATED))
        await harness.settle()
    text = repr(logs)
    assert PD_SECRET not in text
    assert INC_SECRET not in text
    assert INC_SECRET.removeprefix("whsec_") not in text


async def test_a_private_incident_without_an_api_token_is_recorded_as_failed(
    harness: Harness,
) -> None:
    body = payload("incident_io/openapi_example_private_incident_created_v2.json")
    assert (await harness.incident_io(body)).status == 202
    await harness.settle()
    assert await harness.escalations() == []
    delivery = await harness.store.get_delivery(1)
    assert delivery is not None
    assert delivery.state is DeliveryState.FAILED
    assert "incident_io.api_token" in delivery.note
    assert await harness.dead_jobs() == []  # no Slack here, so no notice job either


async def test_with_an_api_token_the_latest_incident_is_fetched(tmp_path: Path) -> None:
    from daemon.standins.incident_io import FakeIncidentIo
    from tests.harness import base_settings

    private = json.loads(payload("incident_io/openapi_example_private_incident_created_v2.json"))
    incident_id = private["private_incident.incident_created_v2"]["id"]
    latest = json.loads(payload(INC_CREATED))["public_incident.incident_created_v2"]
    latest = {**latest, "id": incident_id, "name": "Fetched from the API"}
    async with FakeIncidentIo(token="inc-RECOGNISABLE-token") as api:
        api.incidents[incident_id] = latest
        settings = base_settings(incident_io={"api_token": "inc-RECOGNISABLE-token",
                                              "api_url": api.api_url})
        async with running(tmp_path, settings) as h:
            assert (await h.incident_io(private)).status == 202
            await h.settle()
            [row] = await h.escalations()
            assert await h.dead_jobs() == []
    assert (row.external_id, row.data["escalation"]["title"]) == (
        incident_id, "Fetched from the API")
    [(path, headers)] = api.requests
    assert path == f"/v2/incidents/{incident_id}"
    assert headers["Authorization"] == "Bearer inc-RECOGNISABLE-token"
