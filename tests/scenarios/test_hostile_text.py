"""Untrusted text (an incident's name and customer field, a vendor URL, a PagerDuty agent's
name, a decline reason) never becomes a live mention, link, quick action or markup, in any
place tier2gate writes it: Slack messages and thread notes, GitLab / GitHub / Jira issues and
the dashboard. One table of hostile strings goes through all of them, end to end; the
situations seen in the attack on tier2gate have their own tests below."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from daemon.sources.slack_ids import APPROVE_ACTION, DECLINE_ACTION
from daemon.standins.slack import FakeSlack
from daemon.standins.trackers import FakeJira, FakeTracker
from tests.hostile import HOSTILE
from tests.world import (
    BACKUP,
    CHANNEL,
    SMOC,
    World,
    button,
    decline_form,
    incident,
    page_event,
    world,
)

OUR_LINK_LABELS = ("incident", "call", "runbook", "tier2gate", "page", "slack thread")
OUR_HEADINGS = ("Summary", "Durations", "Links", "Timeline (UTC)", "Root cause",
                "Corrective actions", "Documentation or error message to improve",
                "Retro checklist", "Request for help")


def hostile_incident(text: str, incident_id: str, **kwargs: Any) -> dict[str, Any]:
    """`tests.world.incident` with `text` as its name and customer, and in its URL."""
    body = incident(incident_id=incident_id, **kwargs)
    event = body["event_type"]
    inner = body[event]["incident"] if event.endswith("status_updated_v2") else body[event]
    inner["name"] = text
    inner["permalink"] = f"https://app.incident.io/incidents/{incident_id}?from={text}"
    [customer] = [e for e in inner["custom_field_entries"]
                  if e["custom_field"]["name"] == "Customer"]
    customer["values"] = [{"value_text": text}]
    return body


async def approval_ts(w: World, count: int) -> str:
    """The ts of the `count`-th approval request in the channel (1 for the first): the
    top-level messages there with blocks (notices have none)."""
    await w.daemon.settle()
    requests = [ts for (channel, ts), m in w.slack.messages.items()
                if channel == CHANNEL and not m.thread_ts and m.blocks]
    assert len(requests) == count, requests
    return requests[-1]


# --- what "neutralised" means at each sink ------------------------------------------------


def mrkdwn_texts(slack: FakeSlack) -> Iterator[str]:
    """Every text Slack reads as mrkdwn in what tier2gate sent: the top-level `text` of
    each message, update and ephemeral reply, and every mrkdwn object in its blocks."""
    for method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
        for call in slack.calls_to(method):
            yield str(call.args.get("text", ""))
            yield from _mrkdwn_in(call.args.get("blocks"))


def _mrkdwn_in(node: object) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _mrkdwn_in(item)
    elif isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            yield str(node.get("text", ""))
        for value in node.values():
            if isinstance(value, dict | list):
                yield from _mrkdwn_in(value)


DECLARER = "U02AYNF2XJM"  # the published sample's creator: a Slack user id, not free text


def assert_slack_literal(slack: FakeSlack) -> None:
    """Slack markup is `<…>`: the only ones allowed are mentions of the approvers and of the
    declarer (by the user id the source gave), and links tier2gate labelled itself, to a URL
    with no `|` of its own."""
    for text in mrkdwn_texts(slack):
        for token in re.findall(r"<([^<>]*)>", text):
            ours = token in (f"@{SMOC}", f"@{BACKUP}", f"@{DECLARER}") or re.fullmatch(
                r"https?://[^|\s]+\|(" + "|".join(OUR_LINK_LABELS) + ")", token)
            assert ours, f"live Slack markup <{token}> in {text!r}"


def assert_markdown_literal(issue_title: str, body: str) -> None:
    """GitLab / GitHub Markdown: no quick action, mention, raw HTML, link, image, heading,
    code block or list of anybody else's making; the title on one line."""
    assert not re.search(r"[\r\n\u2028\u2029\x85]", issue_title), issue_title
    assert not re.search(r"@\w", issue_title), issue_title
    body = re.sub(r"<!-- tier2gate:marker=[\w-]+ -->", "", body)
    assert not re.search(r"(?m)^\s*/", body), "a line that is a quick action"
    assert not re.search(r"@\w", body), "a mention"
    assert not re.search(r"(?<!\\)<", body), "raw HTML or an autolink"
    assert not re.search(r"(?<!\\)\]\(", body), "a link or image with a label"
    assert not re.search(r"(?m)^\s*(```|~~~|>)", body), "a code block or quote"
    for heading in re.findall(r"(?m)^\s*#+\s*(.*)$", body):
        assert heading in OUR_HEADINGS, f"a heading: {heading!r}"
    for item in re.findall(r"(?m)^\s*(?:[-+*]|\d+[.)])\s+(.*)$", body):
        assert not item.startswith(("item", "first")), f"a list item: {item!r}"


