"""The whole program, end to end, over real HTTP: an emergency asks the SMOC, is approved,
pages Tier 2 once, is followed in the thread, and leaves exactly one retro issue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from daemon.sources.slack_ids import APPROVE_ACTION, DECLINE_ACTION
from daemon.standins.faults import Fault
from tests.world import (
    BACKUP,
    CHANNEL,
    SMOC,
    STRANGER,
    button,
    decline_form,
    emergency,
    incident,
    page_event,
    world,
)


@pytest.mark.parametrize("kind", ["gitlab", "github", "jira"])
async def test_saturday_night_emergency_pages_once_and_opens_one_retro(tmp_path: Path,
                                                                       kind: str) -> None:
    async with world(tmp_path, kind) as w:
        esc_id, ts = await emergency(w)
        text = str(w.approval_posts()[0].args)
        assert f"<@{SMOC}>" in text
        assert "Support exhausted knowledge" in text
        assert await w.daemon.events(esc_id) == ["received", "classified", "approval_requested"]

        # Someone who is not an approver is refused, privately, and nothing is paged.
        await w.daemon.slack_interaction(button(esc_id, STRANGER, APPROVE_ACTION, ts, "1.001"))
        await w.daemon.settle()
        assert w.pagerduty.pages == []
        refusal = w.slack.ephemerals[-1].args
        assert refusal["user"] == STRANGER
        assert "Only the Support Manager on Call" in refusal["text"]

        # The SMOC taps Approve three times on a bad connection: one decision, one page.
        for n in range(3):
            response = await w.daemon.slack_interaction(
                button(esc_id, SMOC, APPROVE_ACTION, ts, f"2.00{n}"))
            assert response.status == 200
        await w.daemon.settle()
        [page] = w.pagerduty.pages
        assert page["incident_key"] == f"tier2gate-{esc_id}"
        details = w.pagerduty.page_attempts[0]["incident"]["body"]["details"]
        for fact in ("Checkout is down for Acme", "Why: ", "approved by USMOC",
                     f"slack thread: https://slack.com/archives/{CHANNEL}/p{ts.replace('.', '')}",
                     "incident: https://app.incident.io/"):
            assert fact in details, details
        events = await w.daemon.events(esc_id)
        assert events.count("approved") == 1
        assert events.count("paged") == 1
        assert events.count("decision_ignored") == 2
        assert "Approved by" in str(w.slack.messages[(CHANNEL, ts)].blocks)

        # Tier 2 acknowledges in PagerDuty; the thread hears about it.
        ack = page_event("incident.acknowledged", page["incident_key"], page["id"],
                         event_id="ev-ack")
        assert (await w.daemon.pagerduty(ack)).status == 202
        await w.daemon.settle()
        assert "acknowledged" in await w.daemon.events(esc_id)
        thread = [m.text for m in w.slack.thread(CHANNEL, ts)]
        assert any("acknowledged by Tina Tier2" in t for t in thread)

        # The incident is closed in incident.io: exactly one retro issue, with the timeline.
        closed = incident(category="closed", updated_at="2026-11-21T03:30:00Z",
                          event="public_incident.incident_status_updated_v2")
        await w.daemon.incident_io(closed)
        await w.daemon.settle()
        [issue] = w.tracker.issues
        assert f"tier2gate-retro-{esc_id}" in issue.labels
        for expected in ("Checkout is down for Acme", "Acme Corp", "approval_requested",
                         "paged", "acknowledged", "which doc or error message"):
            assert expected.lower() in issue.body.lower()
        assert "retro_opened" in await w.daemon.events(esc_id)

        # Everything delivered again afterwards changes nothing.
        await w.daemon.incident_io(closed)
        await w.daemon.pagerduty(ack)
        await w.daemon.slack_interaction(button(esc_id, SMOC, APPROVE_ACTION, ts, "9.9"))
        await w.daemon.settle()
        assert len(w.tracker.issues) == 1
        assert len(w.pagerduty.pages) == 1
        assert len(w.approval_posts()) == 1
        assert await w.daemon.dead_jobs() == []
        metrics = w.daemon.metrics
        assert metrics.escalations.labels("emergency")._value.get() == 1
        sample = metrics.registry.get_sample_value
        assert sample("tier2gate_approval_latency_seconds_count") == 1
        assert sample("tier2gate_page_latency_seconds_count") == 1


async def test_decline_asks_for_a_reason_and_never_pages(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        esc_id, ts = await emergency(w)
        await w.daemon.slack_interaction(button(esc_id, BACKUP, DECLINE_ACTION, ts, "3.001"))
        await w.daemon.settle()
        [view] = w.slack.views
        assert esc_id in str(view)
        await w.daemon.slack_interaction(
            decline_form(esc_id, BACKUP, ts, "Customer agreed to wait for Monday"))
        await w.daemon.settle()
        timeline = await w.daemon.store.timeline(esc_id)
        [declined] = [e for e in timeline if e.event == "declined"]
        assert (declined.actor, declined.details["reason"]) == (
            BACKUP, "Customer agreed to wait for Monday")
        assert "Declined by" in str(w.slack.messages[(CHANNEL, ts)].blocks)
        declines = w.daemon.metrics.declines.labels("given")  # never the reason itself
        assert declines._value.get() == 1
        assert w.pagerduty.pages == []
        # It becomes a request for help, and resolving it opens no retro.
        [rfh] = w.tracker.issues
        assert f"tier2gate-rfh-{esc_id}" in rfh.labels
        await w.daemon.incident_io(incident(category="closed", updated_at="2026-11-21T04:00:00Z"))
        await w.daemon.settle()
        assert [i.labels for i in w.tracker.issues] == [rfh.labels]


async def test_slack_failing_for_a_while_still_delivers_the_approval_once(tmp_path: Path
                                                                          ) -> None:
    async with world(tmp_path) as w:
        w.slack.faults.add(Fault(status=500), times=2)
        w.slack.faults.add(Fault(status=429, retry_after_s=0.1), times=2)
        assert (await w.daemon.incident_io(incident())).status == 202
        for _ in range(30):  # let the retries' backoff (and Slack's Retry-After) elapse
            await w.daemon.settle()
            if w.approval_posts():
                break
            w.daemon.clock.advance(1.0)
        assert w.slack.faults.pending == 0
        assert w.slack.faults.injected == 4
        assert len(w.approval_posts()) == 1
        [row] = await w.daemon.escalations()
        assert "approval_requested" in await w.daemon.events(row.id)


async def test_the_approval_message_names_the_backups_when_the_smoc_is_unknown(tmp_path: Path
                                                                              ) -> None:
    async with world(tmp_path) as w:
        w.pagerduty.set_oncall("PSMOC01", "PNOSLACK", "nobody@example.com")
        esc_id, _ts = await emergency(w)
        text = str(w.approval_posts()[0].args)
        assert f"<@{BACKUP}>" in text
        assert "no Slack account" in text
        assert (await w.daemon.store.timeline(esc_id))[-1].details["to"] == [BACKUP]


async def test_approval_timeout_pages_with_the_policy_fallback(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        esc_id, ts = await emergency(w)
        w.daemon.clock.advance(10 * 60)
        await w.daemon.settle()
        assert any("Reminder" in m.text for m in w.slack.thread(CHANNEL, ts))
        w.daemon.clock.advance(10 * 60)
        await w.daemon.settle()
        events = await w.daemon.events(esc_id)
        assert events[-3:] == ["approval_reminded", "approval_timed_out", "paged"]
        assert len(w.pagerduty.pages) == 1
        assert w.daemon.metrics.approval_timeouts.labels("page")._value.get() == 1


async def test_shadow_mode_decides_everything_and_pages_nobody(tmp_path: Path) -> None:
    async with world(tmp_path, mode="shadow") as w:
        esc_id, ts = await emergency(w)
        assert "SHADOW" in str(w.approval_posts()[0].args)
        await w.daemon.slack_interaction(button(esc_id, SMOC, APPROVE_ACTION, ts, "4.001"))
        await w.daemon.settle()
        await w.daemon.incident_io(incident(category="closed", updated_at="2026-11-21T05:00:00Z"))
        await w.daemon.settle()
        events = await w.daemon.events(esc_id)
        assert "would_have_paged" in events
        assert "would_have_opened_retro" in events
        assert w.pagerduty.pages == []
        assert w.tracker.issues == []


async def test_an_s1_without_criteria_becomes_an_emergency_after_30_minutes(tmp_path: Path
                                                                            ) -> None:
    async with world(tmp_path) as w:
        created = w.daemon.clock.now()
        body = incident(exhausted=False)
        inner = body["public_incident.incident_created_v2"]
        from daemon.clock import iso

        inner["created_at"] = inner["updated_at"] = iso(created)
        await w.daemon.incident_io(body)
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        assert row.state == "rfh"
        assert w.approval_posts() == []
        w.daemon.clock.advance(30 * 60)
        await w.daemon.settle()
        stored = await w.daemon.store.get_escalation(row.id)
        assert stored is not None and stored.state == "awaiting_approval"
        assert len(w.approval_posts()) == 1


def escalation_form(view: dict[str, object], user: str, title: str, severity: str,
                    criteria: list[str]) -> dict[str, Any]:
    """The view_submission Slack sends when the support engineer presses Escalate."""
    from daemon.sources.slack_ids import CRITERIA, CUSTOMER, SEVERITY, TITLE

    return {
        "type": "view_submission", "user": {"id": user, "username": user.lower()},
        "api_app_id": "A1", "trigger_id": "trig-submit", "team": {"id": "T1"},
        "view": {**view, "id": "V0FORM42", "state": {"values": {
            TITLE[0]: {TITLE[1]: {"type": "plain_text_input", "value": title}},
            CUSTOMER[0]: {CUSTOMER[1]: {"type": "plain_text_input", "value": "Initech"}},
            SEVERITY[0]: {SEVERITY[1]: {"type": "static_select",
                                        "selected_option": {"value": severity}}},
            CRITERIA[0]: {CRITERIA[1]: {"type": "checkboxes", "selected_options": [
                {"value": name} for name in criteria]}},
        }}},
    }


async def test_tier2_in_slack_declares_an_escalation_that_pages_and_gets_a_retro(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        assert (await w.daemon.slack_command("Payments API returns 500s")).status == 200
        await w.daemon.settle()
        [view] = w.slack.views
        text = str(view)
        assert "Payments API returns 500s" in text  # the command's text prefills the title
        assert "Support exhausted knowledge" in text
        assert "S1" in text
        form = escalation_form(view, "USUPPORT", "Payments API returns 500s", "S1",
                               ["support_exhausted_knowledge", "production_unstable"])
        assert (await w.daemon.slack_interaction(form)).status == 200
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        assert (row.source, row.external_id, row.outcome) == ("slack", "V0FORM42", "emergency")
        [(_channel, ts)] = [key for key, message in w.slack.messages.items()
                            if key[0] == CHANNEL and not message.thread_ts]
        await w.daemon.slack_interaction(button(row.id, SMOC, APPROVE_ACTION, ts, "7.001"))
        await w.daemon.settle()
        [page] = w.pagerduty.pages
        # A Slack-declared escalation ends when Tier 2 resolves the page.
        resolved = page_event("incident.resolved", page["incident_key"], page["id"],
                              event_id="ev-res")
        await w.daemon.pagerduty(resolved)
        await w.daemon.settle()
        [issue] = w.tracker.issues
        assert f"tier2gate-retro-{row.id}" in issue.labels
        assert "Initech" in issue.body


def huge(name: str, event: str = "public_incident.incident_created_v2", *,
         category: str = "live", updated_at: str | None = None) -> dict[str, object]:
    """The Saturday-night incident, named with 45,000 characters (seen in production)."""
    body = incident(event=event, category=category, updated_at=updated_at)
    inner = body[event]
    target = inner.get("incident", inner)
    target["name"] = name
    return body


@pytest.mark.parametrize("kind", ["gitlab", "github", "jira"])
async def test_a_45000_character_incident_name_still_asks_pages_and_opens_the_retro(
        tmp_path: Path, kind: str) -> None:
    name = "Checkout is down for Acme " + "x" * 45_000
    async with world(tmp_path, kind) as w:
        assert (await w.daemon.incident_io(huge(name))).status == 202
        await w.daemon.settle()
        [post] = w.approval_posts()  # Slack did not refuse it (msg_too_long, invalid_blocks)
        [row] = await w.daemon.escalations()
        assert "approval_requested" in await w.daemon.events(row.id)
        [(_channel, ts)] = [k for k, m in w.slack.messages.items() if not m.thread_ts]
        header = w.slack.messages[(CHANNEL, ts)].blocks[0]["text"]["text"]
        assert header.startswith("Page Tier 2? Checkout is down for Acme") and len(header) == 150
        assert header.endswith("…") and len(post.args["text"]) < 1000

        await w.daemon.slack_interaction(button(row.id, SMOC, APPROVE_ACTION, ts, "2.001"))
        await w.daemon.settle()
        [page] = w.pagerduty.pages
        assert len(page["title"]) <= 1024 and page["title"].endswith("…")

        closed = huge(name, event="public_incident.incident_status_updated_v2",
                      category="closed", updated_at="2026-11-21T03:30:00Z")
        await w.daemon.incident_io(closed)
        await w.daemon.settle()
        [issue] = w.tracker.issues
        title_max = {"gitlab": 255, "github": 256, "jira": 255}[kind]
        assert len(issue.title) == title_max and issue.title.endswith("…")
        # the whole name is kept where it fits: GitLab's and GitHub's bodies, not Jira's 32,767
        assert (name in issue.body) is (kind != "jira")
        assert await w.daemon.dead_jobs() == []
