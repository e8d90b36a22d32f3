"""Validly signed PagerDuty deliveries that leave out what is optional in practice are answered
2xx (the contract: PagerDuty drops a delivery on any 4xx and disables the subscription after a
few) and still become escalations; a missing `occurred_at` reads as the time of receipt."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Harness, payload, recent_pagerduty, running

Edit = Callable[[dict[str, Any]], None]


def body(name: str, edit: Edit) -> dict[str, Any]:
    sample = recent_pagerduty(f"pagerduty/{name}")
    edit(sample["event"])
    return sample


def drop(*keys: str, within: str = "") -> Edit:
    def edit(event: dict[str, Any]) -> None:
        target = event[within] if within else event
        for key in keys:
            target.pop(key, None)
    return edit


def null(*keys: str) -> Edit:
    def edit(event: dict[str, Any]) -> None:
        event.update(dict.fromkeys(keys))
    return edit


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running(tmp_path) as h:
        yield h


@pytest.mark.parametrize(
    ("name", "edit"),
    [
        # Seen: a 2021-style capture (no data.created_at) sent without occurred_at was a 400.
        pytest.param("zulip_triggered_v3.json", drop("occurred_at"),
                     id="no-occurred_at-and-no-created_at"),
        pytest.param("zulip_triggered_v3.json", null("occurred_at"),
                     id="null-occurred_at-and-no-created_at"),
        pytest.param("devdocs_incident_priority_updated.json", drop("occurred_at"),
                     id="no-occurred_at"),
        pytest.param("devdocs_incident_priority_updated.json", null("agent", "client"),
                     id="null-agent-and-client"),
        pytest.param("devdocs_incident_priority_updated.json",
                     drop("created_at", "incident_key", within="data"),
                     id="no-created_at-no-incident_key"),
        pytest.param("devdocs_incident_priority_updated.json",
                     drop("agent", "client", "resource_type"), id="no-agent-client-resource"),
    ],
)
async def test_optional_fields_missing_is_still_an_escalation(harness: Harness, name: str,
                                                              edit: Edit) -> None:
    received_at = harness.clock.now()
    response = await harness.pagerduty(body(name, edit))
    assert response.status == 202, await response.text()
    await harness.settle()
    [row] = await harness.escalations()
    # This harness has no Slack, so only the intake is ours to judge.
    assert [job for job in await harness.dead_jobs() if job.startswith("intake")] == []
    assert (await harness.events(row.id))[:2] == ["received", "classified"]
    if name.startswith("zulip"):  # no timestamp at all: the incident is as old as its receipt
        assert row.opened_at == received_at


async def test_a_later_event_without_occurred_at_is_not_taken_for_an_old_one(
    harness: Harness,
) -> None:
    def resolve_without_a_time(event: dict[str, Any]) -> None:
        del event["occurred_at"]
        event.update(id="01RESOLVEDNOTIME", event_type="incident.resolved")
        event["data"]["status"] = "resolved"

    triggered = body("zulip_triggered_v3.json", lambda event: None)
    resolved = body("zulip_triggered_v3.json", resolve_without_a_time)
    assert (await harness.pagerduty(triggered)).status == 202
    await harness.settle()
    harness.clock.advance(60)
    assert (await harness.pagerduty(resolved)).status == 202
    await harness.settle()
    [row] = await harness.escalations()
    assert row.data["escalation"]["status"] == "resolved"


async def test_custom_fields_without_occurred_at_are_merged(harness: Harness) -> None:
    triggered = body("devdocs_incident_priority_updated.json", lambda event: None)
    assert (await harness.pagerduty(triggered)).status == 202
    await harness.settle()
    data = json.loads(payload("pagerduty/devdocs_incident_field_values_data_fragment.json"))
    data["incident"]["id"] = triggered["event"]["data"]["id"]
    fields = {"event": {"id": "01FIELDSNOTIME", "resource_type": "incident", "agent": None,
                        "event_type": "incident.custom_field_values.updated", "client": None,
                        "data": data}}
    harness.clock.advance(60)
    assert (await harness.pagerduty(fields)).status == 202
    await harness.settle()
    [row] = await harness.escalations()
    assert row.data["escalation"]["fields"] == {"environment": "production", "region": "US"}