def assert_adf_literal(issue_title: str, doc: dict[str, Any]) -> None:
    """Jira: ADF text is never markup, so what matters is what the Markdown -> ADF conversion
    makes of it: no heading or code block of anybody else's making, and every link labelled
    with its own URL or by tier2gate."""
    assert not re.search(r"[\r\n\u2028\u2029\x85]", issue_title), issue_title

    def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield node
        for child in node.get("content", []):
            yield from walk(child)

    for node in walk(doc):
        assert node["type"] != "codeBlock", node
        if node["type"] == "heading":
            assert "".join(n.get("text", "") for n in node["content"]) in OUR_HEADINGS, node
        for mark in node.get("marks", []):
            if mark["type"] == "link":
                assert node["text"] in (mark["attrs"]["href"], *OUR_LINK_LABELS), node


def assert_tracker_literal(tracker: FakeTracker) -> None:
    assert tracker.issues
    for issue in tracker.issues:
        if isinstance(tracker, FakeJira):
            assert_adf_literal(issue.title, issue.payload["fields"]["description"])
        else:
            assert_markdown_literal(issue.title, issue.body)
        for note in issue.notes:
            assert_markdown_literal("", note)


def assert_html_literal(html: str, text: str) -> None:
    """The dashboard shows the text, as text."""
    assert str(escape(text.splitlines()[0])) in html
    for tag in re.findall(r"<[^\s<>]+", text):
        assert tag not in html, f"{tag} on the dashboard"


# --- one table through every sink ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["gitlab", "github", "jira"])
@pytest.mark.parametrize("text", HOSTILE)
async def test_hostile_text_stays_literal_in_every_message_issue_and_page(
        tmp_path: Path, kind: str, text: str) -> None:
    async with world(tmp_path, kind) as w:
        # An emergency, approved: the request, the decision, the page, the acknowledgement by
        # a PagerDuty user of that name, the retro issue once the incident is closed.
        assert (await w.daemon.incident_io(hostile_incident(text, "01PAGED"))).status == 202
        ts = await approval_ts(w, 1)
        [paged] = await w.daemon.escalations()
        await w.daemon.slack_interaction(button(paged.id, SMOC, APPROVE_ACTION, ts, "2.001"))
        await w.daemon.settle()
        [page] = w.pagerduty.pages
        await w.daemon.pagerduty(page_event("incident.acknowledged", page["incident_key"],
                                            page["id"], event_id="ev-ack", agent=text))
        await w.daemon.settle()
        await w.daemon.incident_io(hostile_incident(
            text, "01PAGED", category="closed", updated_at="2026-11-21T03:30:00Z",
            event="public_incident.incident_status_updated_v2"))
        await w.daemon.settle()

        # Another, declined with that reason: the request for help, its notice and issue.
        assert (await w.daemon.incident_io(hostile_incident(text, "01DECLINED"))).status == 202
        ts = await approval_ts(w, 2)
        declined = next(r for r in await w.daemon.escalations() if r.id != paged.id)
        await w.daemon.slack_interaction(button(declined.id, BACKUP, DECLINE_ACTION, ts, "3.1"))
        await w.daemon.settle()
        assert (await w.daemon.slack_interaction(
            decline_form(declined.id, BACKUP, ts, text))).status == 200
        await w.daemon.settle()

        events = await w.daemon.events(paged.id)
        assert {"acknowledged", "retro_opened"} <= set(events), events
        assert "rfh_issue_opened" in await w.daemon.events(declined.id)
        assert await w.daemon.dead_jobs() == []
        assert any("acknowledged by" in t for t in mrkdwn_texts(w.slack))
        assert any("Request for help queued" in t for t in mrkdwn_texts(w.slack))
        assert_slack_literal(w.slack)
        assert_tracker_literal(w.tracker)
        assert len(w.tracker.issues) == 2  # the retro and the request for help
        assert_html_literal(await (await w.daemon.admin.get("/")).text(), text)


