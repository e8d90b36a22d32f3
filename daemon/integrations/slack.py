"""Slack as the `Chat` where the SMOC approves or declines a Tier 2 page.

Block Kit and Slack error codes stay in this module; the ids of our buttons and forms are
`sources.slack_ids`, which `sources.slack` reads the clicks back with. The core only sees
`ApprovalView` and `MessageRef`.

Failures are classified, never retried here: slack_sdk's own retry handlers are switched off
(`retry_handlers=[]`) so a 429 surfaces at once with its Retry-After and the durable job runner
decides when to try again, the same way for every vendor.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    SectionBlock,
)
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from daemon.clock import Clock, SystemClock
from daemon.domain.messages import Link, Message
from daemon.integrations.base import (
    ApprovalView,
    ChannelRefused,
    ChannelState,
    ChatIdentity,
    Decided,
    DecisionKind,
    EEOfferView,
    EscalationFormSpec,
    MessageRef,
    NoDecision,
    Tier2Load,
)
from daemon.integrations.failures import Permanent, slack_failure, transport_failure
from daemon.integrations.shorten import shorten, shorten_mrkdwn
from daemon.integrations.slack_ee import OFFER_EVENT, offer_blocks, offer_text
from daemon.integrations.slack_forms import escalation_modal
from daemon.integrations.tls import trusted_context
from daemon.markup import slack_link, slack_literal, slack_mention, slack_mrkdwn
from daemon.settings import ConfigError, SlackSettings, TlsSettings
from daemon.sources.slack_ids import (
    APPROVE_ACTION,
    DECLINE_ACTION,
    DECLINE_CALLBACK,
    REASON_ACTION,
    REASON_BLOCK,
    REASON_MAX_CHARS,
    slack_permalink,
)

ACTIONS_BLOCK = "tier2gate_decision"
APPROVAL_EVENT = "tier2gate_approval_request"  # message metadata: finds our post after a crash
NOTE_EVENT = "tier2gate_thread_note"
NOTICE_EVENT = "tier2gate_notice"  # a notice posted once (a rotation handoff, a heads-up)
HISTORY_LOOKBACK = 200

CHANNEL_REFUSALS = frozenset(
    {"not_in_channel", "channel_not_found", "is_archived", "restricted_action", "missing_scope",
     "cannot_dm_bot", "team_access_not_granted"}
)
"""`chat.postMessage` errors that only a person can fix (invite the bot, unarchive or pick
another channel, grant the scope): https://docs.slack.dev/reference/methods/chat.postMessage/
(Errors)."""

# Slack's documented limits, enforced here so a long incident name cannot cost the approval
# request (a 45,000-character name once made chat.postMessage fail with msg_too_long):
DIRECT_CHANNEL_PREFIX = "D"  # Slack's ids of direct-message conversations (`D…`)
THREAD_LABEL = "slack thread"  # the approval thread's link, as page details and issues name it
TEXT_MAX_CHARS = 40_000
"""`text` of chat.postMessage/update/postEphemeral: "Provide no more than 40,000 characters or
risk truncation"; error `msg_too_long`. https://docs.slack.dev/reference/methods/chat.postMessage
and https://api.slack.com/changelog/2018-04-truncating-really-long-messages"""
HEADER_MAX_CHARS = 150
"""Header block text. https://docs.slack.dev/reference/block-kit/blocks/header-block"""
SECTION_MAX_CHARS = 3000
"""Section block text. https://docs.slack.dev/reference/block-kit/blocks/section-block"""
CONTEXT_TEXT_MAX_CHARS = 3000
"""A text object, e.g. a context block element: "Maximum length for this field is 3000".
https://docs.slack.dev/reference/block-kit/composition-objects/text-object"""
# Buttons (text 75, value 2000 characters,
# https://docs.slack.dev/reference/block-kit/block-elements/button-element) carry only our
# own words and the escalation id, both far shorter; the stand-in still enforces them.
FIELD_MAX_CHARS = {"title": 200, "reference": 100, "customer": 200, "severity": 50,
                   "reason": 1000, "note": 1000, "person": 200, "event": 300}
