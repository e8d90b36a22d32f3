"""incident.io, unlike PagerDuty, signs the delivery id and a timestamp (Standard Webhooks), so
a captured delivery cannot be replayed under a new id nor after the 5-minute window; Svix
re-signs every retry, and its updates may arrive out of order, so ordering is by the incident's
`updated_at`. These tests pin that down next to the PagerDuty ones."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemon.ingress.signatures import sign_standard_webhook
from tests.harness import INC_SECRET, Harness, running
from tests.world import incident, stamp


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running(tmp_path) as h:
        yield h


def _captured(harness: Harness, body: bytes, msg_id: str) -> dict[str, str]:
    headers = sign_standard_webhook(body, msg_id, int(harness.clock.now()), INC_SECRET)
    return {**headers, "Content-Type": "application/json"}


async def test_a_captured_delivery_under_a_new_webhook_id_is_401(harness: Harness) -> None:
    body = json.dumps(incident()).encode()
    headers = _captured(harness, body, "msg_original")
    assert (await harness.client.post("/webhooks/incident-io", data=body,
                                      headers=headers)).status == 202
    forged = {**headers, "webhook-id": "msg_forged"}  # the id is part of what is signed
    assert (await harness.client.post("/webhooks/incident-io", data=body,
                                      headers=forged)).status == 401
    assert await harness.store.count_deliveries() == 1


async def test_a_captured_delivery_is_a_duplicate_within_five_minutes_and_401_after(
    harness: Harness,
) -> None:
    body = json.dumps(incident()).encode()
    headers = _captured(harness, body, "msg_once")
    statuses = []
    for wait_s in (0, 200, 101):  # at 0 s, 200 s, then 301 s after it was signed
        harness.clock.advance(wait_s)
        response = await harness.client.post("/webhooks/incident-io", data=body, headers=headers)
        statuses.append(response.status)
    assert statuses == [202, 200, 401]
    assert await harness.store.count_deliveries() == 1


async def test_an_older_update_never_turns_an_rfh_into_an_emergency(harness: Harness) -> None:
    # The incident.io twin of the stale PagerDuty custom-field update: a re-signed older
    # delivery (a Svix retry or a manual replay) still carries its own `updated_at`.
    start = harness.clock.now()
    no = incident(exhausted=False, updated_at=stamp(start + 120),
                  event="public_incident.incident_updated_v2")
    yes = incident(exhausted=True, updated_at=stamp(start + 60),
                   event="public_incident.incident_updated_v2")
    assert (await harness.incident_io(no)).status == 202
    await harness.settle()
    assert (await harness.incident_io(yes)).status == 202
    await harness.settle()
    [row] = await harness.escalations()
    assert row.outcome == "rfh"
    assert row.data["escalation"]["fields"]["Support exhausted knowledge"] == "No"


async def test_an_older_status_update_never_reopens_a_closed_incident(harness: Harness) -> None:
    start = harness.clock.now()
    closed = incident(category="closed", exhausted=False, updated_at=stamp(start + 120),
                      event="public_incident.incident_status_updated_v2")
    live = incident(category="live", exhausted=False, updated_at=stamp(start + 60),
                    event="public_incident.incident_status_updated_v2")
    await harness.incident_io(closed)
    await harness.settle()
    await harness.incident_io(live)
    await harness.settle()
    [row] = await harness.escalations()
    assert row.data["escalation"]["status"] == "resolved"
    assert "updated" not in await harness.events(row.id)
