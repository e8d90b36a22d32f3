"""A support desk ticket escalates end to end, and the ticket hears of every step once.

Zendesk trigger deliveries and Jira Service Management admin webhooks, signed as the vendors
sign them, against the in-process daemon; the daemon is stopped and started again on the same
SQLite file in the middle (while the SMOC is being asked), deliveries come back (Zendesk and
Jira retry, a replay under a new id), and one note's answer is lost after the desk kept it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse

from daemon.settings import Settings
from daemon.sources.slack_ids import APPROVE_ACTION
from daemon.standins.desks import FakeDesk, FakeJsm, FakeZendesk
from daemon.standins.pagerduty import FakePagerDuty
from daemon.standins.slack import FakeSlack
from daemon.standins.trackers import FakeGitLab
from tests.harness import Harness, running
from tests.world import (
    CHANNEL,
    OPENED,
    PD_TOKEN,
    SLACK_TOKEN,
    SMOC,
    SMOC_EMAIL,
    SMOC_SCHEDULE,
    TRACKER_TOKEN,
    button,
    settings_for,
    stamp,
)

ZD_SECRET = "zendesk-signing-secret-RECOGNISABLE"
ZD_TOKEN = "zendesk-api-token-RECOGNISABLE"
JIRA_SECRET = "jira-webhook-secret-RECOGNISABLE"
JSM_TOKEN = "jsm-api-token-RECOGNISABLE"
AGENT = "agent@example.com"
EXHAUSTED_ID = "360001"


@dataclass
class Desks:
    slack: FakeSlack
    pagerduty: FakePagerDuty
    zendesk: FakeZendesk
    jsm: FakeJsm
    settings: Settings


@asynccontextmanager
async def desks(tmp_path: Path) -> AsyncIterator[Desks]:
    async with AsyncExitStack() as stack:
        slack = await stack.enter_async_context(
            FakeSlack(token=SLACK_TOKEN, users_by_email={SMOC_EMAIL: SMOC}))
        pagerduty = await stack.enter_async_context(
            FakePagerDuty(token=PD_TOKEN, ca_file=tmp_path / "pd-ca.pem"))
        pagerduty.set_oncall(SMOC_SCHEDULE, "PSMOCUSER", SMOC_EMAIL)
        tracker = FakeGitLab(TRACKER_TOKEN, "ops/retros")
        await tracker.start()
        stack.push_async_callback(tracker.close)
        zendesk = await stack.enter_async_context(FakeZendesk(AGENT, ZD_TOKEN))
        jsm = await stack.enter_async_context(FakeJsm(AGENT, JSM_TOKEN))
        assert isinstance(zendesk, FakeZendesk) and isinstance(jsm, FakeJsm)
        settings = settings_for(
            slack, pagerduty, tracker, "gitlab",
            zendesk={"webhook_secret": ZD_SECRET, "url": zendesk.url, "email": AGENT,
                     "api_token": ZD_TOKEN,
                     "field_names": {EXHAUSTED_ID: "Support exhausted knowledge"}},
            jsm={"webhook_secret": JIRA_SECRET, "url": jsm.url, "email": AGENT,
                 "api_token": JSM_TOKEN,
                 "field_names": {"customfield_10050": "Support exhausted knowledge"}})
        yield Desks(slack, pagerduty, zendesk, jsm, settings)


def zendesk_ticket(ticket_id: str = "4242", *, updated_at: float = OPENED) -> dict[str, Any]:
    """A ticket as the trigger body of docs/setup/zendesk.md renders it: every value text."""
    return {
        "id": ticket_id, "subject": "Checkout is down for Acme <@U0HOSTILE>",
        "priority": "Urgent", "status": "Open", "tags": "tier2 checkout",
        "organization": "Acme Corp", "group": "Platform Support", "brand": "Acme",
        "url": f"https://acme.zendesk.com/agent/tickets/{ticket_id}",
        "created_at": stamp(OPENED), "updated_at": stamp(updated_at),
        "custom_fields": [{"id": EXHAUSTED_ID, "value": "Yes"}],
        "updated_by": {"name": "Sam Support", "email": "sam@example.com"},
    }


def jsm_issue(now: float, key: str = "SD-7") -> dict[str, Any]:
    """A `jira:issue_created` admin webhook body for a JSM request."""
    return {
        "timestamp": int(now * 1000), "webhookEvent": "jira:issue_created",
        "user": {"accountId": "5b10a2", "displayName": "Sam Support"},
        "issue": {"id": "10002", "key": key,
                  "self": "https://acme.atlassian.net/rest/api/2/issue/10002",
                  "fields": {"summary": "Checkout is down [~accountid:5b10a2]",
                             "priority": {"name": "Highest"},
                             "status": {"name": "Waiting for support",
                                        "statusCategory": {"key": "new"}},
                             "project": {"key": "SD"}, "labels": ["tier2"],
                             "created": "2026-11-21T02:00:00.000+0000",
                             "updated": "2026-11-21T02:00:00.000+0000",
                             "customfield_10050": {"value": "Yes"},
                             "customfield_10002": [{"name": "Acme Corp"}]}},
    }


async def post_zendesk(d: Harness, desk: FakeZendesk, ticket: dict[str, Any],
                       invocation: str) -> ClientResponse:
    sent = datetime.fromtimestamp(d.clock.now(), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body, headers = desk.signed(ticket, ZD_SECRET, sent, invocation)
    return await d.client.post("/webhooks/zendesk", data=body, headers=headers)


async def post_jira(d: Harness, desk: FakeJsm, payload: dict[str, Any], identifier: str
                    ) -> ClientResponse:
    body, headers = desk.signed(payload, JIRA_SECRET, identifier)
    return await d.client.post("/webhooks/jira", data=body, headers=headers)


async def approve(w: Desks, d: Harness) -> None:
    [row] = await d.escalations()
    [(_channel, ts)] = [key for key, message in w.slack.messages.items()
                        if key[0] == CHANNEL and not message.thread_ts]
    assert (await d.slack_interaction(button(row.id, SMOC, APPROVE_ACTION, ts, "1.1"))
            ).status == 200
    await d.settle()


def steps(desk: FakeDesk, ticket: str) -> list[str]:
    """The step of every internal note on the ticket (from its marker), sorted: notes of one
    moment are separate jobs, so their order is not promised."""
    return sorted(note.rsplit(":", 1)[-1] for note in desk.notes(ticket))


def note(desk: FakeDesk, ticket: str, step: str) -> str:
    [found] = [n for n in desk.notes(ticket) if n.endswith(f":{step}")]
    return found


BOTH = ["approval_requested", "classified-emergency"]
ALL = ["approval_requested", "approved", "classified-emergency", "paged"]


async def test_a_zendesk_ticket_asks_the_smoc_and_each_step_is_noted_once(
        tmp_path: Path) -> None:
    async with desks(tmp_path) as w:
        w.zendesk.add_ticket("4242")
        async with running(tmp_path, w.settings) as d:
            assert (await post_zendesk(d, w.zendesk, zendesk_ticket(), "inv-1")).status == 202
            assert (await post_zendesk(d, w.zendesk, zendesk_ticket(), "inv-1")).status == 200
            w.zendesk.lose_answers = 1  # the first note is kept, its answer lost: retried
            await d.settle()
            [row] = await d.escalations()
            assert row.state == "awaiting_approval"
            assert steps(w.zendesk, "4242") == BOTH
        # A restart while the SMOC is asked; Zendesk retries, and a replay comes under a new id.
        async with running(tmp_path, w.settings) as d:
            assert (await post_zendesk(d, w.zendesk, zendesk_ticket(), "inv-1")).status == 200
            assert (await post_zendesk(d, w.zendesk, zendesk_ticket(), "inv-2")).status == 202
            await d.settle()
            await approve(w, d)
            assert (await post_zendesk(d, w.zendesk, zendesk_ticket(), "inv-3")).status == 202
            await d.settle()
            assert await d.dead_jobs() == []
        assert len(w.pagerduty.pages) == 1
        assert steps(w.zendesk, "4242") == ALL
        assert all(not c.public for c in w.zendesk.comments["4242"])
        assert f"Approved by Slack user {SMOC}" in note(w.zendesk, "4242", "approved")
        assert "Tier 2 paged: https://" in note(w.zendesk, "4242", "paged")
        assert "(support exhausted knowledge)" in note(w.zendesk, "4242", "classified-emergency")


async def test_a_jsm_request_asks_the_smoc_and_each_step_is_noted_once(tmp_path: Path) -> None:
    async with desks(tmp_path) as w:
        w.jsm.add_ticket("SD-7")
        async with running(tmp_path, w.settings) as d:
            payload = jsm_issue(d.clock.now())
            assert (await post_jira(d, w.jsm, payload, "wh-1")).status == 202
            assert (await post_jira(d, w.jsm, payload, "wh-1")).status == 200
            w.jsm.lose_answers = 1
            await d.settle()
            [row] = await d.escalations()
            assert (row.source, row.external_id, row.state) == ("jsm", "SD-7",
                                                                "awaiting_approval")
        async with running(tmp_path, w.settings) as d:
            assert (await post_jira(d, w.jsm, payload, "wh-1")).status == 200
            assert (await post_jira(d, w.jsm, payload, "wh-2")).status == 202
            await d.settle()
            await approve(w, d)
            assert await d.dead_jobs() == []
        assert len(w.pagerduty.pages) == 1
        assert steps(w.jsm, "SD-7") == ALL
        assert all(not c.public for c in w.jsm.comments["SD-7"])
        assert "[PagerDuty incident|https://" in note(w.jsm, "SD-7", "paged")