"""Our own budget per untrusted field inside the 3000-character section, so that one huge
value cannot push the others (Why, criteria, links) out of the message."""
EVENTS_SHOWN = 3
"""Customer events in progress named on an approval request; the rest are counted, so that
many (a calendar anyone may edit) cannot push the flags and links out either."""


def notice_size(text: Message) -> int:
    """The length of `text`'s mrkdwn, which Slack's 40,000-character limit counts."""
    return len(slack_mrkdwn(text))


class Client:
    """The `Chat` protocol over Slack's Web API.

    No session is held: slack_sdk opens one per call, which is plenty for a handful of messages
    per escalation and leaves nothing to close on shutdown.
    """

    def __init__(self, token: str, api_url: str, ca_file: Path | None = None,
                 timeout_s: float = 10, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()  # what a Retry-After HTTP-date is measured from
        context = trusted_context(ca_file)
        self._web = AsyncWebClient(
            token=token,
            base_url=api_url,
            ssl=context,
            timeout=timeout_s,  # type: ignore[arg-type]  # annotated int; aiohttp takes float
            retry_handlers=[],
        )

    @classmethod
    def from_settings(cls, slack: SlackSettings, tls: TlsSettings, clock: Clock | None = None
                      ) -> Client:
        if slack.bot_token is None or not slack.bot_token.get_secret_value():
            raise ConfigError("slack.bot_token is required to post approvals")
        return cls(slack.bot_token.get_secret_value(), slack.api_url, tls.ca_file, clock=clock)

    async def post_approval(self, channel: str, view: ApprovalView) -> MessageRef:
        """A user id as `channel` posts to the app's direct messages with that user
        (https://docs.slack.dev/reference/methods/chat.postMessage/, "channel": a user id
        opens the DM); Slack answers with the DM's own channel id, which `MessageRef` keeps."""
        metadata = {"event_type": APPROVAL_EVENT,
                    "event_payload": {"escalation_id": view.escalation_id}}
        with self._classified("chat.postMessage"):
            answer = await self._web.chat_postMessage(
                channel=channel, text=fallback_text(view), blocks=approval_blocks(view),
                metadata=metadata,
            )
        return MessageRef(channel=answer["channel"], ts=answer["ts"])

    async def find_approval(self, channel: str, escalation_id: str) -> MessageRef | None:
        """Looks through the channel's latest messages for our metadata (`channels:history`)."""
        with self._classified("conversations.history"):
            answer = await self._web.conversations_history(
                channel=channel, limit=HISTORY_LOOKBACK, include_all_metadata=True)
        found = _tagged(answer.get("messages") or [], APPROVAL_EVENT, "escalation_id",
                        escalation_id)
        return MessageRef(channel, found) if found else None

    async def update_approval(self, ref: MessageRef, view: ApprovalView) -> None:
        with self._classified("chat.update"):
            await self._web.chat_update(
                channel=ref.channel, ts=ref.ts, text=fallback_text(view),
                blocks=approval_blocks(view),
            )

    async def post_in_thread(self, ref: MessageRef, text: Message, key: str = "") -> MessageRef:
        metadata = {"event_type": NOTE_EVENT, "event_payload": {"key": key}} if key else None
        with self._classified("chat.postMessage"):
            answer = await self._web.chat_postMessage(
                channel=ref.channel, thread_ts=ref.ts,
                text=shorten_mrkdwn(slack_mrkdwn(text), TEXT_MAX_CHARS),
                metadata=metadata
            )
        return MessageRef(channel=answer["channel"], ts=answer["ts"])

    async def find_in_thread(self, ref: MessageRef, key: str) -> MessageRef | None:
        """Looks through the thread's replies for our metadata (`channels:history`)."""
        with self._classified("conversations.replies"):
            answer = await self._web.conversations_replies(
                channel=ref.channel, ts=ref.ts, limit=HISTORY_LOOKBACK,
                include_all_metadata=True)
        found = _tagged(answer.get("messages") or [], NOTE_EVENT, "key", key)
        return MessageRef(ref.channel, found) if found else None

    async def thread_activity(self, ref: MessageRef, since_s: float) -> float | None:
        """`conversations.replies` with `oldest` (the `channels:history` / `groups:history`
        scopes the app already holds; https://docs.slack.dev/reference/methods/conversations.replies/):
        the newest reply by a person. A message's `ts` is its time in epoch seconds; bots' posts
        carry `bot_id` and are not updates. Tier 3 for an internal app (50+ calls a minute);
        a 429 is classified like any other and the caller judges without the thread."""
        with self._classified("conversations.replies"):
            answer = await self._web.conversations_replies(
                channel=ref.channel, ts=ref.ts, oldest=f"{since_s:.6f}",
                limit=HISTORY_LOOKBACK)
        times = [float(message["ts"]) for message in answer.get("messages") or []
                 if message.get("ts") != ref.ts and message.get("user")
                 and not message.get("bot_id") and float(message.get("ts", 0)) > since_s]
        return max(times, default=None)

    async def post_notice(self, channel: str, text: Message, key: str = "") -> MessageRef:
        metadata = {"event_type": NOTICE_EVENT, "event_payload": {"key": key}} if key else None
        with self._classified("chat.postMessage"):
            answer = await self._web.chat_postMessage(
                channel=channel, text=shorten_mrkdwn(slack_mrkdwn(text), TEXT_MAX_CHARS),
                metadata=metadata)
        return MessageRef(channel=answer["channel"], ts=answer["ts"])

    def notice_size(self, text: Message) -> int:
        return notice_size(text)

    def permalink(self, ref: MessageRef) -> Link | None:
        return Link(url=slack_permalink(ref.channel, ref.ts), label=THREAD_LABEL)

    def is_direct(self, channel: str) -> bool:
        return channel.startswith(DIRECT_CHANNEL_PREFIX)

    async def find_notice(self, channel: str, key: str) -> MessageRef | None:
        """A notice posted earlier with this key (`channels:history`)."""
        with self._classified("conversations.history"):
            answer = await self._web.conversations_history(
                channel=channel, limit=HISTORY_LOOKBACK, include_all_metadata=True)
        found = _tagged(answer.get("messages") or [], NOTICE_EVENT, "key", key)
        return MessageRef(channel, found) if found else None

    async def find_ee_offer(self, channel: str, escalation_id: str) -> MessageRef | None:
        """An EE offer posted earlier for this escalation (`channels:history`)."""
        with self._classified("conversations.history"):
            answer = await self._web.conversations_history(
                channel=channel, limit=HISTORY_LOOKBACK, include_all_metadata=True)
        found = _tagged(answer.get("messages") or [], OFFER_EVENT, "escalation_id",
                        escalation_id)
        return MessageRef(channel, found) if found else None

    async def tell_user(self, channel: str, user_id: str, text: Message) -> None:
        with self._classified("chat.postEphemeral"):
            await self._web.chat_postEphemeral(
                channel=channel, user=user_id,
                text=shorten_mrkdwn(slack_mrkdwn(text), TEXT_MAX_CHARS))

    async def ask_decline_reason(self, trigger_id: str, escalation_id: str, message: MessageRef
                                 ) -> None:
        with self._classified("views.open"):
            await self._web.views_open(
                trigger_id=trigger_id, view=decline_modal(escalation_id, message)
            )

    async def open_escalation_form(self, trigger_id: str, spec: EscalationFormSpec) -> None:
        with self._classified("views.open"):
            await self._web.views_open(trigger_id=trigger_id, view=escalation_modal(spec))

    async def post_ee_offer(self, channel: str, view: EEOfferView) -> MessageRef:
        metadata = {"event_type": OFFER_EVENT,
                    "event_payload": {"escalation_id": view.escalation_id}}
        with self._classified("chat.postMessage"):
            answer = await self._web.chat_postMessage(
                channel=channel, text=offer_text(view), blocks=offer_blocks(view),
                metadata=metadata)
        return MessageRef(channel=answer["channel"], ts=answer["ts"])

    async def update_ee_offer(self, ref: MessageRef, view: EEOfferView) -> None:
        with self._classified("chat.update"):
            await self._web.chat_update(channel=ref.channel, ts=ref.ts, text=offer_text(view),
                                        blocks=offer_blocks(view))

    async def user_id_for_email(self, email: str) -> str | None:
        with self._classified("users.lookupByEmail"):
            try:
                answer = await self._web.users_lookupByEmail(email=email)
            except SlackApiError as exc:
                if _answer(exc.response)[1] != "users_not_found":
                    raise
                return None
        return str(answer["user"]["id"])

    async def group_members(self, group_id: str) -> tuple[str, ...]:
        with self._classified("usergroups.users.list"):
            answer = await self._web.usergroups_users_list(usergroup=group_id)
        return tuple(answer["users"])

    async def identity(self) -> ChatIdentity:
        """`auth.test`: Slack lists the scopes granted to the token in the `x-oauth-scopes`
        header of every Web API answer ("Working with scopes",
        https://api.slack.com/legacy/scopes; the same header answers for granular bot tokens,
        https://docs.slack.dev/reference/methods/auth.test)."""
        with self._classified("auth.test"):
            answer = await self._web.auth_test()
        header = {key.lower(): value for key, value in (answer.headers or {}).items()}
        raw = header.get("x-oauth-scopes")
        scopes = (frozenset(s.strip() for s in raw.split(",") if s.strip())
                  if isinstance(raw, str) else None)
        return ChatIdentity(user_id=str(answer.get("user_id") or ""), scopes=scopes)

    async def channel_state(self, channel: str) -> ChannelState:
        """`conversations.info` (`channels:read`, `groups:read` for a private channel):
        `is_member` says whether the bot is in it,
        https://docs.slack.dev/reference/methods/conversations.info"""
        with self._classified("conversations.info"):
            answer = await self._web.conversations_info(channel=channel)
        info = answer.get("channel") or {}
        return ChannelState(channel=channel, is_member=bool(info.get("is_member")),
                            is_private=bool(info.get("is_private")),
                            is_archived=bool(info.get("is_archived")))

    async def user_active(self, user_id: str) -> bool:
        """`users.info` (`users:read`): a deactivated user has `deleted: true`."""
        with self._classified("users.info"):
            try:
                answer = await self._web.users_info(user=user_id)
            except SlackApiError as exc:
                if _answer(exc.response)[1] != "user_not_found":
                    raise
                return False
        return not (answer.get("user") or {}).get("deleted", False)

    @contextmanager
    def _classified(self, method: str) -> Iterator[None]:
        """Turn whatever a Slack call raised into `Retry` or `Permanent`, with a token-free
        text. Not chained: the SDK's text quotes the answer body, which a proxy may fill with
        the request it got, token included; status and error code say all the runner needs."""
        what = f"slack {method}"
        try:
            yield
        except SlackApiError as exc:
            status, code, headers = _answer(exc.response)
            failure = slack_failure(what, status, code, headers, now_s=self._clock.now())
            if method == "chat.postMessage" and failure.code in CHANNEL_REFUSALS:
                raise ChannelRefused(str(failure), code=failure.code) from None
            raise failure from None
        except aiohttp.InvalidURL:
            raise Permanent(f"{what}: slack.api_url is not a usable URL") from None
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            raise transport_failure(what, exc, timed_out=isinstance(exc, TimeoutError)
                                    ) from None


def _answer(response: object) -> tuple[int, str, Mapping[str, str]]:
    """Status, Slack error code and headers of the answer a `SlackApiError` carries."""
    if isinstance(response, AsyncSlackResponse):
        data = response.data if isinstance(response.data, dict) else {}
        code = data.get("error")
        return response.status_code, code if isinstance(code, str) else "", response.headers
    # slack_sdk attaches the raw aiohttp response when the body was not JSON.
    return getattr(response, "status", 0), "", getattr(response, "headers", {})


def approval_blocks(view: ApprovalView) -> list[Block]:
    """The message the SMOC decides from: all facts up front, buttons only while a decision is
    wanted (`view.waiting`); otherwise the decision, or why none is needed any more."""
    blocks: list[Block] = []
    if view.shadow:
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=":warning: *SHADOW — nobody will be paged*, whatever is clicked")))
    if view.drill:
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=":test_tube: *DRILL — a rehearsal of tier2gate*: please press Approve; only "
                 "the drill service is paged, never Tier 2")))
    blocks.append(HeaderBlock(text=shorten(f"Page Tier 2? {view.title}", HEADER_MAX_CHARS)))
    blocks.append(SectionBlock(text=MarkdownTextObject(text=shorten_mrkdwn(
        _summary(view), SECTION_MAX_CHARS))))
    if view.tier2_load is not None:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=shorten_mrkdwn(
            load_line(view.tier2_load), CONTEXT_TEXT_MAX_CHARS))]))
    if view.smoc_note:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=shorten_mrkdwn(f":information_source: {_field(view.smoc_note, 'note')}",
                                CONTEXT_TEXT_MAX_CHARS))]))
    if view.decided is not None:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=shorten_mrkdwn(
            decision_line(view.decided, view.shadow, page_failed=view.page_failed),
            CONTEXT_TEXT_MAX_CHARS))]))
    elif view.no_decision is not None:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=shorten_mrkdwn(
            no_decision_line(view.no_decision, view.no_decision_detail),
            CONTEXT_TEXT_MAX_CHARS))]))
    else:
        blocks.append(ActionsBlock(block_id=ACTIONS_BLOCK, elements=[
            ButtonElement(text="Approve", action_id=APPROVE_ACTION, value=view.escalation_id,
                          style="primary"),
            ButtonElement(text="Decline", action_id=DECLINE_ACTION, value=view.escalation_id,
                          style="danger"),
        ]))
    if view.problem:
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=shorten_mrkdwn(
                f":rotating_light: *Needs attention:* {slack_literal(view.problem)}",
                SECTION_MAX_CHARS))))
    return blocks


