"""The Slack adapter against a local Slack over real HTTP, with the real slack_sdk client."""

from __future__ import annotations

import json
import ssl
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import trustme
from pydantic import SecretStr

from daemon.domain.messages import message
from daemon.integrations.base import (
    ApprovalView,
    ChannelRefused,
    Decided,
    DecisionKind,
    MessageRef,
)
from daemon.integrations.slack import CHANNEL_REFUSALS, Client
from daemon.settings import ConfigError, SlackSettings, TlsSettings
from daemon.sources.slack import DeclineReasonSubmitted, parse_interaction
from daemon.sources.slack_ids import (
    APPROVE_ACTION,
    DECLINE_ACTION,
    DECLINE_CALLBACK,
    REASON_ACTION,
    REASON_BLOCK,
)
from daemon.standins.faults import Fault
from daemon.standins.slack import FakeSlack
from daemon.workers.retry import Permanent, Retry

TOKEN = "xoxb-4242-SECRET-never-in-errors"
AT = "2026-11-21 03:12 UTC"
VIEW = ApprovalView(
    escalation_id="esc-7f3k",
    title="Checkout down for ACME",
    reference="INC-1234",
    customer="ACME Corp",
    severity="S1",
    reason="S1 open 42 min and Support exhausted its knowledge",
    criteria=("support_exhausted_knowledge", "production_unstable"),
    age_minutes=42,
    weekend=True,
    off_hours=True,
    approver_ids=("USMOC", "UBACK1", "UBACK2"),
    smoc_resolved=True,
    links={"incident": "https://acme.pagerduty.com/incidents/P1",
           "runbook": "https://wiki.example.com/t2"},
)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN, users_by_email={"smoc@example.com": "USMOC"},
                         groups={"S0BACKUPS": ("UBACK1", "UBACK2")}) as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> Client:
    return Client(TOKEN, slack.api_url, timeout_s=1.0)


def texts(node: Any) -> str:
    """Every `text` string in a Block Kit tree, one per line: what a reader sees."""
    if isinstance(node, list):
        return "\n".join(texts(item) for item in node)
    if isinstance(node, dict):
        own = [node["text"]] if isinstance(node.get("text"), str) else []
        return "\n".join(own + [texts(v) for k, v in node.items() if isinstance(v, dict | list)])
    return ""


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


async def test_approval_message_carries_the_facts_and_both_buttons(
        client: Client, slack: FakeSlack) -> None:
    ref = await client.post_approval("C0APPROVE", VIEW)

    assert len(slack.calls_to("chat.postMessage")) == 1
    message = slack.messages[(ref.channel, ref.ts)]
    assert ref == MessageRef("C0APPROVE", "1700000000.000100")
    shown = texts(message.blocks)
    for fact in ("<@USMOC> (SMOC)", "backups <@UBACK1>, <@UBACK2>", "ACME Corp", "INC-1234",
                 "severity *S1*", "open 42 min", VIEW.reason, "Support exhausted knowledge",
                 "Production unstable", "Weekend · Off hours", "Checkout down for ACME",
                 "<https://acme.pagerduty.com/incidents/P1|incident>",
                 "<https://wiki.example.com/t2|runbook>"):
        assert fact in shown
    assert "SHADOW" not in shown
    assert [(b["action_id"], b["value"], b["style"]) for b in buttons(message.blocks)] == [
        (APPROVE_ACTION, "esc-7f3k", "primary"), (DECLINE_ACTION, "esc-7f3k", "danger")]
    assert "<@USMOC>" in message.text and "Checkout down for ACME" in message.text


async def test_customer_text_cannot_mention_the_channel_or_make_links(
        client: Client, slack: FakeSlack) -> None:
    view = replace(VIEW, customer="<!channel> & <https://evil.example|x>", smoc_note="<!here>")
    ref = await client.post_approval("C1", view)

    shown = texts(slack.messages[(ref.channel, ref.ts)].blocks)
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|x&gt;" in shown
    assert "<!" not in shown


async def test_long_titles_are_clipped_to_what_slack_accepts(
        client: Client, slack: FakeSlack) -> None:
    ref = await client.post_approval("C1", replace(VIEW, title="x" * 400))

    header = slack.messages[(ref.channel, ref.ts)].blocks[0]
    assert header["type"] == "header" and len(header["text"]["text"]) == 150


