"""Reopened incidents, end to end over real HTTP: a resolved incident set active again is decided
again, a reopened emergency asks the SMOC again, and a retro that exists gets a note instead of
a second issue. Times are fixed to the harness clock (2026-11-21T02:05Z), never today's date."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from daemon.integrations.slack import APPROVAL_EVENT
from tests.harness import payload
from tests.world import (
    CHANNEL,
    World,
    approve,
    deliver,
    incident,
    page_event,
    world,
)

STATUS_UPDATED = "public_incident.incident_status_updated_v2"
SOURCE_SERVICE = "PSUPPORT1"


def approval_messages(w: World) -> list[str]:
    """The ts of every approval request in the channel (decided or not), oldest first."""
    return sorted(key[1] for key, message in w.slack.messages.items()
                  if key[0] == CHANNEL and not message.thread_ts and message.metadata
                  and message.metadata.get("event_type") == APPROVAL_EVENT)


async def test_incident_io_rfh_reopened_as_sev1_exhausted_asks_the_smoc_and_pages_once(
        tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await deliver(w, incident(severity="SEV3", exhausted=False))
        [row] = await w.daemon.escalations()
        assert row.state == "rfh"
        await deliver(w, incident(severity="SEV3", exhausted=False, category="closed",
                                  updated_at="2026-11-21T02:30:00Z", event=STATUS_UPDATED))
        assert approval_messages(w) == []

        # Set back to an active status as SEV1, with "Support exhausted knowledge" = Yes.
        await deliver(w, incident(severity="SEV1", exhausted=True, category="live",
                                  updated_at="2026-11-21T02:40:00Z", event=STATUS_UPDATED))
        [ts] = approval_messages(w)
        events = await w.daemon.events(row.id)
        assert events[-4:] == ["updated", "reopened", "classified", "approval_requested"]
        [reopened] = [e for e in await w.daemon.store.timeline(row.id) if e.event == "reopened"]
        assert (reopened.details["previous"], reopened.details["outcome"]) == ("rfh", "rfh")

        for n in range(2):  # a double tap on a bad connection: one decision, one page
            await approve(w, row.id, ts, f"5.00{n}")
        [page] = w.pagerduty.pages
        assert page["incident_key"] == f"tier2gate-{row.id}"
        assert (await w.daemon.events(row.id)).count("paged") == 1
        assert await w.daemon.dead_jobs() == []


async def test_an_old_live_delivery_after_closed_does_not_reopen(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await deliver(w, incident(severity="SEV3", exhausted=False))
        await deliver(w, incident(severity="SEV3", exhausted=False, category="closed",
                                  updated_at="2026-11-21T02:30:00Z", event=STATUS_UPDATED))
        # Delivered late: an update from before the close, already an S1 with the criterion.
        await deliver(w, incident(severity="SEV1", exhausted=True, category="live",
                                  updated_at="2026-11-21T02:20:00Z"))
        [row] = await w.daemon.escalations()
        assert "reopened" not in await w.daemon.events(row.id)
        assert approval_messages(w) == []


def pd_incident(event_type: str, *, priority: str, occurred_at: str, event_id: str,
                status: str = "triggered") -> dict[str, Any]:
    """A PagerDuty V3 incident event on a Support (source) service, from a published capture."""
    sample: dict[str, Any] = json.loads(payload("pagerduty/zulip_reopened_v3.json"))
    event = sample["event"]
    event.update(id=event_id, event_type=event_type, occurred_at=occurred_at)
    data = event["data"]
    data.update(id="PSRC123", status=status, incident_key="support-4242",
                created_at="2026-11-21T01:00:00Z", title="Checkout is down for Acme",
                reopened_at=occurred_at if event_type == "incident.reopened" else None)
    data["service"] = {**data["service"], "id": SOURCE_SERVICE}
    data["priority"] = {**copy.deepcopy(data["priority"]), "summary": priority}
    return sample


async def test_pagerduty_reopened_as_p1_on_a_source_service_is_decided_again(tmp_path: Path
                                                                             ) -> None:
    async with world(tmp_path) as w:
        for body in (
            pd_incident("incident.triggered", priority="P3", occurred_at="2026-11-21T02:01:00Z",
                        event_id="ev-trig"),
            pd_incident("incident.resolved", priority="P3", occurred_at="2026-11-21T02:02:00Z",
                        event_id="ev-res", status="resolved"),
        ):
            assert (await w.daemon.pagerduty(body)).status == 202
            await w.daemon.settle()
        [row] = await w.daemon.escalations()
        assert row.state == "rfh"

        # Reopened as P1: an S1 open for over 30 minutes (it was declared at 01:00).
        reopen = pd_incident("incident.reopened", priority="P1",
                             occurred_at="2026-11-21T02:04:00Z", event_id="ev-reopen")
        assert (await w.daemon.pagerduty(reopen)).status == 202
        await w.daemon.settle()
        timeline = await w.daemon.store.timeline(row.id)
        events = [e.event for e in timeline]
        assert events[-4:] == ["updated", "reopened", "classified", "approval_requested"]
        assert timeline[-2].details["outcome"] == "emergency"
        assert timeline[-2].details["severity"] == "S1"
        [ts] = approval_messages(w)
        await approve(w, row.id, ts, "6.001")
        assert len(w.pagerduty.pages) == 1

        # The same reopen delivered again changes nothing.
        assert (await w.daemon.pagerduty(reopen)).status < 300
        await w.daemon.settle()
        assert (await w.daemon.events(row.id)).count("reopened") == 1
        assert len(approval_messages(w)) == 1


@pytest.mark.parametrize("kind", ["gitlab", "github", "jira"])
async def test_a_reopened_emergency_paged_again_notes_its_retro_instead_of_a_second(
        tmp_path: Path, kind: str) -> None:
    async with world(tmp_path, kind) as w:
        # Round 1: the Saturday-night emergency, approved, paged, closed: one retro issue.
        await deliver(w, incident())
        [row] = await w.daemon.escalations()
        [first_ts] = approval_messages(w)
        await approve(w, row.id, first_ts, "1.001")
        await deliver(w, incident(category="closed", updated_at="2026-11-21T03:30:00Z",
                                  event=STATUS_UPDATED))
        [retro] = w.tracker.issues
        assert retro.notes == []

        # Reopened: the SMOC is asked again, in a new message.
        await deliver(w, incident(category="live", updated_at="2026-11-21T03:40:00Z",
                                  event=STATUS_UPDATED))
        [_first, second_ts] = approval_messages(w)
        [reopened] = [e for e in await w.daemon.store.timeline(row.id) if e.event == "reopened"]
        assert reopened.details == {"previous": "closed", "outcome": "emergency",
                                    "resolved_at": reopened.details["resolved_at"], "round": 2}
        # A click on the first round's message (already decided) decides nothing new.
        await approve(w, row.id, first_ts, "1.002")
        assert len(w.pagerduty.pages) == 1
        assert "before the incident was reopened" in w.slack.ephemerals[-1].args["text"]

        await approve(w, row.id, second_ts, "2.001")
        first_page, second_page = w.pagerduty.pages
        assert second_page["incident_key"] == f"tier2gate-{row.id}.round2"
        assert first_page["incident_key"] == f"tier2gate-{row.id}"

        # Tier 2 acknowledges the new page: the new round's thread hears about it.
        ack = page_event("incident.acknowledged", second_page["incident_key"],
                         second_page["id"], event_id="ev-ack-2")
        assert (await w.daemon.pagerduty(ack)).status == 202
        await w.daemon.settle()
        assert any("acknowledged by Tina Tier2" in m.text
                   for m in w.slack.thread(CHANNEL, second_ts))

        # Closed again: the existing retro gets a note; no second retro issue.
        closed_again = incident(category="closed", updated_at="2026-11-21T04:10:00Z",
                                event=STATUS_UPDATED)
        await deliver(w, closed_again)
        await deliver(w, closed_again)
        assert [i.number for i in w.tracker.issues] == [retro.number]
        [note] = retro.notes
        assert "reopened at" in note and "round 2" in note and "paged again" in note
        events = await w.daemon.events(row.id)
        assert events.count("retro_opened") == 1
        assert events.count("retro_noted") == 1
        assert events.count("approval_requested") == 2
        assert events.count("approved") == 2
        assert events.count("paged") == 2
        assert await w.daemon.dead_jobs() == []