def _times(count: int) -> str:
    return {0: "not paged", 1: "paged once", 2: "paged twice"}.get(count, f"paged {count} times")


def load_line(load: Tier2Load) -> str:
    """"Tier 2 on call: Ann, paged twice this weekend, 1 sleep-hour page (7 days)", and the
    policy's warnings. The name is PagerDuty's, so it is shown as a literal, never a mention."""
    who = "Tier 2 on call" if load.on_call else "Tier 2 paged last"
    sleep = f"{load.sleep_pages} sleep-hour page{'' if load.sleep_pages == 1 else 's'}"
    line = (f":bar_chart: *{who}:* {slack_literal(load.name) or '(unnamed)'}, "
            f"{_times(load.weekend_pages)} {'this' if load.weekend_now else 'last'} weekend, "
            f"{sleep}, {load.pages} in all "
            f"(last {load.window_days} days)")
    if load.weekends_in_a_row > 1:
        line += f", {load.weekends_in_a_row} weekends in a row"
    if load.warnings:
        line += "\n:warning: *Load above the policy's thresholds* (a warning, not a block): " \
                + "; ".join(load.warnings)
    return line


def _summary(view: ApprovalView) -> str:
    lines = [
        f"*{_field(view.reference, 'reference')}* · {_field(view.customer, 'customer')}"
        f" · severity *{_field(view.severity, 'severity')}*"
        f" · open {_duration(view.age_minutes)}",
        _deciders(view) + (f" · team *{slack_literal(view.team)}*" if view.team else ""),
        f"*Why:* {_field(view.reason, 'reason')}",
    ]
    if view.declarer_id or view.declarer_name:
        lines.append(f"*Declared by:* {_person(view.declarer_id, view.declarer_name)}")
    if view.ee_id:
        said = {"resolved": " · resolved without Engineering",
                "engineering": " · asks for Engineering"}.get(view.ee_outcome, "")
        lines.append(f"*Escalation Engineer (DRI):* {slack_mention(view.ee_id)}{said}")
    if view.criteria:
        lines.append("*Criteria:* " + ", ".join(criterion_words(c) for c in view.criteria))
    for event in view.customer_events[:EVENTS_SHOWN]:
        lines.append(f":calendar: *Customer event in progress:* {_field(event, 'event')}")
    if len(view.customer_events) > EVENTS_SHOWN:
        lines.append(f":calendar: … and {len(view.customer_events) - EVENTS_SHOWN} more "
                     "customer events in progress (the timeline lists them)")
    flags = [name for name, on in (("Weekend", view.weekend), ("Off hours", view.off_hours)) if on]
    if flags:
        lines.append(":crescent_moon: " + " · ".join(flags))
    if view.evidence_present or view.evidence_missing:
        lines.append(_evidence(view))
    if view.links:
        lines.append(" · ".join(slack_link(url, name) for name, url in view.links.items()))
    return "\n".join(lines)