async def test_shadow_mode_says_nobody_will_be_paged_first(
        client: Client, slack: FakeSlack) -> None:
    ref = await client.post_approval("C1", replace(VIEW, shadow=True))

    message = slack.messages[(ref.channel, ref.ts)]
    assert "SHADOW — nobody will be paged" in texts(message.blocks[0])
    assert message.text.startswith("[SHADOW]")


async def test_a_missing_smoc_is_said_with_the_note_and_long_ages_read_in_hours(
        client: Client, slack: FakeSlack) -> None:
    note = "SMOC could not be resolved from PagerDuty: nobody on call"
    ref = await client.post_approval("C1", replace(VIEW, approver_ids=(), smoc_note=note,
                                                   age_minutes=125))

    shown = texts(slack.messages[(ref.channel, ref.ts)].blocks)
    assert "nobody can approve this request" in shown and note in shown
    assert "open 2 h 5 min" in shown


@pytest.mark.parametrize(("decided", "shadow", "line"), [
    (Decided(DecisionKind.APPROVED, "U1", AT), False,
     f"Approved by <@U1> at {AT} — paging Tier 2"),
    (Decided(DecisionKind.APPROVED, "U1", AT), True,
     f"Approved by <@U1> at {AT} — SHADOW: not paging"),
    (Decided(DecisionKind.DECLINED, "U2", AT, reason="customer's own config", paging=False),
     False, f"Declined by <@U2> at {AT}: customer's own config"),
    (Decided(DecisionKind.TIMED_OUT, at=AT), False,
     f"Approval timed out at {AT} — paging Tier 2 (policy fallback)"),
    (Decided(DecisionKind.TIMED_OUT, at=AT, paging=False), False,
     f"Approval timed out at {AT} — holding"),
])
async def test_a_decision_replaces_the_buttons_in_place(
        client: Client, slack: FakeSlack, decided: Decided, shadow: bool, line: str) -> None:
    view = replace(VIEW, shadow=shadow)
    ref = await client.post_approval("C1", view)
    await client.update_approval(ref, replace(view, decided=decided))

    message = slack.messages[(ref.channel, ref.ts)]
    assert message.updates == 1 and len(slack.calls_to("chat.postMessage")) == 1
    assert buttons(message.blocks) == []
    assert line in texts(message.blocks[-1])
    assert "Support exhausted knowledge" in texts(message.blocks)
    assert decided.kind.value.replace("_", " ") in message.text


async def test_thread_replies_and_notices(client: Client, slack: FakeSlack) -> None:
    ref = await client.post_approval("C1", VIEW)
    reply = await client.post_in_thread(ref, message("Paged Tier 2: P123"))
    notice = await client.post_notice("C0RFH", message("Request for help: INC-1234"))

    assert [m.text for m in slack.thread(ref.channel, ref.ts)] == ["Paged Tier 2: P123"]
    assert reply.ts != ref.ts and notice.channel == "C0RFH"
    assert slack.messages[(notice.channel, notice.ts)].thread_ts is None


async def test_tell_user_is_ephemeral(client: Client, slack: FakeSlack) -> None:
    await client.tell_user("C1", "U9", message("Only the SMOC or a backup can decide"))

    assert [(c.args["channel"], c.args["user"]) for c in slack.ephemerals] == [("C1", "U9")]
    assert slack.calls_to("chat.postMessage") == []


async def test_decline_form_round_trips_to_a_decline_reason(
        client: Client, slack: FakeSlack) -> None:
    await client.ask_decline_reason("111.222.valid", "esc-7f3k", MessageRef("C1", "1.2"))

    [call] = slack.calls_to("views.open")
    view = call.args["view"]
    assert call.args["trigger_id"] == "111.222.valid"
    assert view["callback_id"] == DECLINE_CALLBACK
    assert json.loads(view["private_metadata"]) == {
        "escalation_id": "esc-7f3k", "channel": "C1", "ts": "1.2"}
    [block] = view["blocks"]
    assert block["element"]["type"] == "plain_text_input" and block["element"]["multiline"]
    assert (view["submit"]["text"], view["close"]["text"]) == ("Submit", "Cancel")
    # What Slack sends back on submit: the same view with the typed state.
    state = {block["block_id"]: {block["element"]["action_id"]: {
        "type": "plain_text_input", "value": "known bug, fix ships Monday"}}}
    submission = {"type": "view_submission", "user": {"id": "USMOC", "username": "smoc"},
                  "view": {**view, "state": {"values": state}}}
    body = urlencode({"payload": json.dumps(submission)}).encode()
    assert (block["block_id"], block["element"]["action_id"]) == (REASON_BLOCK, REASON_ACTION)
    assert parse_interaction(body) == DeclineReasonSubmitted(
        "esc-7f3k", "USMOC", "smoc", "known bug, fix ships Monday", "C1", "1.2")


