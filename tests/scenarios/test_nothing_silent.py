"""An emergency ends in a decision, a page, or a person who knows it is stuck: whatever a vendor
answers, over real HTTP against the stand-ins (issue: nothing stranded, nothing silent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from daemon.demo.payloads import button_press
from daemon.sources.slack_ids import APPROVE_ACTION, DECLINE_ACTION
from daemon.standins.faults import Fault
from daemon.standins.incident_io import FakeIncidentIo
from daemon.standins.slack import FakeSlack, Message
from daemon.store import JobState, transfer
from tests.world import (
    BACKUP,
    CHANNEL,
    PD_TOKEN,
    SMOC,
    World,
    button,
    emergency,
    incident,
    world,
)


def top_level(w: World, channel: str) -> list[Message]:
    return [m for (c, _ts), m in w.slack.messages.items() if c == channel and not m.thread_ts]


def has_buttons(message: Message) -> bool:
    return APPROVE_ACTION in str(message.blocks)


async def approved_emergency(w: World, outage: Fault | None = None) -> tuple[str, str]:
    """The Saturday-night S1, approved by the SMOC in the channel: (escalation id, ts).
    `outage` is PagerDuty's answer from just before the click until `faults.clear()`."""
    assert (await w.daemon.incident_io(incident())).status == 202
    await w.daemon.settle()
    [row] = await w.daemon.escalations()
    [message] = top_level(w, CHANNEL)
    if outage is not None:
        w.pagerduty.faults.add(outage, times=10_000)
    await w.daemon.slack_interaction(button(row.id, SMOC, APPROVE_ACTION, message.ts, "5.001"))
    await w.daemon.settle()
    return row.id, message.ts


async def metric(w: World, name: str) -> float:
    text = await (await w.daemon.admin.get("/metrics")).text()
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[1])


@pytest.mark.parametrize("error", ["not_in_channel", "channel_not_found", "is_archived",
                                   "restricted_action", "missing_scope"])
async def test_a_channel_that_refuses_the_bot_sends_the_request_to_the_approvers_directly(
        tmp_path: Path, error: str) -> None:
    async with world(tmp_path) as w:
        w.slack.refuse(CHANNEL, error)
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()

        [row] = await w.daemon.escalations()
        assert top_level(w, CHANNEL) == []
        [to_smoc] = top_level(w, FakeSlack.dm_channel(SMOC))
        [to_backup] = top_level(w, FakeSlack.dm_channel(BACKUP))
        assert has_buttons(to_smoc) and has_buttons(to_backup)
        events = await w.daemon.events(row.id)
        assert "approval_requested" in events and "approval_channel_refused" in events
        assert row.attention  # the operator must fix the channel
        assert await metric(w, "tier2gate_escalations_needing_attention") == 1
        assert f'error="{error}"' in await (await w.daemon.admin.get("/metrics")).text()

        # The SMOC approves from the direct message: Tier 2 is paged exactly once, and both
        # copies of the request show the decision instead of buttons.
        for n in range(2):
            click = button_press(row.id, SMOC, "approve", to_smoc.channel, to_smoc.ts, f"6.{n}")
            assert (await w.daemon.slack_interaction(click)).status == 200
        late = button_press(row.id, BACKUP, "approve", to_backup.channel, to_backup.ts, "7.0")
        await w.daemon.slack_interaction(late)
        await w.daemon.settle()

        assert len(w.pagerduty.pages) == 1
        assert not has_buttons(to_smoc) and not has_buttons(to_backup)
        assert "Approved by" in str(to_backup.blocks)
        assert "Already approved" in w.slack.ephemerals[-1].args["text"]
        [row] = await w.daemon.escalations()
        assert not row.attention
        assert await w.daemon.dead_jobs() == []


def configure_page_refusal(w: World, mode: str) -> None:
    if mode == "rest":
        w.pagerduty.requesters = {"somebody-else@example.com"}


