"""The Escalation Engineer step end to end, over real HTTP against the Slack stand-in: offered
to the EEs on rotation, the first "Take it" wins, the EE's word decides whether Engineering is
engaged, and an emergency never waits on an empty rotation."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from daemon.clock import to_datetime
from daemon.demo.payloads import ee_button_press
from daemon.jobs.ee import EEJobs
from daemon.metrics import Metrics
from daemon.reporting.ee import load_ee_layer
from daemon.sources.slack_ids import TAKE_ACTION
from daemon.standins.slack import Message
from daemon.store import JobState
from daemon.wiring import build_parts
from tests.ee_support import EE_CHANNEL, engineer, policy_with_ee, roster_file, rotation
from tests.harness import HARNESS_START
from tests.support_process import clean_env, tier2gate
from tests.world import CHANNEL, OPENED, World, incident, stamp, world

EE1, EE2, STRANGER = "UEE0ADA", "UEE0GRACE", "USTRANGER"
TWO_EES = [rotation("2026-11-16", "2026-11-29", engineer(EE1, "Ada Lovelace"),
                    engineer(EE2, "Grace Hopper"))]
"""On rotation at the harness clock's Saturday night (2026-11-21)."""


@asynccontextmanager
async def ee_world(tmp_path: Path, rotations: list[dict[str, Any]],
                   emergency_wait_minutes: float | None = None) -> AsyncIterator[World]:
    policy = policy_with_ee(tmp_path / "policy.yaml",
                            emergency_wait_minutes=emergency_wait_minutes)
    async with world(tmp_path, policy_file=str(policy),
            ee={"roster_file": str(roster_file(tmp_path / "ee-roster.yaml", rotations)),
                "channel": EE_CHANNEL}) as w:
        yield w


def offers(w: World) -> list[Message]:
    return [m for (c, _ts), m in w.slack.messages.items()
            if c == EE_CHANNEL and not m.thread_ts and TAKE_ACTION in str(m.blocks)]


def ephemerals_to(w: World, user: str) -> list[str]:
    return [str(c.args.get("text")) for c in w.slack.calls_to("chat.postEphemeral")
            if c.args.get("user") == user]


async def click(w: World, esc_id: str, user: str, action: str, ts: str, action_ts: str) -> None:
    press = ee_button_press(esc_id, user, action, EE_CHANNEL, ts, action_ts)
    assert (await w.daemon.slack_interaction(press)).status == 200


async def request_for_help(w: World, opened_at: float = OPENED) -> str:
    body = incident(severity="SEV3", exhausted=False, opened_at=opened_at)
    assert (await w.daemon.incident_io(body)).status == 202
    await w.daemon.settle()
    [row] = await w.daemon.escalations()
    return row.id


