"""The tests' Slack and PagerDuty fakes (HTTP, and TLS for PagerDuty) run inside the bench
process, plus what `tier2gate serve` needs in its environment to use them.

`Vendors.page_arrivals` timestamps (perf_counter) every `POST /incidents` the moment the fake
PagerDuty's recorder sees it, before the fake answers: that is "the page arrived".
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.common import SLACK_SECRET
from daemon.ingress.signatures import sign_slack
from daemon.sources.slack_ids import APPROVE_ACTION
from daemon.standins.pagerduty import FakePagerDuty
from daemon.standins.slack import FakeSlack
from tests.world import (
    CHANNEL,
    PD_TOKEN,
    SLACK_TOKEN,
    SMOC,
    SMOC_EMAIL,
    SMOC_SCHEDULE,
    button,
    serve_env,
)


class _Arrivals(list):  # type: ignore[type-arg]
    """The fake's request log, with the arrival time of each page next to it."""

    def __init__(self) -> None:
        super().__init__()
        self.pages: list[float] = []

    def append(self, item: Any) -> None:
        if item.method == "POST" and item.path == "/incidents":
            self.pages.append(time.perf_counter())
        super().append(item)


class Vendors:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self._stack = AsyncExitStack()
        self.slack: FakeSlack
        self.pagerduty: FakePagerDuty
        self.arrivals = _Arrivals()

    async def __aenter__(self) -> Vendors:
        self.slack = await self._stack.enter_async_context(
            FakeSlack(token=SLACK_TOKEN, users_by_email={SMOC_EMAIL: SMOC}))
        self.pagerduty = await self._stack.enter_async_context(
            FakePagerDuty(token=PD_TOKEN, ca_file=self.tmp / "pd-ca.pem"))
        self.pagerduty.set_oncall(SMOC_SCHEDULE, "PSMOCUSER", SMOC_EMAIL)
        self.pagerduty.requests = self.arrivals
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._stack.aclose()

    def env(self) -> dict[str, str]:
        """`TIER2GATE_*` settings pointing `serve` at these fakes, as an operator would."""
        return serve_env(self.slack, self.pagerduty)

    def approval_requests(self) -> list[tuple[str, str]]:
        """(escalation id, message ts) of every approval request posted to the channel."""
        found = []
        for call in self.slack.calls_to("chat.postMessage"):
            if call.args.get("channel") != CHANNEL or call.args.get("thread_ts"):
                continue
            escalation_id = next(_approve_values(call.args.get("blocks")), None)
            if escalation_id is not None:
                found.append(escalation_id)
        by_id = {}
        for (channel, ts), message in self.slack.messages.items():
            if channel == CHANNEL and not message.thread_ts:
                for escalation_id in _approve_values(message.blocks):
                    by_id.setdefault(escalation_id, ts)
        return [(escalation_id, by_id.get(escalation_id, "")) for escalation_id in found]


def _approve_values(blocks: Any) -> Iterator[str]:
    if isinstance(blocks, dict):
        if blocks.get("action_id") == APPROVE_ACTION and isinstance(blocks.get("value"), str):
            yield blocks["value"]
        for value in blocks.values():
            yield from _approve_values(value)
    elif isinstance(blocks, list):
        for item in blocks:
            yield from _approve_values(item)


def signed_click(escalation_id: str, ts: str, action_ts: str) -> tuple[bytes, dict[str, str]]:
    """The SMOC's Approve click, form-encoded and signed as Slack sends it."""
    body = ("payload=" + quote(json.dumps(
        button(escalation_id, SMOC, APPROVE_ACTION, ts, action_ts)))).encode()
    headers = sign_slack(body, SLACK_SECRET, int(time.time()))
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return body, headers
