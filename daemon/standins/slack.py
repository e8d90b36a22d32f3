"""A Slack Web API that runs on localhost: the real slack_sdk client talks to it over HTTP.

It answers the methods tier2gate uses the way Slack does (HTTP 200 with `ok`/`error`), records
every call it answered so a test can say "exactly one approval message", and keeps the current
state of each message after `chat.update`. HTTP-level outages come from the `FaultPlan`
middleware; Slack-level refusals (`channel_not_found`, `ratelimited`) from `fail()`; values over
Slack's documented limits are refused as Slack refuses them (`slack_limits`).
"""

from __future__ import annotations

import json
import ssl
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from daemon.standins.faults import FaultPlan
from daemon.standins.slack_limits import message_error, view_error

Answer = dict[str, Any]
ALL_SCOPES = frozenset({
    "chat:write", "users:read", "users:read.email", "channels:history", "groups:history",
    "channels:read", "groups:read", "usergroups:read", "commands"})
"""What a fully set-up tier2gate app is granted (the README's list plus `channels:read` /
`groups:read`, which let `doctor` see channel membership)."""


@dataclass(frozen=True)
class Call:
    method: str
    args: dict[str, Any]  # JSON values as sent; `blocks`/`view` decoded when form-encoded


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    updates: int = 0
    metadata: dict[str, Any] | None = None
    user: str = ""  # a person's id; "" for the bot's own posts, which carry `bot_id`


BOT_ID = "B0001"