# --- what was seen -----------------------------------------------------------------------


async def test_a_title_pings_nobody_from_the_request_for_help_notice(tmp_path: Path) -> None:
    """Seen: `<!channel>` in an incident's name pinged the whole channel from the notice of a
    request for help, next to a link labelled "open runbook" that went elsewhere."""
    title = "Checkout down <!channel> <https://example.invalid|open runbook>"
    async with world(tmp_path) as w:
        await w.daemon.incident_io(hostile_incident(title, "01RFH", severity="SEV3"))
        await w.daemon.settle()
        [notice] = [t for t in mrkdwn_texts(w.slack) if "Request for help queued" in t]
        assert "<!channel>" not in notice and "|open runbook>" not in notice
        assert "Checkout down &lt;!channel&gt; &lt;https://example.invalid|open runbook&gt;" \
            in notice
        assert_slack_literal(w.slack)


async def test_an_agent_name_pings_nobody_from_the_acknowledged_note(tmp_path: Path) -> None:
    """Seen: a PagerDuty user's name did the same in the "acknowledged by" thread note."""
    agent = "Tina <!channel> <https://example.invalid|open runbook>"
    async with world(tmp_path) as w:
        await w.daemon.incident_io(incident())
        ts = await approval_ts(w, 1)
        [row] = await w.daemon.escalations()
        await w.daemon.slack_interaction(button(row.id, SMOC, APPROVE_ACTION, ts, "2.001"))
        await w.daemon.settle()
        [page] = w.pagerduty.pages
        await w.daemon.pagerduty(page_event("incident.acknowledged", page["incident_key"],
                                            page["id"], event_id="ev-ack", agent=agent))
        await w.daemon.settle()
        [note] = [m.text for m in w.slack.thread(CHANNEL, ts) if "acknowledged by" in m.text]
        assert note == ("Tier 2 page acknowledged by Tina &lt;!channel&gt; "
                        "&lt;https://example.invalid|open runbook&gt;.")


async def test_a_vendor_url_cannot_choose_its_link_label(tmp_path: Path) -> None:
    """A `|` in a URL from the source would end the URL and make the rest the label."""
    async with world(tmp_path) as w:
        body = incident()
        body[body["event_type"]]["permalink"] = "https://example.invalid/x|open runbook"
        await w.daemon.incident_io(body)
        await w.daemon.settle()
        text = str(w.approval_posts()[0].args["blocks"])
        assert "<https://example.invalid/x%7Copen%20runbook|incident>" in text
        assert_slack_literal(w.slack)


async def test_a_customer_field_puts_no_quick_action_on_a_line_of_the_issue(
        tmp_path: Path) -> None:
    """Seen: a customer field `Acme\\n/assign @someone\\n/close` put `/close` on its own line of
    the request-for-help issue in GitLab."""
    async with world(tmp_path, "gitlab") as w:
        body = incident(severity="SEV3")
        [customer] = [e for e in body[body["event_type"]]["custom_field_entries"]
                      if e["custom_field"]["name"] == "Customer"]
        customer["values"] = [{"value_text": "Acme\n/assign @someone\n/close"}]
        await w.daemon.incident_io(body)
        await w.daemon.settle()
        [issue] = w.tracker.issues
        assert not re.search(r"(?m)^\s*/", issue.body), issue.body
        assert "**Acme /assign @\u2060someone /close**" in issue.body


async def test_decline_reasons_are_not_metric_labels(tmp_path: Path) -> None:
    """Seen: every decline reason became a series of `tier2gate_declines_total`."""
    async with world(tmp_path) as w:
        await w.daemon.incident_io(incident())
        ts = await approval_ts(w, 1)
        [row] = await w.daemon.escalations()
        await w.daemon.slack_interaction(button(row.id, SMOC, DECLINE_ACTION, ts, "3.001"))
        await w.daemon.settle()
        reason = 'a unique reason "} 1\nfake_metric{x="'
        await w.daemon.slack_interaction(decline_form(row.id, SMOC, ts, reason))
        await w.daemon.settle()
        metrics = w.daemon.metrics.render().decode()
        assert 'tier2gate_declines_total{reason="given"} 1.0' in metrics
        assert "unique reason" not in metrics
