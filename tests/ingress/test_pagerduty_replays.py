"""PagerDuty V3 signs the body but no timestamp and not the `X-Webhook-Id` header, so a captured
delivery verifies forever and under any header id. Each seen attack is a test here: the
re-delivery is recognised by its signed event id, an old event is answered 2xx but recorded as
stale and acts on nothing, an older event never overwrites a newer one, and a vendor event is
on the timeline once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon.sources.pagerduty import CUSTOM_FIELDS_EVENT, INTAKE_PAGERDUTY
from daemon.store import DeliveryState
from tests.harness import Harness, base_settings, payload, running
from tests.world import CHANNEL, incident, page_event, stamp, world

INCIDENT = "PSATNITE"
DAY_S = 24 * 3600.0


def triggered(at: float, *, event_id: str = "01TRIGGER", priority: str = "P1",
              event_type: str = "incident.triggered", status: str = "triggered"
              ) -> dict[str, Any]:
    """A PagerDuty incident event from the published sample, opened and occurring at `at`."""
    sample: dict[str, Any] = json.loads(payload("pagerduty/zulip_triggered_v3.json"))
    event = sample["event"]
    event.update(id=event_id, event_type=event_type, occurred_at=stamp(at))
    event["data"].update(id=INCIDENT, status=status, created_at=stamp(at), title="Checkout down",
                         priority={"id": "PPRIO", "type": "priority_reference",
                                   "summary": priority})
    return sample


def custom_fields(at: float, exhausted: str, *, event_id: str) -> dict[str, Any]:
    """`incident.custom_field_values.updated`: every custom field of the incident, as of `at`."""
    value = {"data_type": "string", "field_type": "single_value", "id": "PFEXH",
             "name": "Support exhausted knowledge", "namespace": "incidents",
             "type": "field_value", "value": exhausted}
    return {"event": {
        "id": event_id, "event_type": CUSTOM_FIELDS_EVENT, "resource_type": "incident",
        "occurred_at": stamp(at), "agent": None, "client": None,
        "data": {"incident": {"id": INCIDENT, "type": "incident_reference"},
                 "custom_fields": [value], "changed_custom_fields": [value],
                 "type": "incident_field_values"}}}


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running(tmp_path) as h:
        yield h


# --- re-deliveries: the signed event id -------------------------------------------------------


async def test_one_signed_body_under_eight_new_webhook_ids_is_processed_once(harness: Harness
                                                                            ) -> None:
    # Seen: one signed body accepted and processed 8 times under new X-Webhook-Id headers.
    body = json.dumps(triggered(harness.clock.now())).encode()
    statuses = [(await harness.pagerduty(body, webhook_id=f"wh_forged_{n}")).status
                for n in range(8)]
    await harness.settle()
    assert statuses == [202] + [200] * 7
    assert await harness.store.count_deliveries() == 1
    [row] = await harness.escalations()
    assert (await harness.events(row.id)).count("received") == 1
    delivery = await harness.store.get_delivery(1)
    assert delivery is not None
    assert delivery.delivery_id == "01TRIGGER"  # the signed id, not the header


async def test_the_same_event_to_two_subscriptions_is_one_delivery(harness: Harness) -> None:
    # A service subscription and an account subscription both deliver the event, each under
    # its own X-Webhook-Id: it happened once.
    body = triggered(harness.clock.now())
    assert (await harness.pagerduty(body, webhook_id="wh_service_sub")).status == 202
    assert (await harness.pagerduty(body, webhook_id="wh_account_sub")).status == 200
    assert await harness.store.count_deliveries() == 1


# --- stale events: the maximum age ------------------------------------------------------------


async def test_a_signed_trigger_three_months_old_is_2xx_stale_and_asks_nobody(tmp_path: Path
                                                                             ) -> None:
    # Seen: a validly signed trigger three months old created an emergency (an S1 open for
    # months is one by the "S1 unresolved after 30 minutes" rule) and asked the SMOC.
    async with world(tmp_path) as w:
        old = triggered(w.daemon.clock.now() - 90 * DAY_S)
        response = await w.daemon.pagerduty(old)
        assert response.status == 200  # PagerDuty must get a 2xx for every signed delivery
        assert await response.json() == {"status": "stale"}
        await w.daemon.settle()
        assert await w.daemon.escalations() == []
        assert w.slack.calls_to("chat.postMessage") == []
        assert await w.daemon.work() == []
        delivery = await w.daemon.store.get_delivery(1)
        assert delivery is not None
        assert delivery.state is DeliveryState.STALE
        assert "max_event_age_s" in delivery.note
        # Replayed again: still recognised by its event id, still nothing.
        assert (await w.daemon.pagerduty(old, webhook_id="wh_again")).status == 200
        assert await w.daemon.store.count_deliveries() == 1
        assert w.daemon.metrics.registry.get_sample_value(
            "tier2gate_webhook_rejections_total", {"source": "pagerduty", "reason": "stale"}) == 2


async def test_the_default_maximum_age_is_above_pagerdutys_48_hour_retry_window(
    harness: Harness,
) -> None:
    now = harness.clock.now()
    # A delivery PagerDuty retried for its full 48 hours is still acted on...
    assert (await harness.pagerduty(triggered(now - 48 * 3600 - 60))).status == 202
    # ...one older than the 72-hour default is not.
    late = triggered(now - 73 * 3600, event_id="01LATE", event_type="incident.resolved",
                     status="resolved")
    assert (await harness.pagerduty(late)).status == 200
    await harness.settle()
    [row] = await harness.escalations()
    assert row.data["escalation"]["status"] == "open"


async def test_the_maximum_age_is_configurable(tmp_path: Path) -> None:
    settings = base_settings(pagerduty={"max_event_age_s": 3600})
    async with running(tmp_path, settings) as h:
        assert (await h.pagerduty(triggered(h.clock.now() - 2 * 3600))).status == 200
        await h.settle()
        assert await h.escalations() == []


async def test_a_stale_acknowledgement_of_a_page_is_not_recorded(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        esc_id = await _paged(w)
        [page] = w.pagerduty.pages
        ack = page_event("incident.acknowledged", page["incident_key"], page["id"],
                         event_id="ev-old-ack")
        ack["event"]["occurred_at"] = stamp(w.daemon.clock.now() - 30 * DAY_S)
        assert (await w.daemon.pagerduty(ack)).status == 200
        await w.daemon.settle()
        assert "acknowledged" not in await w.daemon.events(esc_id)


# --- ordering: per incident and per kind of fact ----------------------------------------------


async def test_a_stale_custom_field_update_does_not_turn_an_rfh_into_an_emergency(
    harness: Harness,
) -> None:
    # Seen: a stale incident.custom_field_values.updated turned an RFH into an emergency.
    now = harness.clock.now()
    assert (await harness.pagerduty(triggered(now))).status == 202
    await harness.settle()
    newer = custom_fields(now + 120, "No", event_id="01FIELDS2")
    assert (await harness.pagerduty(newer)).status == 202
    await harness.settle()
    older = custom_fields(now + 60, "Yes", event_id="01FIELDS1")  # captured earlier, sent now
    assert (await harness.pagerduty(older)).status == 202
    await harness.settle()
    [row] = await harness.escalations()
    assert row.outcome == "rfh"
    assert row.data["escalation"]["fields"] == {"Support exhausted knowledge": "No"}
    delivery = await harness.store.get_delivery(3)
    assert delivery is not None
    assert (delivery.state, delivery.note.startswith("older than")) == (
        DeliveryState.IGNORED, True)


async def test_a_newer_custom_field_update_still_applies(harness: Harness) -> None:
    now = harness.clock.now()
    await harness.pagerduty(triggered(now))
    await harness.pagerduty(custom_fields(now + 60, "No", event_id="01FIELDS1"))
    await harness.settle()
    await harness.pagerduty(custom_fields(now + 120, "Yes", event_id="01FIELDS2"))
    await harness.settle()
    [row] = await harness.escalations()
    assert row.outcome == "emergency"


async def test_an_older_incident_event_never_overwrites_a_newer_one(harness: Harness) -> None:
    now = harness.clock.now()
    resolved = triggered(now + 120, event_id="01RESOLVED", event_type="incident.resolved",
                         status="resolved")
    assert (await harness.pagerduty(resolved)).status == 202
    await harness.settle()
    await harness.pagerduty(triggered(now + 60, event_id="01OLDER"))  # the replayed trigger
    await harness.settle()
    [row] = await harness.escalations()
    assert row.data["escalation"]["status"] == "resolved"


async def test_custom_fields_and_incident_attributes_are_ordered_apart(harness: Harness
                                                                      ) -> None:
    # The custom fields at t+120 say nothing about the incident's priority: a priority change
    # at t+60 that arrives after them is still the newest priority.
    now = harness.clock.now()
    await harness.pagerduty(triggered(now, priority="P3"))
    await harness.settle()
    await harness.pagerduty(custom_fields(now + 120, "Yes", event_id="01FIELDS"))
    await harness.settle()
    raised = triggered(now + 60, event_id="01PRIORITY", event_type="incident.priority_updated",
                       priority="P1")
    await harness.pagerduty(raised)
    await harness.settle()
    [row] = await harness.escalations()
    assert row.data["escalation"]["severity"] == "P1"
    assert row.data["escalation"]["fields"] == {"Support exhausted knowledge": "Yes"}
    assert row.outcome == "emergency"


# --- timeline entries are idempotent on the vendor's event id ---------------------------------


async def _paged(w: Any) -> str:
    """Declare the Saturday-night emergency, approve it as the SMOC, return its id."""
    from daemon.sources.slack_ids import APPROVE_ACTION
    from tests.world import SMOC, button

    assert (await w.daemon.incident_io(incident())).status == 202
    await w.daemon.settle()
    [row] = await w.daemon.escalations()
    [(_channel, ts)] = [key for key, message in w.slack.messages.items()
                        if key[0] == CHANNEL and not message.thread_ts]
    await w.daemon.slack_interaction(button(row.id, SMOC, APPROVE_ACTION, ts, "1.001"))
    await w.daemon.settle()
    assert len(w.pagerduty.pages) == 1
    return str(row.id)


async def test_a_replayed_acknowledgement_is_on_the_timeline_once(tmp_path: Path) -> None:
    # Seen: a replayed incident.acknowledged added the same entry four times.
    async with world(tmp_path) as w:
        esc_id = await _paged(w)
        [page] = w.pagerduty.pages
        ack = page_event("incident.acknowledged", page["incident_key"], page["id"],
                         event_id="ev-ack")
        for n in range(4):
            assert (await w.daemon.pagerduty(ack, webhook_id=f"wh_replay_{n}")).status in (
                200, 202)
        await w.daemon.settle()
        assert (await w.daemon.events(esc_id)).count("acknowledged") == 1


async def test_one_vendor_event_stored_as_two_deliveries_is_one_timeline_entry(
    tmp_path: Path,
) -> None:
    # Deliveries stored before the event id became the delivery id (or by a replica racing
    # another) can hold one event twice: the timeline still records it once.
    async with world(tmp_path) as w:
        esc_id = await _paged(w)
        [page] = w.pagerduty.pages
        body = json.dumps(page_event("incident.acknowledged", page["incident_key"], page["id"],
                                     event_id="ev-ack")).encode()

        for header_id in ("wh_before_upgrade_1", "wh_before_upgrade_2"):
            await w.daemon.store.record_delivery("pagerduty", header_id,
                                                 "incident.acknowledged", body,
                                                 INTAKE_PAGERDUTY)
            await w.daemon.settle()
        assert (await w.daemon.events(esc_id)).count("acknowledged") == 1
        assert [m.text for m in w.slack.thread(CHANNEL, _thread_ts(w))].count(
            "Tier 2 page acknowledged by Tina Tier2.") == 1
        assert await w.daemon.dead_jobs() == []


def _thread_ts(w: Any) -> str:
    [(_channel, ts)] = [key for key, message in w.slack.messages.items()
                        if key[0] == CHANNEL and not message.thread_ts]
    return str(ts)
