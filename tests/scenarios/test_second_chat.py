"""The approval flow on a second chat: the text chat (`daemon/integrations/textchat.py`), with
the real PagerDuty and tracker stand-ins. The Slack stand-in is running and configured, and
hears nothing: everything people read and press goes through the text chat."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from daemon.integrations.base import ApprovalAnswer
from daemon.integrations.textchat import TextChat, TextMessage
from daemon.jobs.answers import ANSWER, SOURCE, record_answer
from daemon.jobs.forms import NO_FORMS
from daemon.sources.slack import COMMAND
from daemon.store import DeliveryState, JobState
from tests.ee_support import EE_CHANNEL, engineer, policy_with_ee, roster_file, rotation
from tests.world import (
    BACKUP,
    CHANNEL,
    SMOC,
    SMOC_EMAIL,
    STRANGER,
    World,
    incident,
    page_event,
    world,
)


@asynccontextmanager
async def text_world(tmp_path: Path, kind: str = "gitlab", **overrides: Any
                     ) -> AsyncIterator[tuple[World, TextChat]]:
    chat = TextChat(users_by_email={SMOC_EMAIL: SMOC})
    async with world(tmp_path, kind, chat=chat.roles(), **overrides) as w:
        yield w, chat
        assert w.slack.calls == [] and w.slack.ephemerals == [] and w.slack.views == []
        assert await w.daemon.dead_jobs() == []


async def emergency(w: World, chat: TextChat) -> tuple[str, TextMessage]:
    """The Saturday-night S1, declared: (escalation id, the approval request)."""
    assert (await w.daemon.incident_io(incident())).status == 202
    await w.daemon.settle()
    [row] = await w.daemon.escalations()
    [request] = [m for m in chat.messages
                 if m.channel == CHANNEL and m.escalation_id == row.id and not m.thread_ts]
    return row.id, request


async def answer(w: World, given: ApprovalAnswer) -> bool:
    """The answer arrives (False: the same answer arrived before), and its effects are done."""
    new = await record_answer(w.daemon.store, given)
    await w.daemon.settle()
    return new


@pytest.mark.parametrize("kind", ["gitlab", "jira"])
async def test_approved_on_the_text_chat_pages_once_and_opens_one_retro(tmp_path: Path,
                                                                         kind: str) -> None:
    async with text_world(tmp_path, kind) as (w, chat):
        esc_id, request = await emergency(w, chat)
        for fact in ("Page Tier 2? Checkout is down for Acme", "INC-4242 · Acme Corp",
                     f"Who decides: @{SMOC} (SMOC), @{BACKUP}"):
            assert fact in request.text, request.text
        assert request.buttons
        assert await w.daemon.events(esc_id) == ["received", "classified", "approval_requested"]

        # The SMOC presses Approve twice before the message changes; the first press arrives
        # twice: one decision, one page.
        first, second = (chat.press(request.ref, SMOC, "Approve") for _ in range(2))
        assert await record_answer(w.daemon.store, first)
        assert not await record_answer(w.daemon.store, first)
        assert await answer(w, second)
        [page] = w.pagerduty.pages
        assert page["incident_key"] == f"tier2gate-{esc_id}"
        events = await w.daemon.events(esc_id)
        assert (events.count("approved"), events.count("paged")) == (1, 1)
        assert events.count("decision_ignored") == 1
        assert f"Approved by @{SMOC} at " in request.text
        assert request.text.endswith(": paging Tier 2")
        with pytest.raises(ValueError, match="no 'Approve' button"):
            chat.press(request.ref, SMOC, "Approve")

        ack = page_event("incident.acknowledged", page["incident_key"], page["id"],
                         event_id="ev-ack")
        assert (await w.daemon.pagerduty(ack)).status == 202
        await w.daemon.settle()
        thread = [m.text for m in chat.thread(request.ref)]
        assert any("acknowledged by Tina Tier2" in t for t in thread), thread
        assert not any("<@" in t or "&lt;" in t for t in thread), thread

        await w.daemon.incident_io(incident(
            category="closed", updated_at="2026-11-21T03:30:00Z",
            event="public_incident.incident_status_updated_v2"))
        await w.daemon.settle()
        [issue] = w.tracker.issues
        assert f"tier2gate-retro-{esc_id}" in issue.labels
        assert "retro_opened" in await w.daemon.events(esc_id)


async def test_a_click_by_someone_who_may_not_decide_is_refused_in_plain_text(tmp_path: Path
                                                                            ) -> None:
    async with text_world(tmp_path) as (w, chat):
        esc_id, request = await emergency(w, chat)
        await answer(w, chat.press(request.ref, STRANGER, "Approve"))
        [refusal] = chat.seen_only_by(STRANGER)
        assert "Only the Support Manager on Call" in refusal.text
        assert "<@" not in refusal.text and f"@{SMOC}" in refusal.text
        assert w.pagerduty.pages == []
        assert "approved" not in await w.daemon.events(esc_id)
        assert request.buttons  # still waiting for someone who may decide


async def test_declined_with_a_reason_on_the_text_chat_becomes_a_request_for_help(
        tmp_path: Path) -> None:
    async with text_world(tmp_path) as (w, chat):
        esc_id, request = await emergency(w, chat)
        await answer(w, chat.press(request.ref, BACKUP, "Decline"))
        [question] = chat.seen_only_by(BACKUP)
        assert question.thread_ts == request.ts and "Answer with the reason" in question.text
        assert "declined" not in await w.daemon.events(esc_id)  # nothing decided yet

        await answer(w, chat.give_reason(request.ref, BACKUP,
                                         "Customer agreed to wait for Monday"))
        [declined] = [e for e in await w.daemon.store.timeline(esc_id) if e.event == "declined"]
        assert (declined.actor, declined.details["reason"]) == (
            BACKUP, "Customer agreed to wait for Monday")
        assert f"Declined by @{BACKUP}" in request.text
        assert request.text.endswith(": Customer agreed to wait for Monday")
        assert w.pagerduty.pages == []
        [rfh] = w.tracker.issues
        assert f"tier2gate-rfh-{esc_id}" in rfh.labels
        assert "rfh_notice_posted" in await w.daemon.events(esc_id)
        assert any(m.channel == CHANNEL and not m.thread_ts and not m.escalation_id
                   for m in chat.messages)  # the request-for-help notice


async def test_the_text_chat_is_reminded_then_the_timeout_pages_with_the_policy_fallback(
        tmp_path: Path) -> None:
    async with text_world(tmp_path) as (w, chat):
        esc_id, request = await emergency(w, chat)
        w.daemon.clock.advance(10 * 60)
        await w.daemon.settle()
        [reminder] = [m.text for m in chat.thread(request.ref) if "Reminder" in m.text]
        assert f"@{SMOC}" in reminder and "<@" not in reminder
        w.daemon.clock.advance(10 * 60)
        await w.daemon.settle()
        events = await w.daemon.events(esc_id)
        assert events[-3:] == ["approval_reminded", "approval_timed_out", "paged"]
        assert len(w.pagerduty.pages) == 1
        assert "No decision in time at " in request.text
        assert request.text.endswith(": paging Tier 2")


async def test_without_ee_offers_the_ee_step_is_skipped_and_says_why(tmp_path: Path) -> None:
    """The policy offers requests for help to the EEs and one is on rotation, but the text
    chat cannot offer: the escalation goes on at once, and the timeline says why."""
    policy = policy_with_ee(tmp_path / "policy.yaml", emergency_wait_minutes=None)
    roster = roster_file(tmp_path / "ee-roster.yaml", [rotation(
        "2026-11-16", "2026-11-29", engineer("UEE0ADA", "Ada Lovelace"))])
    async with text_world(tmp_path, policy_file=str(policy),
                          ee={"roster_file": str(roster), "channel": EE_CHANNEL}) as (w, chat):
        body = incident(severity="SEV3", exhausted=False)
        assert (await w.daemon.incident_io(body)).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        [skipped] = [e for e in await w.daemon.store.timeline(row.id)
                     if e.event == "ee_skipped"]
        assert skipped.details["why"] == "the chat cannot offer escalations to the EEs"
        [handoff] = [m for m in chat.messages if m.channel == EE_CHANNEL]  # no offer there
        assert "EE rotation 2026-11-16..2026-11-29 starts" in handoff.text
        [rfh] = w.tracker.issues  # on the request-for-help path at once
        assert f"tier2gate-rfh-{row.id}" in rfh.labels


async def test_without_forms_tier2_is_not_offered_and_the_person_hears_so(tmp_path: Path
                                                                         ) -> None:
    async with text_world(tmp_path) as (w, chat):
        assert (await w.daemon.slack_command("Checkout is down")).status == 200
        await w.daemon.settle()
        [told] = chat.seen_only_by("USUPPORT")
        assert told.text == NO_FORMS
        assert await w.daemon.escalations() == []
        [job] = [j for state in JobState for j in await w.daemon.store.list_jobs(state)
                 if j.kind == COMMAND]
        delivery = await w.daemon.store.get_delivery(int(job.payload["delivery"]))
        assert delivery is not None
        assert (delivery.state, delivery.note) == (DeliveryState.IGNORED, NO_FORMS)


async def test_a_stored_answer_that_is_none_is_set_aside_not_retried(tmp_path: Path) -> None:
    async with text_world(tmp_path) as (w, _chat):
        row = await w.daemon.store.record_delivery(SOURCE, "garbled", ANSWER, b"{not json",
                                                   ANSWER)
        assert row is not None
        await w.daemon.settle()
        delivery = await w.daemon.store.get_delivery(row)
        assert delivery is not None and delivery.state is DeliveryState.IGNORED
        assert delivery.note.startswith("not an approval answer")


SLACK_MARKUP = ("<@", "<http", "*", "&lt;", "&amp;")
"""What Slack's mrkdwn looks like (a mention, a link, bold, an escape): none of it belongs in
what the text chat shows."""


def no_slack_markup(text: str) -> bool:
    return not any(mark in text for mark in SLACK_MARKUP)


async def test_a_request_for_help_notice_reaches_the_text_chat_as_plain_text(tmp_path: Path
                                                                            ) -> None:
    """Declined with a reason: the notice names the decider, says the reason as written and
    links only what people there can open (no Slack thread)."""
    async with text_world(tmp_path) as (w, chat):
        esc_id, request = await emergency(w, chat)
        await answer(w, chat.press(request.ref, BACKUP, "Decline"))
        await answer(w, chat.give_reason(request.ref, BACKUP, "Acme waits & Monday <is> fine"))
        [notice] = [m for m in chat.messages
                    if m.channel == CHANNEL and not m.thread_ts and not m.escalation_id]
        assert notice.text.startswith("Request for help queued for business hours: Checkout "
                                      "is down for Acme (INC-4242)."), notice.text
        assert f"declined by @{BACKUP}: Acme waits & Monday <is> fine" in notice.text
        assert no_slack_markup(notice.text), notice.text
        assert "slack" not in notice.text.lower()  # no link into Slack's archives
        assert "rfh_notice_posted" in await w.daemon.events(esc_id)


async def test_a_direct_note_reaches_the_text_chat_as_plain_text(tmp_path: Path) -> None:
    """Nobody can approve (the SMOC has no account on this chat, no backups): the approval
    channel hears so in words, not markup."""
    chat = TextChat()
    async with world(tmp_path, chat=chat.roles(), approval={"backup_user_ids": []}) as w:
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        [note] = [m for m in chat.messages if m.text.startswith(":rotating_light: Nobody can")]
        assert note.channel == CHANNEL and not note.only_for
        assert f"escalation {row.id} (INC-4242)" in note.text
        assert no_slack_markup(note.text), note.text