@pytest.mark.parametrize(("mode", "overrides", "vendor_says"), [
    ("rest", {}, "Requester User Not Found"),
    ("events", {"pagerduty": {"tier2_service_id": None,
                              "tier2_routing_key": "R0UTINGKEYTHATPAGERDUTYDOESNOTKNOW"}},
     "Invalid routing key"),
])
async def test_a_page_pagerduty_refuses_is_told_to_the_approvers_and_on_the_dashboard(
        tmp_path: Path, mode: str, overrides: dict[str, Any], vendor_says: str) -> None:
    async with world(tmp_path, **overrides) as w:
        configure_page_refusal(w, mode)
        esc_id, ts = await approved_emergency(w)

        assert w.pagerduty.pages == [] and w.pagerduty.alerts == []
        [dead] = await w.daemon.dead_jobs()
        assert dead.startswith("page:")
        # The approval message no longer says Tier 2 is being paged.
        message = w.slack.messages[(CHANNEL, ts)]
        assert "paging Tier 2" not in str(message.blocks)
        assert "did NOT go out" in str(message.blocks) and "did NOT go out" in message.text
        assert vendor_says in str(message.blocks)
        # The thread says what failed, PagerDuty's reason and what to do by hand.
        [note] = [m for m in w.slack.thread(CHANNEL, ts) if "NOT been paged" in m.text]
        assert vendor_says in note.text
        assert "page tier 2 by hand" in note.text.lower()
        assert "runbooks/page-did-not-go-out.md" in note.text
        assert f"<@{SMOC}>" in note.text
        events = await w.daemon.events(esc_id)
        assert "job.dead_lettered" in events and "needs_attention" in events

        # At the top of the dashboard and in the JSON, with the vendor's reason.
        page = await (await w.daemon.admin.get("/")).text()
        assert 'id="needs-attention"' in page and vendor_says in page
        assert page.index("needs-attention") < page.index('id="summary"')
        api = await (await w.daemon.admin.get("/api/escalations")).json()
        [stuck] = api["needs_attention"]
        assert stuck["id"] == esc_id and vendor_says in stuck["problems"][0]["reason"]
        assert await metric(w, "tier2gate_escalations_needing_attention") == 1