def _evidence(view: ApprovalView) -> str:
    """The evidence pack as the SMOC reads it: what is there, what is missing (never a
    reason to hold back a decision, only something to weigh)."""
    present = ", ".join(slack_literal(label) for label in view.evidence_present) or "none"
    if not view.evidence_missing:
        return f"*Evidence:* complete ({present})"
    missing = ", ".join(slack_literal(label) for label in view.evidence_missing)
    return f"*Evidence:* {present} · *missing:* {missing}"


def _deciders(view: ApprovalView) -> str:
    """Who may decide. Only a resolved SMOC is called the SMOC: when it was not resolved,
    every approver is a backup."""
    if not view.approver_ids:
        return "*Decides:* :rotating_light: *nobody can approve this request*"
    if not view.smoc_resolved:
        return "*Decides:* no SMOC · backups " + ", ".join(
            slack_mention(u) for u in view.approver_ids)
    smoc, *backups = view.approver_ids
    line = f"*Decides:* {slack_mention(smoc)} (SMOC)"
    return line + (" · backups " + ", ".join(slack_mention(u) for u in backups) if backups
                   else "")


def _person(chat_id: str, name: str) -> str:
    """A mention when the chat id is known (its shape is checked where it is read), else the
    source's name for them, escaped."""
    return f"<@{chat_id}>" if chat_id else _field(name, "person")