async def test_users_by_email_and_group_members(client: Client) -> None:
    assert await client.user_id_for_email("smoc@example.com") == "USMOC"
    assert await client.user_id_for_email("nobody@example.com") is None
    assert await client.group_members("S0BACKUPS") == ("UBACK1", "UBACK2")


async def test_a_wrong_token_is_permanent_and_reaches_slack_once(slack: FakeSlack) -> None:
    client = Client("xoxb-wrong", slack.api_url)

    with pytest.raises(Permanent, match="invalid_auth"):
        await client.user_id_for_email("smoc@example.com")
    assert len(slack.calls) == 1


CALLS: dict[str, Callable[[Client], Awaitable[object]]] = {
    "chat.postMessage": lambda c: c.post_approval("C1", VIEW),
    "chat.update": lambda c: c.update_approval(MessageRef("C1", "1.2"), VIEW),
    "thread": lambda c: c.post_in_thread(MessageRef("C1", "1.2"), message("hi")),
    "notice": lambda c: c.post_notice("C1", message("hi")),
    "chat.postEphemeral": lambda c: c.tell_user("C1", "U1", message("hi")),
    "views.open": lambda c: c.ask_decline_reason("t.1", "esc-1", MessageRef("C1", "1.2")),
    "users.lookupByEmail": lambda c: c.user_id_for_email("smoc@example.com"),
    "usergroups.users.list": lambda c: c.group_members("S0BACKUPS"),
    "conversations.history": lambda c: c.find_approval("C1", "esc-1"),
    "conversations.replies": lambda c: c.find_in_thread(MessageRef("C1", "1.2"), "k"),
}

# slack_sdk sends these as GET
READS = {"users.lookupByEmail", "usergroups.users.list", "conversations.history",
         "conversations.replies"}

FAULTS: list[tuple[Fault, type[Exception]]] = [
    *[(Fault(status=s), Permanent) for s in (400, 401, 403, 404)],
    *[(Fault(status=s), Retry) for s in (500, 502, 503)],
    (Fault(status=429, retry_after_s=7), Retry),
    (Fault(status=200, delay_s=2.0), Retry),
    (Fault(reset=True), Retry),
    (Fault(status=200, body="<html>proxy says hi</html>"), Retry),
]


def full_text(exc: BaseException) -> str:
    """The exception as a log line would show it, with its whole cause chain."""
    return "".join(traceback.format_exception(exc))


@pytest.mark.parametrize(("fault", "kind"), FAULTS, ids=repr)
@pytest.mark.parametrize("call", CALLS, ids=str)
async def test_every_call_classifies_every_failure_without_the_token(
        client: Client, slack: FakeSlack, call: str, fault: Fault, kind: type[Exception]
) -> None:
    slack.faults.add(fault, times=2)

    with pytest.raises((Retry, Permanent)) as caught:
        await CALLS[call](client)
    assert type(caught.value) is kind
    assert TOKEN not in full_text(caught.value)
    # slack_sdk does not retry (retry_handlers=[]); aiohttp itself resends a GET once after a
    # dropped connection (RFC 9112 9.3.1), which is harmless for a read.
    attempts = 2 if fault.reset and call in READS else 1
    assert slack.faults.injected == attempts and slack.calls == []


async def test_429_carries_retry_after(client: Client, slack: FakeSlack) -> None:
    slack.faults.add(Fault(status=429, retry_after_s=7))
    slack.faults.add(Fault(status=429))

    with pytest.raises(Retry) as with_header:
        await client.post_approval("C1", VIEW)
    with pytest.raises(Retry) as without_header:
        await client.post_approval("C1", VIEW)
    assert with_header.value.after_s == 7.0 and without_header.value.after_s is None


