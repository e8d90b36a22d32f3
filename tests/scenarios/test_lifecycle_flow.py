"""The source incident's whole lifecycle and an approval message that tells the truth, end to
end over real HTTP against the stand-ins (issue 13, deliverables 1 and 2). Each test is one
situation seen in the field. Times follow the harness clock (2026-11-21T02:05Z), never today's
date."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from daemon.integrations.slack import APPROVAL_EVENT
from daemon.sources.slack_ids import APPROVE_ACTION
from daemon.standins.faults import FaultPlan
from daemon.standins.pagerduty import FakePagerDuty
from daemon.standins.slack import FakeSlack, Message
from tests.harness import payload, running
from tests.support import eventually
from tests.world import (
    CHANNEL,
    PD_TOKEN,
    SLACK_TOKEN,
    SMOC,
    SMOC_EMAIL,
    SMOC_SCHEDULE,
    TIER2_SERVICE,
    World,
    approve,
    button,
    deliver,
    incident,
    settings_for,
    tracker_for,
    world,
)

STATUS_UPDATED = "public_incident.incident_status_updated_v2"
UPDATED = "public_incident.incident_updated_v2"
SOURCE_SERVICE = "PSUPPORT1"


def approval_messages(w: World) -> list[Message]:
    """Every approval request in the channel, oldest first."""
    return sorted((m for (c, _ts), m in w.slack.messages.items()
                   if c == CHANNEL and not m.thread_ts and m.metadata
                   and m.metadata.get("event_type") == APPROVAL_EVENT), key=lambda m: m.ts)


def escalation_of(message: Message) -> str:
    """The escalation id an approval request carries in its Slack message metadata."""
    assert message.metadata is not None
    escalation_id = message.metadata["event_payload"]["escalation_id"]
    assert isinstance(escalation_id, str)
    return escalation_id


def has_buttons(message: Message) -> bool:
    return APPROVE_ACTION in str(message.blocks)


def named(body: dict[str, Any], *, reference: str, related: list[str] | None = None
          ) -> dict[str, Any]:
    """`body` (from `incident`) with its own reference and, for a merge, the related incidents."""
    event = body["event_type"]
    inner = body[event]["incident"] if event == STATUS_UPDATED else body[event]
    inner["reference"] = reference
    inner["related_incidents"] = related or []
    return body


async def test_an_incident_closed_before_a_decision_is_no_longer_asked_for(tmp_path: Path
                                                                          ) -> None:
    async with world(tmp_path) as w:
        await deliver(w, incident())
        [message] = approval_messages(w)
        assert has_buttons(message)

        await deliver(w, incident(category="closed", updated_at="2026-11-21T02:10:00Z",
                                  event=STATUS_UPDATED))
        [message] = approval_messages(w)
        assert not has_buttons(message)
        assert "needs approval" not in message.text
        assert "resolved before a decision" in str(message.blocks)
        assert w.pagerduty.pages == []


class HeldPosts(FaultPlan):
    """Slack that holds `chat.postMessage` until released: an approval post in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        if request.path.endswith("chat.postMessage") and not self.release.is_set():
            self.holding.set()
            await self.release.wait()
        return await handler(request)


@asynccontextmanager
async def held_world(tmp_path: Path, held: HeldPosts) -> AsyncIterator[World]:
    """`tests.world.world` with a Slack whose posts wait for `held.release`."""
    async with AsyncExitStack() as stack:
        slack = await stack.enter_async_context(
            FakeSlack(token=SLACK_TOKEN, faults=held, users_by_email={SMOC_EMAIL: SMOC}))
        pagerduty = await stack.enter_async_context(
            FakePagerDuty(token=PD_TOKEN, ca_file=tmp_path / "pd-ca.pem"))
        pagerduty.set_oncall(SMOC_SCHEDULE, "PSMOCUSER", SMOC_EMAIL)
        tracker = tracker_for("gitlab")
        await tracker.start()
        stack.push_async_callback(tracker.close)
        settings = settings_for(slack, pagerduty, tracker, "gitlab")
        daemon = await stack.enter_async_context(running(tmp_path, settings))
        yield World(daemon, slack, pagerduty, tracker)


async def test_an_s1_downgraded_while_its_approval_post_was_in_flight_shows_no_buttons(
        tmp_path: Path) -> None:
    held = HeldPosts()
    async with held_world(tmp_path, held) as w:
        assert (await w.daemon.incident_io(incident())).status == 202
        await asyncio.wait_for(held.holding.wait(), 5)  # the approval post is in flight

        # Meanwhile the severity is removed: no longer an emergency, a request for help.
        assert (await w.daemon.incident_io(incident(
            severity="", updated_at="2026-11-21T02:06:00Z", event=UPDATED))).status == 202

        async def rfh() -> bool:
            return [r.state for r in await w.daemon.escalations()] == ["rfh"]

        await eventually(rfh, 5)
        held.release.set()
        await w.daemon.settle()

        [message] = approval_messages(w)
        assert not has_buttons(message)
        assert "needs approval" not in message.text
        assert "No longer an emergency" in str(message.blocks)
        assert w.pagerduty.pages == []