def decision_line(decided: Decided, shadow: bool, *, page_failed: bool = False) -> str:
    """What replaces the buttons, so nobody clicks on a decided escalation. It never says
    "paging Tier 2" once the page failed for good."""
    if decided.kind is DecisionKind.DECLINED:
        why = f": {_field(decided.reason, 'reason')}" if decided.reason else ""
        return f":no_entry: Declined by {slack_mention(decided.by)} at {decided.at}{why}"
    if decided.kind is DecisionKind.APPROVED:
        head = f":white_check_mark: Approved by {slack_mention(decided.by)} at {decided.at}"
        if decided.self_approved:
            head += " (:warning: self-approved: they declared it)"
        go, stay = "paging Tier 2", "not paging"
    else:
        head = f":hourglass: Approval timed out at {decided.at}"
        go, stay = "paging Tier 2 (policy fallback)", "holding"
    if not decided.paging:
        return f"{head} — {stay}"
    if page_failed:
        return f"{head} — :x: *the page did NOT go out*: page Tier 2 by hand"
    return f"{head} — {'SHADOW: not paging' if shadow else go}"


def no_decision_line(why: NoDecision, detail: str) -> str:
    """What replaces the buttons when nobody decided and nobody needs to any more."""
    if why is NoDecision.MERGED:
        target = _field(detail, "reference") if detail else "another incident"
        return (f":twisted_rightwards_arrows: The source incident was merged into {target} "
                "before a decision — request withdrawn, no page from this request")
    if why is NoDecision.WITHDRAWN:
        return (":heavy_minus_sign: The source incident was declined or canceled before a "
                "decision — request withdrawn, no page")
    if why is NoDecision.RESOLVED:
        return (":heavy_minus_sign: The source incident was resolved before a decision — "
                "no decision needed, no page")
    why_text = f": {_field(detail, 'reason')}" if detail else ""
    return f":information_source: No longer an emergency{why_text} — no decision needed, no page"