@pytest.mark.parametrize(("error", "kind"), [
    *[(e, Retry) for e in ("ratelimited", "internal_error", "fatal_error", "service_unavailable",
                           "request_timeout")],
    *[(e, Permanent) for e in ("channel_not_found", "not_in_channel", "missing_scope",
                               "invalid_blocks", "Bearer " + TOKEN)],
])
@pytest.mark.parametrize("call", CALLS, ids=str)
async def test_every_call_classifies_slack_error_codes(
        client: Client, slack: FakeSlack, call: str, error: str, kind: type[Exception]) -> None:
    method = call if "." in call else "chat.postMessage"
    slack.fail(method, error)

    with pytest.raises((Retry, Permanent)) as caught:
        await CALLS[call](client)
    # a channel only a person can fix is told apart, so the approval can go by direct message
    refused = method == "chat.postMessage" and error in CHANNEL_REFUSALS
    assert isinstance(caught.value, ChannelRefused) is refused
    assert isinstance(caught.value, kind)
    assert TOKEN not in full_text(caught.value)
    assert (error in str(caught.value)) is (TOKEN not in error)


async def test_an_unusable_api_url_is_permanent() -> None:
    with pytest.raises(Permanent, match=r"slack\.api_url"):
        await Client(TOKEN, "not a url/").post_notice("C1", message("hi"))


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def test_ca_file_is_trusted_in_addition_to_the_system_cas(
        ca: trustme.CA, tmp_path: Path) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    async with FakeSlack(token=TOKEN, ssl_context=server_context) as slack:
        assert slack.api_url.startswith("https://")
        ref = await Client(TOKEN, slack.api_url, ca_file=ca_file).post_notice("C1", message("hi"))
        with pytest.raises(Permanent, match="TLS certificate not trusted"):
            await Client(TOKEN, slack.api_url).post_notice("C1", message("hi"))
    assert ref.channel == "C1"


def test_an_unreadable_ca_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tls\.ca_file"):
        Client(TOKEN, "https://slack.com/api/", ca_file=tmp_path / "missing.pem")


async def test_from_settings_uses_the_token_and_url(slack: FakeSlack) -> None:
    settings = SlackSettings(bot_token=SecretStr(TOKEN), api_url=slack.api_url)

    ref = await Client.from_settings(settings, TlsSettings()).post_notice("C1", message("hi"))
    assert slack.messages[(ref.channel, ref.ts)].text == "hi"
    with pytest.raises(ConfigError, match="bot_token"):
        Client.from_settings(SlackSettings(), TlsSettings())


async def test_an_approval_posted_earlier_is_found_by_its_metadata(
        client: Client, slack: FakeSlack) -> None:
    assert await client.find_approval("C0APPROVE", "esc-7f3k") is None
    await client.post_notice("C0APPROVE", message("an unrelated message"))
    ref = await client.post_approval("C0APPROVE", VIEW)
    await client.post_in_thread(ref, message("a reply"))
    assert await client.find_approval("C0APPROVE", "esc-7f3k") == ref
    assert await client.find_approval("C0APPROVE", "esc-other") is None
    assert await client.find_approval("C0ELSEWHERE", "esc-7f3k") is None


async def test_the_escalation_form_opens_with_the_policys_choices(
        client: Client, slack: FakeSlack) -> None:
    from daemon.integrations.base import EscalationFormSpec

    spec = EscalationFormSpec(severities=("S1", "S2"), title="Checkout down",
                              criteria=(("support_exhausted_knowledge", "Support exhausted"),))
    await client.open_escalation_form("t.9", spec)
    [view] = slack.views
    shown = texts(view["blocks"])
    assert "Checkout down" in str(view)
    for label in ("What is wrong?", "Severity", "Support exhausted", "S1", "S2"):
        assert label in shown


async def test_a_thread_note_posted_earlier_is_found_by_its_key(
        client: Client, slack: FakeSlack) -> None:
    ref = await client.post_approval("C0APPROVE", VIEW)
    assert await client.find_in_thread(ref, "thread_note:esc-7f3k:paged") is None
    await client.post_in_thread(ref, message("Reminder"), "thread_note:esc-7f3k:remind-1")
    note = await client.post_in_thread(ref, message("Paged Tier 2"), "thread_note:esc-7f3k:paged")
    assert await client.find_in_thread(ref, "thread_note:esc-7f3k:paged") == note
    assert await client.find_in_thread(ref, "thread_note:esc-7f3k:retro") is None


def test_slack_names_its_direct_channels_and_links_to_its_messages() -> None:
    client = Client(TOKEN, "https://slack.example/api/")
    assert client.is_direct("D0123") and not client.is_direct("C0APPROVE")
    link = client.permalink(MessageRef("C0APPROVE", "1700000000.000100"))
    assert link is not None and link.label == "slack thread"
    assert link.url == "https://slack.com/archives/C0APPROVE/p1700000000000100"