@pytest.mark.slow
async def test_first_take_wins_and_the_report_counts_the_ee_resolution(tmp_path: Path) -> None:
    # The incident is dated now by the real clock, so that `report --since 1d` (which reads
    # the real clock) finds it whatever today is; the daemon's own clock stays injected.
    async with ee_world(tmp_path, TWO_EES) as w:
        esc_id = await request_for_help(w, opened_at=time.time())
        [offer] = offers(w)
        assert f"<@{EE1}>" in offer.text and f"<@{EE2}>" in offer.text
        # Not on today's RFH path yet: the EE decides whether Engineering is needed.
        assert "rfh_issue" not in await w.daemon.work()
        assert "rfh_notice" not in await w.daemon.work()

        await click(w, esc_id, EE1, "take", offer.ts, "10.001")
        await click(w, esc_id, EE2, "take", offer.ts, "10.002")
        await click(w, esc_id, STRANGER, "take", offer.ts, "10.003")
        await w.daemon.settle()
        events = await w.daemon.events(esc_id)
        assert events.count("ee_assigned") == 1
        [assigned] = [e for e in await w.daemon.store.timeline(esc_id)
                      if e.event == "ee_assigned"]
        assert assigned.actor == EE1
        assert any(f"<@{EE1}> has already taken" in text for text in ephemerals_to(w, EE2))
        assert any("Only the Escalation Engineers on the current rotation" in text
                   for text in ephemerals_to(w, STRANGER))
        message = w.slack.messages[(EE_CHANNEL, offer.ts)]
        assert f"*DRI:* <@{EE1}>" in str(message.blocks)

        await click(w, esc_id, EE2, "resolved", offer.ts, "11.001")  # not the owner
        await w.daemon.settle()
        assert "ee_resolved" not in await w.daemon.events(esc_id)
        assert any("Only the EE who took this escalation" in text
                   for text in ephemerals_to(w, EE2))

        await click(w, esc_id, EE1, "resolved", offer.ts, "11.002")
        await w.daemon.settle()
        assert "ee_resolved" in await w.daemon.events(esc_id)
        assert "rfh_issue" not in await w.daemon.work()  # Engineering was never engaged
        assert "Resolved without Engineering" in str(
            w.slack.messages[(EE_CHANNEL, offer.ts)].blocks)
        assert not await w.daemon.dead_jobs()

    report = await asyncio.create_subprocess_exec(
        *tier2gate("report", "--since", "1d", "--format", "json"), cwd=tmp_path,
        env=clean_env(TIER2GATE_DATABASE_URL=f"sqlite:///{tmp_path}/harness.db"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(report.communicate(), 120)
    assert report.returncode == 0, stderr.decode()
    layer = json.loads(stdout)["escalation_engineers"]
    assert (layer["offered"], layer["taken"], layer["resolved_without_engineering"],
            layer["reached_engineering"]) == (1, 1, 1, 0)
    assert layer["engineering_share"] == 0.0 and layer["goal_met"] is True
    [by_ee] = layer["by_ee"]
    assert (by_ee["key"], by_ee["resolved_without_engineering"]) == (EE1, 1)
    assert [g["key"] for g in layer["by_rotation"]] == ["2026-11-16..2026-11-29"]
    assert layer["open_per_ee"] == {}


async def test_needs_engineering_continues_on_the_rfh_path(tmp_path: Path) -> None:
    async with ee_world(tmp_path, TWO_EES) as w:
        esc_id = await request_for_help(w)
        [offer] = offers(w)
        await click(w, esc_id, EE2, "take", offer.ts, "10.001")
        await w.daemon.settle()
        await click(w, esc_id, EE2, "engineering", offer.ts, "10.002")
        await w.daemon.settle()
        assert "ee_needs_engineering" in await w.daemon.events(esc_id)
        done = [j.kind for j in await w.daemon.store.list_jobs(JobState.DONE)]
        assert {"rfh_notice", "rfh_issue"} <= set(done)
        assert "rfh_issue_opened" in await w.daemon.events(esc_id)
        [issue] = w.tracker.issues
        assert "Escalation Engineer (DRI): Grace Hopper (UEE0GRACE): asked for Engineering" \
            in issue.body


async def test_an_empty_rotation_sends_a_request_for_help_on_at_once(tmp_path: Path) -> None:
    later = [rotation("2026-12-01", "2026-12-14", engineer(EE1, "Ada Lovelace"))]
    async with ee_world(tmp_path, later) as w:
        esc_id = await request_for_help(w)
        assert offers(w) == []
        events = await w.daemon.events(esc_id)
        assert "ee_skipped" in events and "rfh_issue_opened" in events


async def test_a_weekend_emergency_with_nobody_on_rotation_reaches_the_smoc_at_once(
        tmp_path: Path) -> None:
    """Saturday night (the harness clock), a policy whose emergencies wait up to 30 minutes
    for an EE, and nobody on the rotation: the SMOC is asked without the clock moving."""
    later = [rotation("2026-12-01", "2026-12-14", engineer(EE1, "Ada Lovelace"))]
    async with ee_world(tmp_path, later, emergency_wait_minutes=30) as w:
        started = w.daemon.clock.now()
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        assert row.data["gate"]["decision"]["facts"]["weekend"] is True
        assert w.daemon.clock.now() == started  # no time passed: nothing waited
        assert len(w.approval_posts()) == 1
        events = await w.daemon.events(row.id)
        assert events.index("ee_skipped") < events.index("approval_requested")
        assert offers(w) == []


async def test_an_emergency_waits_for_the_ee_on_rotation_then_asks_the_smoc(
        tmp_path: Path) -> None:
    """With someone on rotation, the rule's bounded wait holds the SMOC request back; when it
    is over the SMOC is asked (the EE did not resolve it)."""
    async with ee_world(tmp_path, TWO_EES, emergency_wait_minutes=15) as w:
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        [offer] = offers(w)
        assert w.approval_posts() == []
        await click(w, row.id, EE1, "take", offer.ts, "20.001")
        await w.daemon.settle()
        w.daemon.clock.advance(15 * 60)
        await w.daemon.settle()
        assert len(w.approval_posts()) == 1
        # The approval request names the EE who owns it.
        [request] = [m for (c, _ts), m in w.slack.messages.items()
                     if c == CHANNEL and not m.thread_ts]
        assert f"*Escalation Engineer (DRI):* <@{EE1}>" in str(request.blocks)
        assert "ee_wait_over" in await w.daemon.events(row.id)


async def test_the_dashboard_and_metrics_show_who_owns_what(tmp_path: Path) -> None:
    """The EE page lists the open escalations each EE owns (the running document), marks an
    owner no longer on the rotation as outgoing, and the metrics count the open work per EE."""
    async with ee_world(tmp_path, TWO_EES) as w:
        esc_id = await request_for_help(w)
        [offer] = offers(w)
        await click(w, esc_id, EE1, "take", offer.ts, "10.001")
        await w.daemon.settle()

        board = await (await w.daemon.admin.get("/api/ee?since=7d")).json()
        assert board["rotation"] == "2026-11-16..2026-11-29"
        [owner] = board["owners"]
        assert (owner["ee"], owner["name"], owner["on_rotation"]) == (EE1, "Ada Lovelace", True)
        [item] = owner["escalations"]
        assert (item["id"], item["phase"]) == (esc_id, "rfh")
        assert item["links"]["EE offer"].startswith(f"https://slack.com/archives/{EE_CHANNEL}/")
        assert board["figures"]["open_per_ee"] == {EE1: 1}

        page = await (await w.daemon.admin.get("/ee")).text()
        assert "Ada Lovelace (UEE0ADA)" in page and ": outgoing" not in page
        api = await (await w.daemon.admin.get("/api/escalations")).json()
        [view] = api["escalations"]
        assert (view["ee_owner"], view["ee_owner_name"]) == (EE1, "Ada Lovelace")
        metrics = await (await w.daemon.admin.get("/metrics")).text()
        assert f'tier2gate_ee_open_escalations{{ee="{EE1}"}} 1.0' in metrics
        assert 'tier2gate_ee_steps_total{step="assigned"} 1.0' in metrics

        # The rotation ends: the next page shows the owner as outgoing.
        w.daemon.clock.advance(10 * 24 * 3600)
        page = await (await w.daemon.admin.get("/ee")).text()
        assert "Ada Lovelace (UEE0ADA): outgoing" in page
        assert "Nobody is on the EE rotation now" in page
        assert (await w.daemon.admin.get("/ee?since=nonsense")).status == 400


async def test_an_ee_who_resolves_a_waiting_emergency_spares_the_smoc(tmp_path: Path) -> None:
    async with ee_world(tmp_path, TWO_EES, emergency_wait_minutes=15) as w:
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        [offer] = offers(w)
        await click(w, row.id, EE2, "take", offer.ts, "30.001")
        await w.daemon.settle()
        await click(w, row.id, EE2, "resolved", offer.ts, "30.002")
        await w.daemon.settle()
        w.daemon.clock.advance(16 * 60)
        await w.daemon.settle()
        assert w.approval_posts() == []
        events = await w.daemon.events(row.id)
        assert "ee_resolved" in events and "approval_requested" not in events
        [row] = await w.daemon.escalations()
        assert row.state == "closed"


async def test_names_from_the_roster_are_literal_where_they_are_written(tmp_path: Path) -> None:
    hostile = "Eve <!channel> [x](https://example.invalid) @all <script>alert(1)</script>"
    roster = [rotation("2026-11-16", "2026-11-29", engineer(EE1, hostile))]
    async with ee_world(tmp_path, roster) as w:
        esc_id = await request_for_help(w)
        [offer] = offers(w)
        await click(w, esc_id, EE1, "take", offer.ts, "40.001")
        await w.daemon.settle()
        await click(w, esc_id, EE1, "engineering", offer.ts, "40.002")
        await w.daemon.settle()
        [issue] = w.tracker.issues
        [line] = [x for x in issue.body.splitlines() if "Escalation Engineer (DRI)" in x]
        assert "[x](" not in line and r"\[x\]" in line and "<script>" not in line
        assert "@all" not in line  # a word joiner keeps it from notifying anyone
        page = await (await w.daemon.admin.get("/ee")).text()
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;" in page
        texts = " ".join(str(c.args) for c in w.slack.calls_to("chat.postMessage")
                         + w.slack.calls_to("chat.update") + w.slack.calls_to("chat.postEphemeral"))
        assert "<!channel>" not in texts


async def test_a_request_for_help_nobody_takes_goes_on_to_tier2_in_time(tmp_path: Path) -> None:
    async with ee_world(tmp_path, TWO_EES) as w:
        esc_id = await request_for_help(w)
        assert "rfh_issue_opened" not in await w.daemon.events(esc_id)
        w.daemon.clock.advance(121 * 60)  # ee.take_within_minutes: 120
        await w.daemon.settle()
        events = await w.daemon.events(esc_id)
        assert "ee_skipped" in events and "rfh_issue_opened" in events
        [skipped] = [e for e in await w.daemon.store.timeline(esc_id) if e.event == "ee_skipped"]
        assert skipped.details["why"] == "no EE took it within 120 minutes"
        layer = await load_ee_layer(w.daemon.store, to_datetime(HARNESS_START - 3600),
                                    to_datetime(w.daemon.clock.now()))
        assert (layer.offered, layer.taken, layer.reached_engineering) == (1, 0, 1)


async def test_the_owner_hears_when_their_escalation_goes_quiet(tmp_path: Path) -> None:
    async with ee_world(tmp_path, TWO_EES) as w:
        esc_id = await request_for_help(w)
        [offer] = offers(w)
        await click(w, esc_id, EE1, "take", offer.ts, "50.001")
        await w.daemon.settle()

        def reminders() -> list[str]:
            return [str(c.args.get("text")) for c in w.slack.calls_to("chat.postMessage")
                    if c.args.get("channel") == EE1]

        w.daemon.clock.advance(200 * 60)
        await w.daemon.settle()
        assert reminders() == []  # not quiet for ee.quiet_after_minutes (240) yet
        w.daemon.clock.advance(41 * 60)
        await w.daemon.settle()
        [text] = reminders()
        assert f"Nothing has happened on escalation {esc_id}" in text and "DRI" in text
        assert "ee_reminded" in await w.daemon.events(esc_id)
        await click(w, esc_id, EE1, "resolved", offer.ts, "50.002")
        await w.daemon.settle()
        w.daemon.clock.advance(300 * 60)
        await w.daemon.settle()
        assert len(reminders()) == 1  # resolved: no more reminders


async def test_an_incoming_ee_takes_over_what_an_outgoing_one_owned(tmp_path: Path) -> None:
    rotations = [rotation("2026-11-16", "2026-11-22", engineer(EE1, "Ada Lovelace")),
                 rotation("2026-11-23", "2026-12-06", engineer(EE2, "Grace Hopper"))]
    async with ee_world(tmp_path, rotations) as w:
        esc_id = await request_for_help(w)
        [offer] = offers(w)
        await click(w, esc_id, EE1, "take", offer.ts, "60.001")
        await w.daemon.settle()
        await click(w, esc_id, EE2, "take", offer.ts, "60.002")  # not on rotation yet
        await w.daemon.settle()
        assert "ee_taken_over" not in await w.daemon.events(esc_id)
        w.daemon.clock.advance(3 * 24 * 3600)  # Tuesday: Grace's rotation
        await w.daemon.settle()
        await click(w, esc_id, EE2, "take", offer.ts, "60.003")
        await w.daemon.settle()
        [moved] = [e for e in await w.daemon.store.timeline(esc_id)
                   if e.event == "ee_taken_over"]
        assert (moved.actor, moved.details["from"]) == (EE2, EE1)
        board = await (await w.daemon.admin.get("/api/ee")).json()
        assert [(o["ee"], o["on_rotation"]) for o in board["owners"]] == [(EE2, True)]


async def test_an_offer_that_cannot_be_posted_sends_the_request_on_at_once(
        tmp_path: Path) -> None:
    async with ee_world(tmp_path, TWO_EES) as w:
        w.slack.refuse(EE_CHANNEL, "channel_not_found")
        esc_id = await request_for_help(w)
        events = await w.daemon.events(esc_id)
        assert "ee_skipped" in events and "rfh_issue_opened" in events
        # The offer did not die: it handed the request on (the rotation's handoff message,
        # posted to the same channel, is dead-lettered and needs a person).
        assert [job.split(":")[0] for job in await w.daemon.dead_jobs()] == ["ee_handoff"]


async def test_a_handoff_retried_after_a_lost_answer_is_not_posted_twice(
        tmp_path: Path) -> None:
    """The process can die between Slack's answer and the job's completion; the job's next
    attempt finds its message by its key instead of posting a second one."""
    async with ee_world(tmp_path, TWO_EES) as w:
        await w.daemon.settle()

        def handoffs() -> list[str]:
            return [str(c.args.get("text")) for c in w.slack.calls_to("chat.postMessage")
                    if "EE rotation 2026-11-16..2026-11-29 starts" in str(c.args.get("text"))]

        assert len(handoffs()) == 1
        [job] = [j for j in await w.daemon.store.list_jobs(JobState.DONE)
                 if j.kind == "ee_handoff"]
        parts = build_parts(w.daemon.settings, w.daemon.store, w.daemon.clock, Metrics())
        await EEJobs(parts.deps).handoff(replace(job, attempts=2))
        assert len(handoffs()) == 1
        await EEJobs(parts.deps).handoff(replace(job, attempts=1))  # a first attempt posts
        assert len(handoffs()) == 2


async def test_an_offer_stops_offering_once_the_incident_is_over(tmp_path: Path) -> None:
    async with ee_world(tmp_path, TWO_EES) as w:
        esc_id = await request_for_help(w)
        [offer] = offers(w)
        closed = incident(severity="SEV3", exhausted=False, category="closed",
                          updated_at=stamp(HARNESS_START + 60))
        assert (await w.daemon.incident_io(closed)).status == 202
        await w.daemon.settle()
        blocks = str(w.slack.messages[(EE_CHANNEL, offer.ts)].blocks)
        assert TAKE_ACTION not in blocks and "nothing is needed any more" in blocks
        await click(w, esc_id, EE1, "take", offer.ts, "70.001")
        await w.daemon.settle()
        assert "ee_assigned" not in await w.daemon.events(esc_id)
        assert any("This escalation is over" in text for text in ephemerals_to(w, EE1))


async def test_a_take_it_on_another_message_changes_nothing_and_says_so(tmp_path: Path) -> None:
    async with ee_world(tmp_path, TWO_EES) as w:
        esc_id = await request_for_help(w)
        await click(w, esc_id, EE1, "take", "1700000000.999999", "80.001")
        await w.daemon.settle()
        assert "ee_assigned" not in await w.daemon.events(esc_id)
        assert any("not this escalation's recorded offer" in text
                   for text in ephemerals_to(w, EE1))


async def test_an_ee_cannot_close_an_emergency_that_goes_to_the_smoc(tmp_path: Path) -> None:
    """A request for help an EE owns becomes an emergency whose rule does not wait for an EE:
    the SMOC is asked. While the approval channel fails for a moment, the EE presses
    "Resolved without Engineering": the emergency still reaches the SMOC."""
    async with ee_world(tmp_path, TWO_EES) as w:
        esc_id = await request_for_help(w)
        [offer] = offers(w)
        await click(w, esc_id, EE1, "take", offer.ts, "90.001")
        await w.daemon.settle()
        w.slack.fail_post_to(CHANNEL, "internal_error", times=3)
        worse = incident(severity="SEV1", exhausted=True, updated_at=stamp(HARNESS_START + 30))
        assert (await w.daemon.incident_io(worse)).status == 202
        await w.daemon.settle()
        assert "approval_requested" not in await w.daemon.events(esc_id)  # Slack failing
        await click(w, esc_id, EE1, "resolved", offer.ts, "90.002")
        await w.daemon.settle()
        for _ in range(3):  # the approval request's retries
            w.daemon.clock.advance(1)
            await w.daemon.settle()
        events = await w.daemon.events(esc_id)
        assert "ee_resolved" in events and "approval_requested" in events
        [row] = await w.daemon.escalations()
        assert row.state == "awaiting_approval"
        assert [m for (c, _ts), m in w.slack.messages.items() if c == CHANNEL and not m.thread_ts]


async def test_an_incoming_ee_takes_over_what_an_outgoing_one_sent_to_engineering(
        tmp_path: Path) -> None:
    """An escalation its EE sent on to Engineering is still open and still theirs: the handoff
    lists it, and its offer keeps a "Take it over" button for the incoming EEs."""
    rotations = [rotation("2026-11-16", "2026-11-22", engineer(EE1, "Ada Lovelace")),
                 rotation("2026-11-23", "2026-12-06", engineer(EE2, "Grace Hopper"))]
    async with ee_world(tmp_path, rotations) as w:
        esc_id = await request_for_help(w)
        [offer] = offers(w)
        await click(w, esc_id, EE1, "take", offer.ts, "61.001")
        await w.daemon.settle()
        await click(w, esc_id, EE1, "engineering", offer.ts, "61.002")
        await w.daemon.settle()
        w.daemon.clock.advance(3 * 24 * 3600)  # Tuesday: Grace's rotation
        await w.daemon.settle()
        [handoff] = [str(c.args.get("text")) for c in w.slack.calls_to("chat.postMessage")
                     if "EE rotation 2026-11-23..2026-12-06 starts" in str(c.args.get("text"))]
        assert esc_id in handoff and "press Take it" in handoff
        blocks = str(w.slack.messages[(EE_CHANNEL, offer.ts)].blocks)
        assert "Needs Engineering" in blocks and TAKE_ACTION in blocks
        await click(w, esc_id, EE2, "take", offer.ts, "61.003")
        await w.daemon.settle()
        [moved] = [e for e in await w.daemon.store.timeline(esc_id)
                   if e.event == "ee_taken_over"]
        assert (moved.actor, moved.details["from"]) == (EE2, EE1)
        blocks = str(w.slack.messages[(EE_CHANNEL, offer.ts)].blocks)
        assert f"*DRI:* <@{EE2}>" in blocks and f"continues to Tier 2 by <@{EE1}>" in blocks
        board = await (await w.daemon.admin.get("/api/ee")).json()
        assert [(o["ee"], o["on_rotation"]) for o in board["owners"]] == [(EE2, True)]


async def test_a_handoff_lists_what_an_earlier_rotation_left_untaken(tmp_path: Path) -> None:
    """Nobody took over what Ada owned when her rotation ended: it is still owned by someone
    off the rotation, so the rotation after the next one hears of it too."""
    ee3 = "UEE0KATE"
    rotations = [rotation("2026-11-16", "2026-11-22", engineer(EE1, "Ada Lovelace")),
                 rotation("2026-11-23", "2026-11-29", engineer(EE2, "Grace Hopper")),
                 rotation("2026-11-30", "2026-12-06", engineer(ee3, "Katherine Johnson"))]
    async with ee_world(tmp_path, rotations) as w:
        esc_id = await request_for_help(w)
        [offer] = offers(w)
        await click(w, esc_id, EE1, "take", offer.ts, "62.001")
        await w.daemon.settle()

        def handoff(rotation_id: str) -> str:
            [text] = [str(c.args.get("text")) for c in w.slack.calls_to("chat.postMessage")
                      if f"EE rotation {rotation_id} starts" in str(c.args.get("text"))]
            return text

        w.daemon.clock.advance(3 * 24 * 3600)  # Grace's rotation: nobody takes it over
        await w.daemon.settle()
        assert esc_id in handoff("2026-11-23..2026-11-29")
        w.daemon.clock.advance(7 * 24 * 3600)  # Katherine's
        await w.daemon.settle()
        text = handoff("2026-11-30..2026-12-06")
        assert esc_id in text and f"owner <@{EE1}>" in text
        handed = [e for e in await w.daemon.store.timeline(esc_id) if e.event == "ee_handed_over"]
        assert [e.details["rotation"] for e in handed] == ["2026-11-23..2026-11-29",
                                                          "2026-11-30..2026-12-06"]


@pytest.mark.parametrize(("mistake", "said"), [
    (("to: '2026-11-29'", "to: 2026-11-31"), "yaml:9: rotations[0].to: '2026-11-31' is not"),
    (("to: '2026-11-29'", "to: 9999-12-31"), "ee-roster.yaml:3: rotations[0]: dates must lie"),
])
async def test_a_roster_edited_to_an_impossible_date_keeps_the_last_good_one(
        tmp_path: Path, mistake: tuple[str, str], said: str) -> None:
    """A date that is no date (November 31st), or the last one there is: the edit is refused
    naming its line, the rotation in force stays, and the EEs still get the offer."""
    async with ee_world(tmp_path, TWO_EES) as w:
        path = tmp_path / "ee-roster.yaml"
        text = path.read_text(encoding="utf-8")
        assert mistake[0] in text
        path.write_text(text.replace(*mistake), encoding="utf-8")
        await request_for_help(w)
        [offer] = offers(w)
        assert f"<@{EE1}>" in offer.text
        assert not await w.daemon.dead_jobs()
        ready = await w.daemon.admin.get("/readyz")
        body = await ready.text()
        assert ready.status == 503 and "not reloaded" in body and said in body


async def test_a_rotation_is_handed_over_with_the_shortest_job_retention(tmp_path: Path) -> None:
    """`retention.jobs_days: 1`, the least allowed: the rotation in force is still handed over
    (once), in the first half of the day its handoff job is kept."""
    policy = policy_with_ee(tmp_path / "policy.yaml", emergency_wait_minutes=None)
    async with world(tmp_path, policy_file=str(policy), retention={"jobs_days": 1},
                     ee={"roster_file": str(roster_file(tmp_path / "ee-roster.yaml", [
                         rotation("2026-11-21", "2026-11-29", engineer(EE1, "Ada"))],
                         handoff_time="00:00")),
                         "channel": EE_CHANNEL}) as w:
        await w.daemon.settle()
        handoffs = [c for c in w.slack.calls_to("chat.postMessage")
                    if "EE rotation 2026-11-21..2026-11-29 starts" in str(c.args.get("text"))]
        assert len(handoffs) == 1


async def test_a_handoff_lists_every_escalation_whatever_their_titles(tmp_path: Path) -> None:
    """One escalation's title is the size of a Slack message: the handoff still lists the
    escalation after it, and fits in one message."""
    rotations = [rotation("2026-11-16", "2026-11-22", engineer(EE1, "Ada Lovelace")),
                 rotation("2026-11-23", "2026-12-06", engineer(EE2, "Grace Hopper"))]
    async with ee_world(tmp_path, rotations) as w:
        huge = incident(severity="SEV3", exhausted=False, incident_id="01HUGE")
        huge[huge["event_type"]]["name"] = "Checkout \u00e9chou\u00e9 " * 4000
        assert (await w.daemon.incident_io(huge)).status == 202
        other = incident(severity="SEV3", exhausted=False, incident_id="01OTHER")
        assert (await w.daemon.incident_io(other)).status == 202
        await w.daemon.settle()
        rows = sorted(await w.daemon.escalations(), key=lambda r: r.opened_at)
        for n, row in enumerate(rows):
            [offer] = [m for m in offers(w) if row.id in str(m.blocks)]
            await click(w, row.id, EE1, "take", offer.ts, f"63.00{n}")
        await w.daemon.settle()
        w.daemon.clock.advance(3 * 24 * 3600)
        await w.daemon.settle()
        [text] = [str(c.args.get("text")) for c in w.slack.calls_to("chat.postMessage")
                  if "EE rotation 2026-11-23..2026-12-06 starts" in str(c.args.get("text"))]
        assert all(row.id in text for row in rows), text[-300:]
        assert len(text) < 4000


async def test_a_request_for_help_whose_offer_slack_keeps_failing_goes_on_in_time(
        tmp_path: Path) -> None:
    """Slack fails every post to the EE channel for hours (temporarily, so the offer is tried
    again and again): once `ee.take_within_minutes` is over the request for help goes on to
    the RFH path, as it would had nobody taken it, and its issue is opened."""
    async with ee_world(tmp_path, TWO_EES) as w:
        w.slack.fail_post_to(EE_CHANNEL, "service_unavailable", times=10_000)
        esc_id = await request_for_help(w)
        for _ in range(26):  # 130 minutes: ee.take_within_minutes is 120
            w.daemon.clock.advance(300)
            await w.daemon.settle()
        events = await w.daemon.events(esc_id)
        assert "ee_skipped" in events and "rfh_issue_opened" in events, events
        [skipped] = [e for e in await w.daemon.store.timeline(esc_id) if e.event == "ee_skipped"]
        assert "could not be posted" in skipped.details["why"]
        assert offers(w) == []
        [row] = await w.daemon.escalations()
        assert not row.attention  # the offer's trouble is over: it went on


async def test_an_emergency_the_smoc_was_asked_about_reached_engineering_whatever_the_ee_says(
        tmp_path: Path) -> None:
    """The EE's bounded wait is over and the SMOC is asked; the EE then says "Resolved without
    Engineering". Engineering was engaged (the SMOC decides whether Tier 2 is paged): the
    figures count it as having reached Engineering, and not also as resolved without it."""
    async with ee_world(tmp_path, TWO_EES, emergency_wait_minutes=15) as w:
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        [offer] = offers(w)
        await click(w, row.id, EE1, "take", offer.ts, "64.001")
        await w.daemon.settle()
        w.daemon.clock.advance(15 * 60)
        await w.daemon.settle()
        assert len(w.approval_posts()) == 1
        await click(w, row.id, EE1, "resolved", offer.ts, "64.002")
        await w.daemon.settle()
        layer = await load_ee_layer(w.daemon.store, to_datetime(HARNESS_START - 3600),
                                    to_datetime(w.daemon.clock.now()))
        assert (layer.offered, layer.taken, layer.resolved_without_engineering,
                layer.reached_engineering) == (1, 1, 0, 1)


async def test_a_rotation_extended_in_the_roster_is_not_handed_over_again(tmp_path: Path) -> None:
    """Ada stays a week longer: the roster's `to` moves, the rotation is the same one, and the
    EE channel hears of its start once."""
    async with ee_world(tmp_path, TWO_EES) as w:
        await w.daemon.settle()
        roster_file(tmp_path / "ee-roster.yaml", [
            rotation("2026-11-16", "2026-12-06", engineer(EE1, "Ada Lovelace"),
                     engineer(EE2, "Grace Hopper"))])
        w.daemon.clock.advance(600)
        await w.daemon.settle()
        starts = [c for c in w.slack.calls_to("chat.postMessage")
                  if "EE rotation 2026-11-16.." in str(c.args.get("text"))]
        assert len(starts) == 1


async def test_a_request_for_help_marked_a_test_is_taken_back_from_the_ees(
        tmp_path: Path) -> None:
    """Offered to the EEs, the incident is then marked a test (the policy ignores it): the
    offer stops offering, nobody can take it, it does not go on to Tier 2 when nobody took it,
    and the figures do not count it as having reached Engineering."""
    async with ee_world(tmp_path, TWO_EES) as w:
        esc_id = await request_for_help(w)
        [offer] = offers(w)
        body = incident(severity="SEV3", exhausted=False, updated_at=stamp(HARNESS_START + 60))
        body[body["event_type"]]["mode"] = "test"
        assert (await w.daemon.incident_io(body)).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        assert row.state == "ignored"
        blocks = str(w.slack.messages[(EE_CHANNEL, offer.ts)].blocks)
        assert TAKE_ACTION not in blocks and "nothing is needed any more" in blocks
        await click(w, esc_id, EE1, "take", offer.ts, "65.001")
        await w.daemon.settle()
        assert any("nothing to take" in text for text in ephemerals_to(w, EE1))
        w.daemon.clock.advance(121 * 60)  # past ee.take_within_minutes
        await w.daemon.settle()
        events = await w.daemon.events(esc_id)
        assert "ee_assigned" not in events and "ee_skipped" not in events
        assert "rfh_issue_opened" not in events
        layer = await load_ee_layer(w.daemon.store, to_datetime(HARNESS_START - 3600),
                                    to_datetime(w.daemon.clock.now()))
        assert (layer.offered, layer.reached_engineering) == (1, 0)


async def test_an_offer_nobody_took_in_time_says_it_went_on_and_its_issue_hears_the_ee(
        tmp_path: Path) -> None:
    """Nobody took the request for help in time: the offer says it went on to Tier 2. An EE
    who takes it afterwards and resolves it tells its RFH issue, so Tier 2 does not work on
    it for nothing; the figures count it as having reached Engineering."""
    async with ee_world(tmp_path, TWO_EES) as w:
        esc_id = await request_for_help(w)
        [offer] = offers(w)
        w.daemon.clock.advance(121 * 60)
        await w.daemon.settle()
        blocks = str(w.slack.messages[(EE_CHANNEL, offer.ts)].blocks)
        assert "No EE took it in time: it went on to Tier 2" in blocks
        await click(w, esc_id, EE1, "take", offer.ts, "66.001")
        await w.daemon.settle()
        await click(w, esc_id, EE1, "resolved", offer.ts, "66.002")
        await w.daemon.settle()
        assert "rfh_issue_noted" in await w.daemon.events(esc_id)
        [issue] = w.tracker.issues
        assert any("resolved it without Engineering after it had come here" in note
                   for note in issue.notes)
        layer = await load_ee_layer(w.daemon.store, to_datetime(HARNESS_START - 3600),
                                    to_datetime(w.daemon.clock.now()))
        assert (layer.resolved_without_engineering, layer.reached_engineering) == (0, 1)


async def test_a_roster_file_caught_empty_keeps_the_rotation_in_force(tmp_path: Path) -> None:
    """An editor saving in place truncates the file before it writes it again: a roster read
    in between is empty. That is no roster, not a roster without rotations: the rotation in
    force stays, and the request for help is offered to its EEs."""
    async with ee_world(tmp_path, TWO_EES) as w:
        (tmp_path / "ee-roster.yaml").write_text("", encoding="utf-8")
        await request_for_help(w)
        [offer] = offers(w)
        assert f"<@{EE1}>" in offer.text
        body = await (await w.daemon.admin.get("/readyz")).text()
        assert "the file is empty" in body


async def test_an_emergency_resolved_while_it_waits_for_its_ee_ends_there(
        tmp_path: Path) -> None:
    """The incident is resolved while its emergency is held back for the EEs: it is over. It
    is not turned into a request for help for Tier 2 (no notice, no issue due on Monday)."""
    async with ee_world(tmp_path, TWO_EES, emergency_wait_minutes=15) as w:
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        [offer] = offers(w)
        closed = incident(category="closed", updated_at=stamp(HARNESS_START + 60))
        assert (await w.daemon.incident_io(closed)).status == 202
        await w.daemon.settle()
        w.daemon.clock.advance(16 * 60)  # past the wait
        await w.daemon.settle()
        events = await w.daemon.events(row.id)
        assert "resolved" in events
        assert not {"rfh_notice_posted", "rfh_issue_opened", "approval_requested"} & set(events)
        assert w.tracker.issues == [] and w.approval_posts() == []
        [row] = await w.daemon.escalations()
        assert row.state == "closed" and not await w.daemon.dead_jobs()
        assert "nothing is needed any more" in str(
            w.slack.messages[(EE_CHANNEL, offer.ts)].blocks)


async def test_an_emergency_downgraded_while_its_ee_holds_it_stays_with_the_ee(
        tmp_path: Path) -> None:
    """An EE took an emergency held back for them; Support then unticks the criterion, so the
    policy makes it a request for help. The EE who owns it still decides whether Engineering
    is needed: no RFH issue until they say so."""
    async with ee_world(tmp_path, TWO_EES, emergency_wait_minutes=15) as w:
        assert (await w.daemon.incident_io(incident(severity="SEV2"))).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        [offer] = offers(w)
        await click(w, row.id, EE1, "take", offer.ts, "67.001")
        await w.daemon.settle()
        calmer = incident(severity="SEV2", exhausted=False, updated_at=stamp(HARNESS_START + 60))
        assert (await w.daemon.incident_io(calmer)).status == 202
        await w.daemon.settle()
        w.daemon.clock.advance(16 * 60)
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        assert row.state == "rfh"
        events = await w.daemon.events(row.id)
        assert "rfh_issue_opened" not in events and "approval_requested" not in events
        await click(w, row.id, EE1, "engineering", offer.ts, "67.002")
        await w.daemon.settle()
        assert "rfh_issue_opened" in await w.daemon.events(row.id)


async def test_an_offer_stops_counting_down_once_the_smoc_is_asked(tmp_path: Path) -> None:
    async with ee_world(tmp_path, TWO_EES, emergency_wait_minutes=15) as w:
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        [offer] = offers(w)
        assert "The SMOC is asked in 15 minutes" in str(offer.blocks)
        w.daemon.clock.advance(15 * 60)
        await w.daemon.settle()
        assert len(w.approval_posts()) == 1
        blocks = str(w.slack.messages[(EE_CHANNEL, offer.ts)].blocks)
        assert "The SMOC is asked in" not in blocks and "The SMOC was asked" in blocks


async def test_the_morning_queue_leaves_to_the_ees_what_they_hold(tmp_path: Path) -> None:
    """Monday's queue is what waits for Tier 2: a request an EE resolved without Engineering
    is done, and one an EE holds is theirs until they ask for Engineering; only that one,
    and one nobody took, reach Tier 2's morning message."""
    tier2 = "C0TIER2"
    policy = policy_with_ee(tmp_path / "policy.yaml", emergency_wait_minutes=None)
    async with world(tmp_path, policy_file=str(policy), slack={"tier2_channel": tier2},
                     ee={"roster_file": str(roster_file(tmp_path / "ee-roster.yaml", TWO_EES)),
                         "channel": EE_CHANNEL}) as w:
        ids = {}
        for name in ("RESOLVED", "HELD", "ENGINEERING"):
            body = incident(incident_id=f"01{name}", severity="SEV3", exhausted=False)
            body[body["event_type"]]["name"] = f"{name.lower()} request"
            assert (await w.daemon.incident_io(body)).status == 202
            await w.daemon.settle()
            ids[name] = next(r.id for r in await w.daemon.escalations()
                             if r.external_id == f"01{name}")
        ts = {m.text: m.ts for m in offers(w)}
        by_id = {esc_id: next(t for text, t in ts.items() if f"{name.lower()} request" in text)
                 for name, esc_id in ids.items()}
        for n, (name, outcome) in enumerate((("RESOLVED", "resolved"), ("HELD", None),
                                             ("ENGINEERING", "engineering"))):
            esc_id = ids[name]
            await click(w, esc_id, EE1, "take", by_id[esc_id], f"20.{n}01")
            if outcome:
                await click(w, esc_id, EE1, outcome, by_id[esc_id], f"20.{n}02")
            await w.daemon.settle()
        monday = datetime(2026, 11, 23, 9, 0, tzinfo=UTC).timestamp()
        w.daemon.clock.advance(monday + 1 - w.daemon.clock.now())
        await w.daemon.settle()
        [queue] = [c.args.get("text", "") for c in w.slack.calls_to("chat.postMessage")
                   if c.args.get("channel") == tier2]
        assert "engineering request" in queue and "(1," in queue
        assert "resolved request" not in queue and "held request" not in queue