def fallback_text(view: ApprovalView) -> str:
    """The notification and screen-reader text: Slack shows it where blocks cannot go."""
    shadow = ("[SHADOW] " if view.shadow else "") + ("[DRILL] " if view.drill else "")
    facts = (f"{_field(view.title, 'title')} ({_field(view.reference, 'reference')}, "
             f"{_field(view.customer, 'customer')}, {_field(view.severity, 'severity')})")
    if view.decided is not None:
        failed = " (the page did NOT go out)" if view.page_failed else ""
        return f"{shadow}{facts}: {view.decided.kind.value.replace('_', ' ')}{failed}"
    if view.no_decision is not None:
        return f"{shadow}{facts}: no decision needed ({view.no_decision.value.replace('_', ' ')})"
    smoc = f" {slack_mention(view.approver_ids[0])}" if view.approver_ids else ""
    event = " (customer event in progress)" if view.customer_events else ""
    return f"{shadow}Tier 2 page needs approval:{smoc} {facts}{event}"


def decline_modal(escalation_id: str, message: MessageRef) -> View:
    """The form behind Decline; the metadata brings the escalation back with the submission."""
    metadata = {"escalation_id": escalation_id, "channel": message.channel, "ts": message.ts}
    return View(
        type="modal",
        callback_id=DECLINE_CALLBACK,
        private_metadata=json.dumps(metadata),
        title="Decline escalation",
        submit="Submit",
        close="Cancel",
        blocks=[InputBlock(
            block_id=REASON_BLOCK,
            label="Why does this not need Tier 2?",
            element=PlainTextInputElement(action_id=REASON_ACTION, multiline=True,
                                          max_length=REASON_MAX_CHARS),
        )],
    )


def _tagged(messages: list[dict[str, Any]], event_type: str, field: str, value: str) -> str:
    """The ts of the first message whose metadata is (event_type, {field: value}), or ""."""
    for message in messages:
        metadata = message.get("metadata") or {}
        payload = metadata.get("event_payload") or {}
        if metadata.get("event_type") == event_type and payload.get(field) == value:
            return str(message["ts"])
    return ""


def criterion_words(name: str) -> str:
    """`support_exhausted_knowledge` -> "Support exhausted knowledge"."""
    return name.replace("_", " ").strip().capitalize()


def _duration(minutes: int) -> str:
    hours, rest = divmod(max(0, minutes), 60)
    return f"{hours} h {rest} min" if hours else f"{rest} min"


def _field(text: str, name: str) -> str:
    """An untrusted value shortened to its budget, then escaped (shortening first: a cut can
    then never split an escape)."""
    return slack_literal(shorten(text, FIELD_MAX_CHARS[name]))