class FakeSlack:
    def __init__(self, token: str = "xoxb-fake-token",  # noqa: S107 - a stand-in's own token
                 faults: FaultPlan | None = None,
                 users_by_email: dict[str, str] | None = None,
                 groups: dict[str, tuple[str, ...]] | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.token = token
        self.faults = faults or FaultPlan()
        self.users_by_email = dict(users_by_email or {})
        self.groups = dict(groups or {})
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.ephemerals: list[Call] = []
        self.views: list[dict[str, Any]] = []
        self.refused: dict[str, str] = {}
        # Granted scopes, sent in `x-oauth-scopes` on every answer as Slack does.
        self.scopes: set[str] = set(ALL_SCOPES)
        self.private_channels: set[str] = set()
        self.deactivated: set[str] = set()
        self.revoked = False
        self._channel_errors: dict[str, deque[str]] = defaultdict(deque)
        self._ssl = ssl_context
        self._errors: dict[str, deque[str]] = defaultdict(deque)
        self._next_ts = 100
        self._server: TestServer | None = None
        self._methods: dict[str, Callable[[dict[str, Any]], Answer]] = {
            "auth.test": lambda _: {"user_id": "UBOT", "team_id": "T0001", "bot_id": BOT_ID},
            "conversations.info": self._conversation_info,
            "users.info": self._user_info,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
            "views.open": self._open_view,
            "users.lookupByEmail": self._lookup_by_email,
            "usergroups.users.list": self._group_users,
        }
        self.app = web.Application(middlewares=[self.faults.middleware])
        self.app.router.add_route("*", "/api/{method}", self._handle)

    async def start(self) -> None:
        self._server = TestServer(self.app, host="127.0.0.1")
        await self._server.start_server(ssl=self._ssl)

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    @property
    def api_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return str(self._server.make_url("/api/"))

    def fail(self, method: str, error: str, times: int = 1) -> None:
        """The next `times` calls of `method` answer `{"ok": false, "error": error}`."""
        self._errors[method].extend([error] * times)

    def fail_post_to(self, channel: str, error: str, times: int = 1) -> None:
        """The next `times` posts to `channel` (a user id: a direct message to that user)
        answer `{"ok": false, "error": error}`; posts elsewhere go through."""
        self._channel_errors[channel].extend([error] * times)

    def refuse(self, channel: str, error: str = "not_in_channel") -> None:
        """Every post to `channel` is refused with `error` until a person fixes it, as Slack
        refuses a channel the bot is not a member of (or an archived one)."""
        self.refused[channel] = error

    def revoke(self) -> None:
        """The token was revoked (app uninstalled, token rotated): every call answers
        `token_revoked`, as Slack does."""
        self.revoked = True

    @staticmethod
    def dm_channel(user_id: str) -> str:
        """The id of the app's direct-message channel with a user (Slack's `D…` ids)."""
        return "D" + user_id.removeprefix("U").removeprefix("W")

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def reply(self, channel: str, thread_ts: str, user: str, text: str, at_s: float) -> str:
        """A person replies in a thread at `at_s` (epoch seconds: Slack's ts is the post's
        time); returns the reply's ts."""
        ts = f"{at_s:.6f}"
        self.messages[(channel, ts)] = Message(channel, ts, text, thread_ts=thread_ts, user=user)
        return ts

    def thread(self, channel: str, ts: str) -> list[Message]:
        return [m for m in self.messages.values() if m.channel == channel and m.thread_ts == ts]

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            args.update(await request.json())
        elif request.can_read_body:
            args.update(await request.post())
        for name in ("blocks", "view"):
            if isinstance(args.get(name), str):
                args[name] = json.loads(args[name])
        self.calls.append(Call(method, args))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _reply({"ok": False, "error": "invalid_auth"})
        if self.revoked:
            return _reply({"ok": False, "error": "token_revoked"})
        if self._errors[method]:
            return _reply({"ok": False, "error": self._errors[method].popleft()})
        handler = self._methods.get(method)
        if handler is None:
            return _reply({"ok": False, "error": "unknown_method"})
        too_long = (view_error(args.get("view") or {}) if method == "views.open"
                    else message_error(args) if method.startswith("chat.") else "")
        if too_long:
            return _reply({"ok": False, "error": too_long})
        return _reply(handler(args), {"x-oauth-scopes": ",".join(sorted(self.scopes))})

    def _post_message(self, args: dict[str, Any]) -> Answer:
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if channel in self.refused:
            return {"ok": False, "error": self.refused[channel]}
        if self._channel_errors[channel]:
            return {"ok": False, "error": self._channel_errors[channel].popleft()}
        if channel.startswith(("U", "W")):
            # A user id posts into the app's DM with that user; Slack answers with the DM's id.
            # https://docs.slack.dev/reference/methods/chat.postMessage/ ("channel")
            channel = self.dm_channel(channel)
        ts = f"1700000000.{self._next_ts:06d}"
        self._next_ts += 100
        metadata = args.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        self.messages[(channel, ts)] = Message(channel, ts, args.get("text", ""),
                                               args.get("blocks", []), args.get("thread_ts"),
                                               metadata=metadata)
        return {"channel": channel, "ts": ts, "message": {"text": args.get("text", "")}}

    def _update(self, args: dict[str, Any]) -> Answer:
        message = self.messages.get((args.get("channel", ""), args.get("ts", "")))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.text = args.get("text", message.text)
        message.blocks = args.get("blocks", message.blocks)
        message.updates += 1
        return {"channel": message.channel, "ts": message.ts, "text": message.text}

    def _history(self, args: dict[str, Any]) -> Answer:
        """Newest first, top-level messages only; metadata only when asked for, as Slack does."""
        channel = args.get("channel", "")
        if channel in self.refused:
            return {"ok": False, "error": self.refused[channel]}
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        found = sorted((m for m in self.messages.values()
                        if m.channel == channel and m.thread_ts is None),
                       key=lambda m: m.ts, reverse=True)[: int(args.get("limit", 100))]
        return {"messages": [
            {"type": "message", "ts": m.ts, "text": m.text,
             **({"metadata": m.metadata} if with_metadata and m.metadata else {})}
            for m in found]}

    def _replies(self, args: dict[str, Any]) -> Answer:
        """The parent first, then its replies oldest first, as Slack does."""
        channel, ts = args.get("channel", ""), args.get("ts", "")
        parent = self.messages.get((channel, ts))
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        oldest = float(args.get("oldest") or 0)
        thread = [parent, *sorted(self.thread(channel, ts), key=lambda m: float(m.ts))]
        # `oldest`: only messages after that time, the parent still first (Slack's behaviour,
        # https://docs.slack.dev/reference/methods/conversations.replies/).
        thread = [parent, *(m for m in thread[1:] if float(m.ts) > oldest)]
        return {"messages": [
            {"type": "message", "ts": m.ts, "text": m.text, "thread_ts": ts,
             **({"user": m.user} if m.user else {"bot_id": BOT_ID}),
             **({"metadata": m.metadata} if with_metadata and m.metadata else {})}
            for m in thread[: int(args.get("limit", 100))]]}

    def _post_ephemeral(self, args: dict[str, Any]) -> Answer:
        if not args.get("channel") or not args.get("user"):
            return {"ok": False, "error": "channel_not_found"}
        if args["channel"] in self.refused:
            return {"ok": False, "error": self.refused[args["channel"]]}
        self.ephemerals.append(Call("chat.postEphemeral", args))
        return {"message_ts": f"1700000001.{len(self.ephemerals):06d}"}

    def _open_view(self, args: dict[str, Any]) -> Answer:
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        self.views.append(args["view"])
        return {"view": {"id": f"V{len(self.views):04d}", **args["view"]}}

    def _lookup_by_email(self, args: dict[str, Any]) -> Answer:
        user_id = self.users_by_email.get(args.get("email", ""))
        if user_id is None:
            return {"ok": False, "error": "users_not_found"}
        return {"user": {"id": user_id, "profile": {"email": args["email"]}}}

    def _conversation_info(self, args: dict[str, Any]) -> Answer:
        """Membership follows `refuse`: a channel refused with `not_in_channel` is one the bot
        is not in; `channel_not_found` is no channel at all. Needs `channels:read` (public) or
        `groups:read` (private) as Slack does."""
        channel = args.get("channel", "")
        private = channel in self.private_channels
        needed = "groups:read" if private else "channels:read"
        if needed not in self.scopes:
            return {"ok": False, "error": "missing_scope", "needed": needed}
        refusal = self.refused.get(channel, "")
        if refusal == "channel_not_found":
            return {"ok": False, "error": "channel_not_found"}
        return {"channel": {"id": channel, "is_private": private,
                            "is_archived": refusal == "is_archived",
                            "is_member": refusal != "not_in_channel"}}

    def _user_info(self, args: dict[str, Any]) -> Answer:
        user_id = args.get("user", "")
        known = set(self.users_by_email.values()) | {
            member for members in self.groups.values() for member in members}
        if user_id not in known:
            return {"ok": False, "error": "user_not_found"}
        return {"user": {"id": user_id, "deleted": user_id in self.deactivated}}

    def _group_users(self, args: dict[str, Any]) -> Answer:
        members = self.groups.get(args.get("usergroup", ""))
        if members is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"users": list(members)}


def _reply(answer: Answer, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"ok": True, **answer}, headers=headers)
