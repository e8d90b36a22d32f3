"""Each vendor limit, adapter by adapter: an over-long value is shortened to exactly the limit
and the stand-in (which refuses what the vendor refuses) accepts it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from daemon.clock import ManualClock
from daemon.domain.messages import Message, Text
from daemon.integrations import pagerduty, slack
from daemon.integrations.base import EscalationFormSpec, IssueDraft, PageRequest
from daemon.integrations.tracker import github, gitlab, jira
from daemon.standins.pagerduty import FakePagerDuty
from daemon.standins.slack import FakeSlack
from daemon.standins.trackers import FakeGitHub, FakeGitLab, FakeJira, FakeTracker
from tests.integrations.test_slack import VIEW
from tests.support import START

TOKEN = "xoxb-LIMITS-token-0001"
LONG = "Checkout & <checkout-api> down " + "é" * 60_000


async def test_slack_message_parts_are_shortened_to_their_limits() -> None:
    async with FakeSlack(token=TOKEN) as fake:
        client = slack.Client(TOKEN, fake.api_url, clock=ManualClock(START))
        view = replace(VIEW, title=LONG, customer=LONG, reason=LONG, reference=LONG,
                       smoc_note=LONG)
        ref = await client.post_approval("C1", view)
        notice = await client.post_notice("C1", Message(parts=(Text(text=LONG),)))
        await client.open_escalation_form("1.2.3", EscalationFormSpec(("S1",), (), title=LONG))
    message = fake.messages[(ref.channel, ref.ts)]
    header, section, note = message.blocks[0], message.blocks[1], message.blocks[2]
    assert len(header["text"]["text"]) == slack.HEADER_MAX_CHARS
    assert len(section["text"]["text"]) <= slack.SECTION_MAX_CHARS
    assert "*Why:*" in section["text"]["text"]  # one huge field cannot push the rest out
    assert len(note["elements"][0]["text"]) <= slack.CONTEXT_TEXT_MAX_CHARS
    assert len(message.text) < slack.TEXT_MAX_CHARS
    assert len(fake.messages[(notice.channel, notice.ts)].text) == slack.TEXT_MAX_CHARS
    [form] = fake.views
    assert len(form["blocks"][0]["element"]["initial_value"]) == 150


@pytest.mark.parametrize(("args", "error"), [
    ({"channel": "C1", "text": "x" * 40_001}, "msg_too_long"),
    ({"channel": "C1", "text": "x", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]},
     "invalid_blocks"),
    ({"channel": "C1", "text": "x", "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]}, "invalid_blocks"),
    ({"channel": "C1", "text": "x", "blocks": [{"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "x"}, "value": "v" * 2001,
         "action_id": "a"}]}]}, "invalid_blocks"),
])
async def test_the_slack_stand_in_refuses_what_slack_refuses(args: dict[str, object],
                                                             error: str) -> None:
    async with FakeSlack(token=TOKEN) as fake:
        web = AsyncWebClient(token=TOKEN, base_url=fake.api_url, retry_handlers=[])
        with pytest.raises(SlackApiError) as caught:
            await web.api_call("chat.postMessage", json=args)
    assert caught.value.response["error"] == error


@pytest.mark.parametrize("events", [False, True], ids=["rest", "events"])
async def test_pagerduty_titles_are_shortened_to_1024(tmp_path: Path, events: bool) -> None:
    async with FakePagerDuty(token=TOKEN, routing_key="R" * 32,
                             ca_file=tmp_path / "ca.pem") as fake:
        client = pagerduty.Client(
            api_token=TOKEN, from_email="t2g@example.com", api_url=fake.api_url,
            events_url=fake.events_url, tier2_service_id=None if events else "PT2",
            tier2_routing_key="R" * 32, ca_file=fake.ca_file)
        try:
            await client.page(PageRequest("esc-1", "tier2gate-esc-1", LONG, "details"))
        finally:
            await client.close()
    title = fake.alerts[0]["payload"]["summary"] if events else fake.pages[0]["title"]
    assert len(title) == pagerduty.TITLE_MAX_CHARS and title.endswith("…")


def _tracker(kind: str) -> tuple[FakeTracker, str, str]:
    if kind == "gitlab":
        return FakeGitLab("glpat-LIMITS-1"), "glpat-LIMITS-1", "ops/retros"
    if kind == "github":
        return FakeGitHub("ghp_LIMITS1"), "ghp_LIMITS1", "acme/ops"
    fake = FakeJira("ATATT-LIMITS", email="bot@acme.example")
    return fake, "bot@acme.example:ATATT-LIMITS", "OPS"


@pytest.mark.parametrize(("kind", "module"), [("gitlab", gitlab), ("github", github),
                                              ("jira", jira)])
async def test_tracker_titles_bodies_and_labels_fit_and_keep_the_marker(
        kind: str, module: ModuleType) -> None:
    fake, token, project = _tracker(kind)
    await fake.start()
    clients: dict[str, type[gitlab.Client | github.Client | jira.Client]] = {
        "gitlab": gitlab.Client, "github": github.Client, "jira": jira.Client}
    made = clients[kind]
    client = made(fake.url, token, project, timeout_s=5)
    marker = "tier2gate-retro-esc-limits"
    draft = IssueDraft(title=LONG, body="## Timeline\n" + "y" * 1_100_000, marker=marker,
                       labels=("retro-" + "l" * 300,))
    try:
        ref = await client.create(draft)
        assert await client.find_by_marker(marker) == ref
    finally:
        client.close()
        await fake.close()
    [issue] = fake.issues
    limits = module.LIMITS
    assert len(issue.title) == limits.title and issue.title.endswith("…")
    assert len(issue.body) <= limits.body
    assert marker in issue.labels
    if limits.label is not None:
        assert all(len(label) <= limits.label for label in issue.labels)
    if kind != "jira":
        assert issue.body.rstrip().endswith(f"<!-- tier2gate:marker={marker} -->")