async def test_two_incidents_for_one_outage_both_paged_one_merged_get_one_retro(
        tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await deliver(w, named(incident(incident_id="01OUTAGEA"), reference="INC-1"))
        await deliver(w, named(incident(incident_id="01OUTAGEB"), reference="INC-2"))
        rows = {r.external_id: r.id for r in await w.daemon.escalations()}
        first, second = approval_messages(w)
        ids = {m.ts: escalation_of(m) for m in (first, second)}
        for n, message in enumerate((first, second)):
            await approve(w, ids[message.ts], message.ts, f"5.00{n}")
        assert len(w.pagerduty.pages) == 2

        # INC-1 is a duplicate: merged into INC-2. Then the outage (INC-2) is over.
        await deliver(w, named(incident(incident_id="01OUTAGEA", category="merged",
                                        updated_at="2026-11-21T02:30:00Z",
                                        event=STATUS_UPDATED),
                               reference="INC-1", related=["INC-2"]))
        await deliver(w, named(incident(incident_id="01OUTAGEB", category="closed",
                                        updated_at="2026-11-21T02:40:00Z",
                                        event=STATUS_UPDATED), reference="INC-2"))

        [retro] = w.tracker.issues
        assert f"tier2gate-retro-{rows['01OUTAGEB']}" in retro.labels
        assert "merged_in" in retro.body and "INC-1" in retro.body
        merged = await w.daemon.events(rows["01OUTAGEA"])
        assert "merged" in merged and "merged_into" in merged
        assert "retro_opened" not in merged
        assert await w.daemon.dead_jobs() == []


async def test_a_paged_incident_merged_after_its_target_retro_is_noted_there(tmp_path: Path
                                                                            ) -> None:
    async with world(tmp_path) as w:
        await deliver(w, named(incident(incident_id="01OUTAGEA"), reference="INC-1"))
        await deliver(w, named(incident(incident_id="01OUTAGEB"), reference="INC-2"))
        first, second = approval_messages(w)
        for n, message in enumerate((first, second)):
            await approve(w, escalation_of(message), message.ts,
                          f"5.00{n}")
        await deliver(w, named(incident(incident_id="01OUTAGEB", category="closed",
                                        updated_at="2026-11-21T02:30:00Z",
                                        event=STATUS_UPDATED), reference="INC-2"))
        [retro] = w.tracker.issues

        await deliver(w, named(incident(incident_id="01OUTAGEA", category="merged",
                                        updated_at="2026-11-21T02:40:00Z",
                                        event=STATUS_UPDATED),
                               reference="INC-1", related=["INC-2"]))
        assert len(w.tracker.issues) == 1
        [note] = retro.notes
        assert "INC-1" in note and "was merged into this incident" in note
        assert await w.daemon.dead_jobs() == []


async def test_a_canceled_rfh_gets_a_note_on_its_rfh_issue(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await deliver(w, incident(severity="SEV3", exhausted=False))
        [row] = await w.daemon.escalations()
        assert row.state == "rfh"
        [issue] = w.tracker.issues
        assert f"tier2gate-rfh-{row.id}" in issue.labels

        await deliver(w, incident(severity="SEV3", exhausted=False, category="canceled",
                                  updated_at="2026-11-21T02:30:00Z", event=STATUS_UPDATED))
        [note] = issue.notes
        assert "declined or canceled" in note and "withdrawn" in note
        assert "rfh_issue_noted" in await w.daemon.events(row.id)


async def test_a_declined_emergency_withdraws_its_pending_request(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await deliver(w, incident(category="triage"))
        [message] = approval_messages(w)
        assert has_buttons(message)
        await deliver(w, incident(category="declined", updated_at="2026-11-21T02:10:00Z",
                                  event=STATUS_UPDATED))
        [message] = approval_messages(w)
        assert not has_buttons(message) and "withdrawn" in str(message.blocks)
        [row] = await w.daemon.escalations()
        assert row.state == "closed" and "withdrawn" in await w.daemon.events(row.id)

        await w.daemon.slack_interaction(button(row.id, SMOC, APPROVE_ACTION, message.ts, "9.0"))
        await w.daemon.settle()
        assert w.pagerduty.pages == []


def pd_incident(event_type: str, *, occurred_at: str, event_id: str, service: str,
                status: str = "triggered") -> dict[str, Any]:
    """A PagerDuty V3 event about a Support (source) incident, from a published capture."""
    sample: dict[str, Any] = json.loads(payload("pagerduty/zulip_reopened_v3.json"))
    event = sample["event"]
    event.update(id=event_id, event_type=event_type, occurred_at=occurred_at)
    data = event["data"]
    data.update(id="PSRC123", status=status, incident_key="support-4242",
                created_at="2026-11-21T01:00:00Z", title="Checkout is down for Acme",
                reopened_at=None)
    data["service"] = {**data["service"], "id": service}
    data["priority"] = {**copy.deepcopy(data["priority"]), "summary": "P1"}
    return sample


async def test_a_source_incident_delegated_to_the_tier2_service_still_gets_its_retro(
        tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        # A P1 open since 01:00: an emergency (an S1 unresolved for 30 minutes).
        assert (await w.daemon.pagerduty(pd_incident(
            "incident.triggered", occurred_at="2026-11-21T02:01:00Z", event_id="ev-1",
            service=SOURCE_SERVICE))).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        [message] = approval_messages(w)
        await approve(w, row.id, message.ts, "5.001")
        assert len(w.pagerduty.pages) == 1

        for body in (
            pd_incident("incident.delegated", occurred_at="2026-11-21T02:20:00Z",
                        event_id="ev-2", service=TIER2_SERVICE),
            pd_incident("incident.resolved", occurred_at="2026-11-21T02:40:00Z",
                        event_id="ev-3", service=TIER2_SERVICE, status="resolved"),
        ):
            assert (await w.daemon.pagerduty(body)).status == 202
            await w.daemon.settle()

        events = await w.daemon.events(row.id)
        assert "source_delegated" in events and "resolved" in events
        assert "retro_opened" in events
        [retro] = w.tracker.issues
        assert f"tier2gate-retro-{row.id}" in retro.labels