async def test_a_decline_form_that_cannot_open_asks_the_smoc_to_press_again(
        tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        esc_id, ts = await emergency(w)
        w.slack.fail("views.open", "expired_trigger_id")

        await w.daemon.slack_interaction(button(esc_id, SMOC, DECLINE_ACTION, ts, "8.1"))
        await w.daemon.settle()

        told = w.slack.ephemerals[-1].args
        assert told["user"] == SMOC and "Press Decline again" in told["text"]
        timeline = await w.daemon.store.timeline(esc_id)
        [failed] = [e for e in timeline if e.event == "decline_form_failed"]
        assert failed.actor == SMOC and "expired_trigger_id" in failed.details["error"]
        assert has_buttons(w.slack.messages[(CHANNEL, ts)]) and await w.daemon.dead_jobs() == []

        # Pressing again opens the form.
        await w.daemon.slack_interaction(button(esc_id, SMOC, DECLINE_ACTION, ts, "8.2"))
        await w.daemon.settle()
        assert len(w.slack.views) == 1


URGENT_JOBS = {"max_attempts": 3, "backoff_base_s": 2.0, "backoff_max_s": 600.0,
               "urgent_retry_max_s": 30.0}


async def test_a_page_is_retried_through_a_long_outage_and_people_hear_it_is_stuck(
        tmp_path: Path) -> None:
    async with world(tmp_path, jobs=URGENT_JOBS) as w:
        esc_id, ts = await approved_emergency(w, Fault(status=503))
        for _ in range(11):  # 11 failed attempts: far past max_attempts, never dead-lettered
            [job] = [j for j in await w.daemon.store.list_jobs(JobState.QUEUED)
                     if j.kind == "page"]
            wait_s = job.run_at - w.daemon.clock.now()
            assert 0 < wait_s <= 30.0, wait_s  # a recovered PagerDuty is noticed within 30 s
            w.daemon.clock.advance(wait_s)
            await w.daemon.settle()
        assert w.pagerduty.pages == [] and await w.daemon.dead_jobs() == []
        stuck = [m for m in w.slack.thread(CHANNEL, ts) if "keeps failing" in m.text]
        assert len(stuck) == 1 and "503" in stuck[0].text  # told once, with the reason
        [row] = await w.daemon.escalations()
        assert row.attention

        # PagerDuty is back: paged at the next attempt, and the alarm clears.
        w.pagerduty.faults.clear()
        [job] = [j for j in await w.daemon.store.list_jobs(JobState.QUEUED) if j.kind == "page"]
        w.daemon.clock.advance(job.run_at - w.daemon.clock.now())
        await w.daemon.settle()
        assert len(w.pagerduty.pages) == 1
        [row] = await w.daemon.escalations()
        assert not row.attention
        assert "paged" in await w.daemon.events(esc_id)


async def test_the_approval_timeout_runs_from_the_classification_even_while_slack_is_down(
        tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.slack.faults.add(Fault(status=503), times=10_000)
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        for _ in range(21):  # 21 minutes of Slack outage; the policy times out after 20
            w.daemon.clock.advance(60)
            await w.daemon.settle()
        events = await w.daemon.events(row.id)
        assert "approval_timed_out" in events and "approval_requested" not in events
        assert len(w.pagerduty.pages) == 1  # the policy's fallback paged Tier 2 anyway

        # Slack is back: the request is posted, already showing the outcome, with no buttons.
        w.slack.faults.clear()
        w.daemon.clock.advance(60)
        await w.daemon.settle()
        [message] = top_level(w, CHANNEL)
        assert not has_buttons(message)
        assert "timed out" in str(message.blocks)


def pd_error(message: str, *errors: str) -> Fault:
    return Fault(status=400, body=json.dumps(
        {"error": {"message": message, "code": 2001, "errors": list(errors)}}))


async def test_vendor_reason_with_slack_markup_does_not_ping_the_channel(tmp_path: Path) -> None:
    """A vendor's error text is untrusted: in the 'needs attention' thread note it must not
    become a <!channel> mention or a disguised link."""
    async with world(tmp_path) as w:
        esc_id, ts = await emergency(w)
        w.pagerduty.faults.add(pd_error("Invalid Input Provided",
                                        "<!channel> title <https://evil.example|click>"), 5)
        await w.daemon.slack_interaction(button(esc_id, SMOC, APPROVE_ACTION, ts, "5.1"))
        await w.daemon.settle()
        notes = [m.text for m in w.slack.thread(CHANNEL, ts) if "rotating_light" in m.text]
        assert notes, "no needs-attention note"
        for text in notes:
            assert "<!channel>" not in text, text
            assert "<https://evil.example|click>" not in text, text


async def test_vendor_reason_with_a_secret_is_scrubbed_everywhere(tmp_path: Path) -> None:
    """A vendor error echoing the API token is scrubbed from the needs-attention note, the
    approval message, the dashboard and /api/escalations."""
    async with world(tmp_path) as w:
        esc_id, ts = await emergency(w)
        w.pagerduty.faults.add(pd_error("Invalid Input Provided",
                                        f"token Token token={PD_TOKEN} is not allowed"), 5)
        await w.daemon.slack_interaction(button(esc_id, SMOC, APPROVE_ACTION, ts, "5.1"))
        await w.daemon.settle()
        everything = json.dumps([m.text for m in w.slack.messages.values()])
        everything += json.dumps([str(m.blocks) for m in w.slack.messages.values()])
        everything += await (await w.daemon.admin.get("/")).text()
        everything += await (await w.daemon.admin.get("/api/escalations")).text()
        assert "needs attention" in everything.lower() or "rotating_light" in everything
        assert PD_TOKEN not in everything


async def test_a_request_posted_after_an_outage_no_longer_claims_it_keeps_failing(
        tmp_path: Path) -> None:
    """Slack is down long enough for people to be told the approval request keeps failing;
    then Slack recovers and the request is posted: it does not say it keeps failing, and the
    escalation no longer needs attention."""
    async with world(tmp_path, jobs=URGENT_JOBS) as w:
        w.slack.faults.add(Fault(status=503), times=8)
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        for _ in range(6):
            w.daemon.clock.advance(30)
            await w.daemon.settle()
        [row] = await w.daemon.escalations()
        assert "needs_attention" in await w.daemon.events(row.id)
        w.slack.faults.clear()
        for _ in range(3):
            w.daemon.clock.advance(30)
            await w.daemon.settle()
        [message] = top_level(w, CHANNEL)
        assert "tier2gate_approve" in str(message.blocks)
        assert "still failing" not in str(message.blocks), message.blocks
        [row] = await w.daemon.escalations()
        assert not row.attention


async def test_a_retried_direct_message_fallback_leaves_no_live_orphan_request(
        tmp_path: Path) -> None:
    """The channel refuses the bot; the DM to the SMOC goes out, the DM to the backup is
    rate-limited (temporary). Nothing is posted twice, and every copy of the request shows the
    decision."""
    async with world(tmp_path) as w:
        w.slack.refuse(CHANNEL, "not_in_channel")
        w.slack.fail_post_to(BACKUP, "ratelimited")
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        for _ in range(3):
            w.daemon.clock.advance(30)
            await w.daemon.settle()
        [row] = await w.daemon.escalations()
        to_smoc = top_level(w, FakeSlack.dm_channel(SMOC))
        to_backup = top_level(w, FakeSlack.dm_channel(BACKUP))
        assert len(to_backup) == 1
        click = button_press(row.id, BACKUP, "approve", to_backup[0].channel, to_backup[0].ts,
                             "6.0")
        assert (await w.daemon.slack_interaction(click)).status == 200
        await w.daemon.settle()
        assert len(w.pagerduty.pages) == 1
        live = [m for m in to_smoc if "tier2gate_approve" in str(m.blocks)]
        assert len(to_smoc) == 1 and live == [], (
            f"{len(to_smoc)} requests in the SMOC's DMs, {len(live)} still with buttons")


INC_API_TOKEN = "inc-RECOGNISABLE-api-token"
PRIVATE_ID = "01PRIVATE7Q"


def private_webhook(event: str = "private_incident.incident_created_v2") -> dict[str, Any]:
    return {"event_type": event, event: {"id": PRIVATE_ID}}


async def test_an_unreadable_private_incident_is_not_silent_when_the_channel_refuses_the_bot(
        tmp_path: Path) -> None:
    """The notice about an unreadable private incident goes to the approval channel; when that
    channel refuses the bot, the approvers hear of it directly and the dashboard lists it."""
    async with FakeIncidentIo(token=INC_API_TOKEN) as api, world(
            tmp_path, incident_io={"api_token": INC_API_TOKEN, "api_url": api.api_url}) as w:
        w.slack.refuse(CHANNEL, "not_in_channel")
        api.faults.add(Fault(status=404), times=100)
        assert (await w.daemon.incident_io(private_webhook())).status == 202
        for _ in range(5):
            await w.daemon.settle()
            w.daemon.clock.advance(60)
        await w.daemon.settle()
        told = [m for m in w.slack.messages.values() if PRIVATE_ID in m.text]
        assert {m.channel for m in told} == {FakeSlack.dm_channel(SMOC),
                                             FakeSlack.dm_channel(BACKUP)}
        api_json = await (await w.daemon.admin.get("/api/escalations")).json()
        assert [j["kind"] for j in api_json["stranded_jobs"]] == ["incident_notice"]
        page = await (await w.daemon.admin.get("/")).text()
        assert 'id="needs-attention"' in page and "incident notice" in page


async def test_a_private_emergency_survives_a_short_incident_io_outage(tmp_path: Path) -> None:
    """Intake of a signed delivery never gives up on a retryable failure: a private S1 (its
    webhook has no incident to fall back on) whose re-fetch meets a short incident.io outage
    reaches the SMOC once incident.io answers again."""
    async with FakeIncidentIo(token=INC_API_TOKEN) as api, world(
            tmp_path, incident_io={"api_token": INC_API_TOKEN, "api_url": api.api_url}) as w:
        api.incidents[PRIVATE_ID] = incident(incident_id=PRIVATE_ID)[
            "public_incident.incident_created_v2"]
        api.faults.add(Fault(status=503), times=3)
        assert (await w.daemon.incident_io(private_webhook())).status == 202
        for _ in range(5):
            await w.daemon.settle()
            w.daemon.clock.advance(30)
        await w.daemon.settle()
        assert api.faults.pending == 0  # incident.io is answering again
        assert len(w.approval_posts()) == 1, "the private S1 was dropped after a brief outage"


async def test_a_dead_rfh_issue_retried_by_the_runbook_clears_needs_attention(
        tmp_path: Path) -> None:
    """The note says "Open the request-for-help issue by hand, or retry the job once the tracker
    is fixed". Retrying the job (what `tier2gate jobs retry` does) opens the issue and takes
    the escalation out of Needs attention."""
    async with world(tmp_path) as w:
        w.tracker.plan.add(Fault(status=403, body='{"message": "403 Forbidden"}'), times=50)
        assert (await w.daemon.incident_io(incident(severity="SEV3", exhausted=False))
                ).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        assert row.attention
        w.tracker.plan.clear()
        [dead] = [j for j in await w.daemon.store.list_jobs(JobState.DEAD) if j.kind == "rfh_issue"]
        now = w.daemon.store.clock.now()
        assert await w.daemon.store.backend.run(lambda: transfer.retry_dead_job(dead.id, now))
        await w.daemon.settle()
        assert "rfh_issue_opened" in await w.daemon.events(row.id)
        [row] = await w.daemon.escalations()
        assert not row.attention, row.data["gate"]["problems"]
