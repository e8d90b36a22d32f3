"""After the page, over real HTTP: retro issues read back from the tracker stand-ins until
they close, overdue retros reminded once per period (across restarts), and an active S1
nudged once when it goes quiet past its cadence, never while updates flow."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from daemon.clock import to_datetime
from daemon.domain.retro_sections import PLACEHOLDER, SECTIONS
from daemon.integrations.slack_forms import EVIDENCE_PREFIX
from daemon.reporting import load_report
from daemon.standins.faults import Fault
from daemon.standins.pagerduty import FakePagerDuty
from daemon.standins.slack import FakeSlack
from daemon.standins.trackers import FakeTracker
from daemon.store import TimelineEntry
from daemon.store.mapping import loaded
from tests.harness import REPO, payload, running
from tests.scenarios.test_flow import escalation_form
from tests.scenarios.test_reopen_flow import approval_messages, pd_incident
from tests.world import (
    CHANNEL,
    PD_TOKEN,
    SLACK_TOKEN,
    SMOC,
    SMOC_EMAIL,
    SMOC_SCHEDULE,
    World,
    approve,
    deliver,
    emergency,
    incident,
    page_event,
    settings_for,
    stamp,
    tracker_for,
    world,
)

HOUR, DAY = 3600.0, 86400.0


async def retro_for(w: World) -> tuple[str, str]:
    """An S1 approved, paged and resolved: (escalation id, approval message ts), its retro
    issue opened in the tracker stand-in."""
    esc_id, ts = await emergency(w)
    await approve(w, esc_id, ts, "2.001")
    closed = incident(category="closed", updated_at="2026-11-21T02:30:00Z",
                      event="public_incident.incident_status_updated_v2")
    assert (await w.daemon.incident_io(closed)).status == 202
    await w.daemon.settle()
    assert "retro_opened" in await w.daemon.events(esc_id)
    return esc_id, ts


def filled(body: str) -> str:
    """The retro body with every follow-through section written, as an engineer would."""
    for n, section in enumerate(SECTIONS):
        body = body.replace(f"# {section}\n\n{PLACEHOLDER}",
                            f"# {section}\n\nWritten by the engineer ({n}).", 1)
    return body


def nudges(w: World, ts: str) -> list[str]:
    """The update-cadence nudges in the approval thread `ts`."""
    return [m.text for m in w.slack.thread(CHANNEL, ts) if "No update" in m.text]


async def at_minute(w: World, engaged: float, minutes: float) -> None:
    """Move the clock to `minutes` after `engaged` (epoch s) and let the daemon catch up."""
    w.daemon.clock.advance(engaged + minutes * 60 - w.daemon.clock.now())
    await w.daemon.settle()


def entries(timeline: list[TimelineEntry], event: str) -> list[TimelineEntry]:
    return [e for e in timeline if e.event == event]


@pytest.mark.parametrize("kind", ["gitlab", "github", "jira"])
async def test_a_retro_closed_in_the_tracker_is_seen_closed_with_its_sections(
        tmp_path: Path, kind: str) -> None:
    async with world(tmp_path, kind) as w:
        first, _ts = await retro_for(w)
        [issue] = w.tracker.issues
        assert all(f"{s}" in issue.body for s in SECTIONS)
        w.daemon.clock.advance(HOUR)  # the next poll: still open, nothing recorded
        await w.daemon.settle()
        assert "retro_closed" not in await w.daemon.events(first)

        issue.body = filled(issue.body)
        issue.state = "closed"
        w.daemon.clock.advance(HOUR)
        await w.daemon.settle()
        [closed] = entries(await w.daemon.store.timeline(first), "retro_closed")
        assert closed.details == {"url": issue.url, "complete": True, "missing": []}

        # Later polls leave a closed retro alone: it is not read again.
        reads = len(w.tracker.requests)
        w.daemon.clock.advance(HOUR)
        await w.daemon.settle()
        assert len(w.tracker.requests) == reads
        assert len(entries(await w.daemon.store.timeline(first), "retro_closed")) == 1


async def test_a_retro_closed_with_empty_sections_is_incomplete(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        esc_id, _ts = await retro_for(w)
        [issue] = w.tracker.issues
        issue.body = issue.body.replace(f"## Root cause\n\n{PLACEHOLDER}",
                                        "## Root cause\n\nA bad deploy.", 1)
        issue.state = "closed"
        w.daemon.clock.advance(HOUR)
        await w.daemon.settle()
        [closed] = entries(await w.daemon.store.timeline(esc_id), "retro_closed")
        assert closed.details["complete"] is False
        assert closed.details["missing"] == ["Corrective actions",
                                             "Documentation or error message to improve"]


@asynccontextmanager
async def vendors(tmp_path: Path) -> AsyncIterator[tuple[FakeSlack, FakePagerDuty,
                                                         FakeTracker]]:
    """The stand-ins alone, so that the daemon can be stopped and started again beside them."""
    async with AsyncExitStack() as stack:
        slack = await stack.enter_async_context(
            FakeSlack(token=SLACK_TOKEN, users_by_email={SMOC_EMAIL: SMOC}))
        pagerduty = await stack.enter_async_context(
            FakePagerDuty(token=PD_TOKEN, ca_file=tmp_path / "pd-ca.pem"))
        pagerduty.set_oncall(SMOC_SCHEDULE, "PSMOCUSER", SMOC_EMAIL)
        tracker = tracker_for("gitlab")
        await tracker.start()
        stack.push_async_callback(tracker.close)
        yield slack, pagerduty, tracker


async def test_an_overdue_retro_gets_one_reminder_per_period_across_restarts(
        tmp_path: Path) -> None:
    async with vendors(tmp_path) as (slack, pagerduty, tracker):
        settings = settings_for(slack, pagerduty, tracker, "gitlab",
                                followthrough={"retro_overdue_days": 14})

        def reminders() -> list[str]:
            return [m.text for m in slack.thread(CHANNEL, ts) if "retro" in m.text
                    and "has been open" in m.text]

        async with running(tmp_path, settings) as daemon:
            w = World(daemon, slack, pagerduty, tracker)
            esc_id, ts = await retro_for(w)
            tracker.issues[0].assignee = "sam"
            daemon.clock.advance(13 * DAY)
            await daemon.settle()
            assert reminders() == []
            daemon.clock.advance(2 * DAY)  # 15 days open: the first period is over
            await daemon.settle()
            [text] = reminders()
            assert "15 days" in text and "`sam` (assignee)" in text
            assert "Root cause" in text
            daemon.clock.advance(HOUR * 5)
            await daemon.settle()
            assert len(reminders()) == 1

        # A restart (the clock of the new process is set to the same day) reminds nobody
        # again in this period.
        async with running(tmp_path, settings) as daemon:
            daemon.clock.advance(15 * DAY + 8 * HOUR)
            await daemon.settle()
            assert len(reminders()) == 1
            daemon.clock.advance(14 * DAY)  # 29 days: the second period
            await daemon.settle()
            assert len(reminders()) == 2
            reminded = entries(await daemon.store.timeline(esc_id), "retro_reminded")
            assert [e.details["period"] for e in reminded] == [1, 2]


async def test_an_s1_gets_one_nudge_when_it_goes_quiet_and_none_while_updates_flow(
        tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        esc_id, ts = await emergency(w)
        await approve(w, esc_id, ts, "2.001")
        engaged = w.daemon.clock.now()

        # Updates flow: a person writes in the thread every 25 minutes.
        for minute in (25, 50, 75):
            await at_minute(w, engaged, minute - 1)
            w.slack.reply(CHANNEL, ts, "UTIER2", "Still digging, next update soon",
                          engaged + minute * 60)
            await at_minute(w, engaged, minute)
        await at_minute(w, engaged, 100)  # 25 minutes since the last: within the 30-minute cadence
        assert nudges(w, ts) == []

        await at_minute(w, engaged, 110)  # 35 minutes quiet: one nudge naming who holds it
        [nudge] = nudges(w, ts)
        assert f"<@{SMOC}> (approved the page)" in nudge
        assert "every 30 min" in nudge
        await at_minute(w, engaged, 150)
        await at_minute(w, engaged, 200)
        assert len(nudges(w, ts)) == 1  # one per quiet spell, however long it lasts

        w.slack.reply(CHANNEL, ts, "UTIER2", "Fix deployed", engaged + 201 * 60)
        await at_minute(w, engaged, 202)
        timeline = await w.daemon.store.timeline(esc_id)
        [overdue] = entries(timeline, "update_overdue")
        assert overdue.details["due_at"] == engaged + 105 * 60
        [resumed] = entries(timeline, "update_resumed")
        assert resumed.details["overdue_s"] == pytest.approx(96 * 60)
        assert await w.daemon.dead_jobs() == []


async def test_the_approval_request_shows_the_evidence_pack_and_records_it(
        tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        body = incident()
        inner = body["public_incident.incident_created_v2"]
        impact = dict(inner["custom_field_entries"][1])
        impact["custom_field"] = {**impact["custom_field"], "name": "Customer impact"}
        impact["values"] = [{"value_text": "Every checkout fails <!channel>"}]
        logs = dict(impact, custom_field={**impact["custom_field"], "name": "Request ids"},
                    values=[{"value_text": "n/a"}])  # said, but hands nothing over
        inner["custom_field_entries"] = [*inner["custom_field_entries"], impact, logs]
        assert (await w.daemon.incident_io(body)).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        text = str(w.approval_posts()[0].args)
        assert ("*Evidence:* customer impact · *missing:* what was tried, logs or request ids, "
                "deadline, rollback status") in text
        assert "Approve" in text  # shown beside the buttons, never instead of them
        [requested] = entries(await w.daemon.store.timeline(row.id), "approval_requested")
        assert requested.details["evidence"] == {
            "present": ["customer impact"], "complete": False,
            "missing": ["what was tried", "logs or request ids", "deadline", "rollback status"]}


def status_update(event_id: str, occurred_at: str, *, note: bool = False) -> dict[str, Any]:
    """A PagerDuty V3 status update (or note) on the Support incident `PSRC123`, from the
    published capture."""
    sample: dict[str, Any] = json.loads(payload("pagerduty/zulip_status_updated_v3.json"))
    event = sample["event"]
    event.update(id=event_id, occurred_at=occurred_at,
                 event_type="incident.annotated" if note else "incident.status_update_published")
    event["data"]["incident"]["id"] = "PSRC123"
    return sample


async def test_pagerduty_notes_and_status_updates_keep_the_cadence(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        # An S1 opened at 01:00 and still open: an emergency by the 30-minute rule.
        trigger = pd_incident("incident.triggered", priority="P1",
                              occurred_at="2026-11-21T02:01:00Z", event_id="ev-trig")
        assert (await w.daemon.pagerduty(trigger)).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        [ts] = approval_messages(w)
        await approve(w, row.id, ts, "7.001")
        engaged = w.daemon.clock.now()

        for n, minute in enumerate((20, 45)):
            await at_minute(w, engaged, minute)
            body = status_update(f"ev-update-{n}", stamp(engaged + minute * 60), note=n == 1)
            assert (await w.daemon.pagerduty(body)).status == 202
            await w.daemon.settle()
        await at_minute(w, engaged, 70)  # 25 minutes after the note
        assert nudges(w, ts) == []
        updates = entries(await w.daemon.store.timeline(row.id), "incident_update")
        assert [(u.actor, u.details["kind"]) for u in updates] == [
            ("Harsh Santwani", "status_update"), ("Harsh Santwani", "note")]
        await at_minute(w, engaged, 80)
        assert len(nudges(w, ts)) == 1


async def test_the_tier2_form_asks_for_the_evidence_pack_and_the_smoc_sees_it(
        tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert (await w.daemon.slack_command("Payments API returns 500s")).status == 200
        await w.daemon.settle()
        [view] = w.slack.views
        blocks = {b["block_id"]: b for b in view["blocks"]}
        asked = [b["label"]["text"] for key, b in blocks.items()
                 if key.startswith(EVIDENCE_PREFIX)]
        assert asked == ["customer impact", "what was tried", "logs or request ids", "deadline",
                         "rollback status"]
        assert all(blocks[key]["optional"] for key in blocks if key.startswith(EVIDENCE_PREFIX))
        form = escalation_form(view, "USUPPORT", "Payments API returns 500s", "S1",
                               ["support_exhausted_knowledge"])
        values = form["view"]["state"]["values"]
        for name, answer in (("Customer impact", "No card payments in the EU"),
                             ("What was tried", "Restarted the gateway"),
                             ("Logs", "req-7f3k9"), ("Deadline", "  "),
                             ("Made up", "dropped: the policy lists no such field")):
            values[EVIDENCE_PREFIX + name] = {"evidence": {"type": "plain_text_input",
                                                           "value": answer}}
        assert (await w.daemon.slack_interaction(form)).status == 200
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        fields = loaded(row).escalation.fields
        assert fields["Customer impact"] == "No card payments in the EU"
        assert "Made up" not in fields and "Deadline" not in fields
        text = str(w.approval_posts()[0].args)
        assert ("*Evidence:* customer impact, what was tried, logs or request ids · *missing:* "
                "deadline, rollback status") in text


async def test_the_retro_poll_reads_a_batch_at_a_time_and_waits_out_a_rate_limit(
        tmp_path: Path) -> None:
    async with world(tmp_path, followthrough={"retro_poll_batch": 2}) as w:
        ids = []
        for n in range(3):
            incident_id = f"01INCIDENT{n}"
            await deliver(w, incident(incident_id=incident_id))
            esc_id = next(row.id for row in await w.daemon.escalations() if row.id not in ids)
            [ts] = [m.ts for (c, _t), m in w.slack.messages.items()
                    if c == CHANNEL and not m.thread_ts and esc_id in str(m.blocks)]
            await approve(w, esc_id, ts, f"2.00{n}")
            await deliver(w, incident(incident_id=incident_id, category="closed",
                                      updated_at="2026-11-21T02:30:00Z",
                                      event="public_incident.incident_status_updated_v2"))
            ids.append(esc_id)
        assert len(w.tracker.issues) == 3
        for issue in w.tracker.issues:
            issue.body, issue.state = filled(issue.body), "closed"

        async def closed() -> list[str]:
            return sorted([e for e in ids if "retro_closed" in await w.daemon.events(e)])

        def reads() -> int:
            return len([r for r in w.tracker.requests if r.method == "GET"])

        w.tracker.plan.add(Fault(status=429, retry_after_s=120))
        before = reads()
        w.daemon.clock.advance(HOUR)
        await w.daemon.settle()
        assert await closed() == [] and reads() == before + 1  # stopped at the 429
        w.daemon.clock.advance(119)
        await w.daemon.settle()
        assert await closed() == []  # Retry-After is honoured
        w.daemon.clock.advance(2)
        await w.daemon.settle()
        assert len(await closed()) == 2 and reads() == before + 3  # one batch
        w.daemon.clock.advance(61)
        await w.daemon.settle()
        assert await closed() == sorted(ids) and reads() == before + 4


async def test_tracker_text_in_a_reminder_stays_literal(tmp_path: Path) -> None:
    async with world(tmp_path, "github") as w:
        _esc_id, ts = await retro_for(w)
        [issue] = w.tracker.issues
        issue.assignee = "<!channel> `rm -rf` <@U0ADMIN>"
        w.daemon.clock.advance(15 * DAY)
        await w.daemon.settle()
        [text] = [m.text for m in w.slack.thread(CHANNEL, ts) if "has been open" in m.text]
        assert "`&lt;!channel&gt; 'rm -rf' &lt;@U0ADMIN&gt;` (assignee)" in text
        assert "<!channel>" not in text and "<@U0ADMIN>" not in text


async def test_the_cadence_follows_a_severity_raised_after_the_page(tmp_path: Path) -> None:
    """An S2 emergency paged, then raised to S1 in incident.io: from then on it is held to
    the S1 cadence (30 min), not the S2 one (60 min) it was paged under."""
    async with world(tmp_path) as w:
        await deliver(w, incident(severity="SEV2"))
        [row] = await w.daemon.escalations()
        [ts] = approval_messages(w)
        await approve(w, row.id, ts, "2.001")
        engaged = w.daemon.clock.now()

        await at_minute(w, engaged, 40)
        assert nudges(w, ts) == []  # 40 minutes: within the S2 cadence
        await deliver(w, incident(severity="SEV1", updated_at=stamp(engaged + 40 * 60),
                                  event="public_incident.incident_updated_v2"))
        await at_minute(w, engaged, 65)
        assert nudges(w, ts) == []  # 25 minutes since the change
        await at_minute(w, engaged, 75)  # 35 minutes quiet: past the S1 cadence
        [nudge] = nudges(w, ts)
        assert "S1 emergency" in nudge and "every 30 min" in nudge


async def test_a_thread_slack_will_not_show_now_is_no_reason_to_nudge(tmp_path: Path) -> None:
    """Slack answers the thread read with a 429 while people are talking in the thread: the
    check does not take the silence it cannot see for a quiet spell; the next one judges."""
    async with world(tmp_path) as w:
        esc_id, ts = await emergency(w)
        await approve(w, esc_id, ts, "2.001")
        engaged = w.daemon.clock.now()

        await at_minute(w, engaged, 24)
        w.slack.reply(CHANNEL, ts, "UTIER2", "Rolling back now", engaged + 25 * 60)
        await at_minute(w, engaged, 34)
        w.slack.faults.add(Fault(status=429, retry_after_s=30))
        # the thread cannot be read: 35 minutes since Tier 2 was engaged
        await at_minute(w, engaged, 35)
        assert w.slack.faults.injected == 1
        await at_minute(w, engaged, 36)
        assert nudges(w, ts) == []
        assert "update_overdue" not in await w.daemon.events(esc_id)
        await at_minute(w, engaged, 56)  # 31 minutes after the reply, read this time
        assert len(nudges(w, ts)) == 1


async def test_a_thread_slack_never_shows_still_gets_its_nudge(tmp_path: Path) -> None:
    """Slack keeps refusing the thread read for a while (rate-limited): the nudge is not held
    back for ever, it comes at twice the cadence."""
    async with world(tmp_path) as w:
        esc_id, ts = await emergency(w)
        await approve(w, esc_id, ts, "2.001")
        engaged = w.daemon.clock.now()
        w.slack.fail("conversations.replies", "ratelimited", times=1000)

        await at_minute(w, engaged, 31)
        await at_minute(w, engaged, 59)
        assert nudges(w, ts) == []
        await at_minute(w, engaged, 61)
        [nudge] = nudges(w, ts)
        assert "for 61 min" in nudge


async def test_a_retro_closed_first_and_written_after_is_seen_complete(tmp_path: Path) -> None:
    """The assignee closes the retro, then writes its sections: it counts complete once the
    poll sees them, while it is still followed (`retro_overdue_days` after it closed); a retro
    left incomplete past that is no longer read."""
    async with world(tmp_path, followthrough={"retro_overdue_days": 14}) as w:
        esc_id, _ts = await retro_for(w)
        [issue] = w.tracker.issues
        issue.state = "closed"
        w.daemon.clock.advance(HOUR)
        await w.daemon.settle()
        [closed] = entries(await w.daemon.store.timeline(esc_id), "retro_closed")
        assert closed.details["complete"] is False
        w.daemon.clock.advance(HOUR)  # still empty: nothing new
        await w.daemon.settle()
        assert len(entries(await w.daemon.store.timeline(esc_id), "retro_closed")) == 1

        issue.body = filled(issue.body)
        w.daemon.clock.advance(3 * DAY)
        await w.daemon.settle()
        closings = entries(await w.daemon.store.timeline(esc_id), "retro_closed")
        assert [c.details["complete"] for c in closings] == [False, True]
        assert not any("has been open" in m.text for m in w.slack.thread(CHANNEL, _ts))
        reads = len(w.tracker.requests)
        w.daemon.clock.advance(HOUR)  # complete: no longer read
        await w.daemon.settle()
        assert len(w.tracker.requests) == reads


async def test_a_retro_closed_incomplete_is_followed_for_a_while_only(tmp_path: Path) -> None:
    async with world(tmp_path, followthrough={"retro_overdue_days": 14}) as w:
        esc_id, _ts = await retro_for(w)
        [issue] = w.tracker.issues
        issue.state = "closed"
        w.daemon.clock.advance(HOUR)
        await w.daemon.settle()
        w.daemon.clock.advance(15 * DAY)
        await w.daemon.settle()
        reads = len(w.tracker.requests)
        w.daemon.clock.advance(HOUR)
        await w.daemon.settle()
        assert len(w.tracker.requests) == reads
        assert len(entries(await w.daemon.store.timeline(esc_id), "retro_closed")) == 1


async def test_a_policy_without_an_evidence_pack_claims_no_complete_one(
        tmp_path: Path) -> None:
    """A policy written before the evidence pack lists none: its approval requests checked
    nothing, so the KPI has nothing counted (and meets no target), not 100%."""
    text = (REPO / "config" / "policy.yaml").read_text(encoding="utf-8")
    start, end = text.index("\nevidence:"), text.index("\nrules:")
    policy = tmp_path / "policy.yaml"
    policy.write_text(text[:start] + "\n" + text[end:], encoding="utf-8")
    async with world(tmp_path, policy_file=str(policy)) as w:
        esc_id, ts = await emergency(w)
        await approve(w, esc_id, ts, "2.001")
        assert "*Evidence:*" not in str(w.approval_posts()[0].args)
        [requested] = entries(await w.daemon.store.timeline(esc_id), "approval_requested")
        assert "evidence" not in requested.details
        now = w.daemon.clock.now()
        report = await load_report(w.daemon.store, to_datetime(now - DAY),
                                   to_datetime(now + HOUR), settings=w.daemon.settings)
        assert report.kpis is not None
        assert (report.kpis.evidence_complete.total, report.kpis.evidence_complete.meets) == (
            0, None)


@pytest.mark.parametrize("routing_key", [False, True])
async def test_notes_on_the_tier2_page_keep_the_cadence(tmp_path: Path,
                                                        routing_key: bool) -> None:
    """Tier 2 works the page tier2gate sent: their PagerDuty notes and status updates on it
    are updates of the emergency, whether the page was created through the REST API or
    triggered through the Events API (whose answer names no incident id)."""
    overrides: dict[str, Any] = (
        {"pagerduty": {"tier2_routing_key": "R" * 32, "tier2_service_id": None}}
        if routing_key else {})
    async with world(tmp_path, **overrides) as w:
        w.pagerduty.routing_key = "R" * 32
        esc_id, ts = await emergency(w)
        await approve(w, esc_id, ts, "2.001")
        engaged = w.daemon.clock.now()
        page = w.pagerduty.pages[-1] if not routing_key else w.pagerduty.events[-1]
        incident_id = "PT2PAGE" if routing_key else page["id"]
        key = page["incident_key"] if not routing_key else page["dedup_key"]
        trigger = page_event("incident.triggered", key, incident_id, event_id="ev-trig")
        trigger["event"]["occurred_at"] = stamp(engaged)
        assert (await w.daemon.pagerduty(trigger)).status == 202
        await w.daemon.settle()

        for n, minute in enumerate((20, 45)):
            await at_minute(w, engaged, minute)
            body = status_update(f"ev-update-{n}", stamp(engaged + minute * 60), note=n == 1)
            body["event"]["data"]["incident"]["id"] = incident_id
            assert (await w.daemon.pagerduty(body)).status == 202
            await w.daemon.settle()
        await at_minute(w, engaged, 70)  # 25 minutes after the note on the page
        assert nudges(w, ts) == []
        updates = entries(await w.daemon.store.timeline(esc_id), "incident_update")
        assert [u.details["kind"] for u in updates] == ["status_update", "note"]
        await at_minute(w, engaged, 80)
        assert len(nudges(w, ts)) == 1


async def test_a_wall_clock_stepped_forward_is_no_quiet_spell(tmp_path: Path) -> None:
    """The host's clock jumps 40 minutes ahead ten minutes after Tier 2 was engaged: nobody
    went quiet, so nobody is nudged until 30 minutes have really passed."""
    async with world(tmp_path) as w:
        esc_id, ts = await emergency(w)
        await approve(w, esc_id, ts, "2.001")

        w.daemon.clock.advance(10 * 60)
        await w.daemon.settle()
        w.daemon.clock.step(40 * 60)
        await w.daemon.settle()
        w.daemon.clock.advance(60)
        await w.daemon.settle()
        assert nudges(w, ts) == []
        assert "update_overdue" not in await w.daemon.events(esc_id)
        w.daemon.clock.advance(20 * 60)  # 31 minutes really passed
        await w.daemon.settle()
        assert len(nudges(w, ts)) == 1



async def nudge_after_ack(w: World) -> str:
    """An S1 approved, its page acknowledged by PagerDuty user PTINA, then 35 quiet minutes:
    the one nudge's text."""
    esc_id, ts = await emergency(w)
    await approve(w, esc_id, ts, "2.001")
    engaged = w.daemon.clock.now()
    [page] = w.pagerduty.pages
    ack = page_event("incident.acknowledged", page["incident_key"], page["id"],
                     event_id="ev-ack", agent="Tina <!here>")
    ack["event"]["data"]["assignees"] = [
        {"id": "PTINA", "type": "user_reference", "summary": "Tina <!here>"}]
    assert (await w.daemon.pagerduty(ack)).status == 202
    await w.daemon.settle()
    await at_minute(w, engaged, 35)
    [nudge] = nudges(w, ts)
    return nudge


async def test_the_nudge_mentions_the_engineer_who_acknowledged_the_page(tmp_path: Path) -> None:
    """Named in words only, the engineer holding a quiet emergency would not hear of the nudge:
    their PagerDuty email, found in Slack, makes it a mention Slack notifies them of."""
    async with world(tmp_path) as w:
        w.pagerduty.set_user("PTINA", "tina@example.com", name="Tina <!here>")
        w.slack.users_by_email["tina@example.com"] = "UTINA"
        nudge = await nudge_after_ack(w)
        assert "<@UTINA> (acknowledged the page)" in nudge
        assert "<!here>" not in nudge


async def test_a_responder_slack_does_not_know_is_named_in_words(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.pagerduty.set_user("PTINA", "tina@elsewhere.example", name="Tina <!here>")
        nudge = await nudge_after_ack(w)
        assert "Tina &lt;!here&gt; (acknowledged the page)" in nudge
        assert await w.daemon.dead_jobs() == []
