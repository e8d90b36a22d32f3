"""The whole daemon in-process: real app, real store and runner, signed requests, HTTP fakes.

Built the way `tier2gate serve` builds itself (`wiring.build_parts`, `jobs.registry`), with a
manual clock so timers can be fired without waiting.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from daemon.app import build_admin_app, build_app
from daemon.clock import ManualClock
from daemon.ingress.signatures import sign_pagerduty, sign_slack, sign_standard_webhook
from daemon.integrations.base import ChatRoles
from daemon.jobs.registry import handlers
from daemon.metrics import Metrics
from daemon.settings import JobSettings, Settings
from daemon.store import EscalationRow, JobState, Store
from daemon.store.sqlite import SqliteBackend
from daemon.wiring import build_parts
from tests.support import eventually

REPO = Path(__file__).resolve().parents[1]
PAYLOADS = Path(__file__).resolve().parent / "payloads"
PD_SECRET = "pd-webhook-secret-RECOGNISABLE"
INC_SECRET = "whsec_" + "UkVDT0dOSVNBQkxFLWluY2lkZW50LWlvLXNlY3JldA=="
SLACK_SECRET = "slack-signing-secret-RECOGNISABLE"
PERIODIC = frozenset({"prune", "retro_poll", "update_cadence", "morning_queue",
                      "events_headsup"})
"""Job kinds the daemon keeps going by itself, one per period (the morning queue one per
business window, the heads-up of customer events one per week)."""
HARNESS_START = datetime(2026, 11, 21, 2, 5, tzinfo=UTC).timestamp()
"""The in-process daemon's clock starts five minutes into the Saturday-night incident the
payload builders describe, whatever today's date is: outcomes never depend on the calendar."""
FAST_JOBS = JobSettings(workers=4, max_attempts=6, backoff_base_s=0.02, backoff_max_s=0.2,
                        lease_s=10, poll_interval_s=0.02, drain_timeout_s=0.5)


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def recent_pagerduty(name: str, at: float = HARNESS_START) -> dict[str, Any]:
    """A published PagerDuty sample as if it occurred at `at` (default: the harness's start).
    The samples are years old, and an event older than `pagerduty.max_event_age_s` is stale:
    answered 2xx and acted on by nothing. A sample without `occurred_at` keeps none."""
    sample: dict[str, Any] = json.loads(payload(name))
    if "occurred_at" in sample["event"]:
        sample["event"]["occurred_at"] = datetime.fromtimestamp(at, tz=UTC).isoformat()
    return sample


def base_settings(**overrides: Any) -> Settings:
    data: dict[str, Any] = {
        "policy_file": str(REPO / "config" / "policy.yaml"),
        "pagerduty": {"webhook_secrets": [PD_SECRET]},
        "incident_io": {"webhook_secret": INC_SECRET},
        "slack": {"signing_secret": SLACK_SECRET},
        "jobs": FAST_JOBS.model_dump(),
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return Settings(**data)


# A test client of one of our aiohttp applications (the public listener or the admin one).
AppClient = TestClient[web.Request, web.Application]


@dataclass
class Harness:
    client: AppClient
    store: Store
    clock: ManualClock
    settings: Settings
    metrics: Metrics
    admin: AppClient  # the admin listener: dashboard, /api/escalations, /metrics
    _seq: int = 0

    async def incident_io(self, body: bytes | dict[str, Any], *, msg_id: str | None = None,
                          secret: str = INC_SECRET, timestamp: int | None = None
                          ) -> ClientResponse:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self._seq += 1
        headers = sign_standard_webhook(raw, msg_id or f"msg_{self._seq}",
                                        timestamp or int(self.clock.now()), secret)
        headers["Content-Type"] = "application/json"
        return await self.client.post("/webhooks/incident-io", data=raw, headers=headers)

    async def pagerduty(self, body: bytes | dict[str, Any], *, webhook_id: str | None = None,
                        secret: str = PD_SECRET) -> ClientResponse:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self._seq += 1
        headers = {"X-PagerDuty-Signature": sign_pagerduty(raw, secret),
                   "X-Webhook-Id": webhook_id or f"wh_{self._seq}",
                   "Content-Type": "application/json"}
        return await self.client.post("/webhooks/pagerduty", data=raw, headers=headers)

    async def slack_interaction(self, interaction: dict[str, Any], *,
                                secret: str = SLACK_SECRET) -> ClientResponse:
        raw = ("payload=" + quote(json.dumps(interaction))).encode()
        headers = sign_slack(raw, secret, int(self.clock.now()))
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return await self.client.post("/slack/interactions", data=raw, headers=headers)

    async def slack_command(self, text: str, *, user: str = "USUPPORT",
                            secret: str = SLACK_SECRET, channel: str = "C0SUPPORT"
                            ) -> ClientResponse:
        raw = urlencode({
            "token": "legacy", "team_id": "T1", "team_domain": "acme", "channel_id": channel,
            "channel_name": "support", "user_id": user, "user_name": user.lower(),
            "command": "/tier2", "text": text, "api_app_id": "A1",
            "response_url": "https://hooks.slack.com/commands/T1/1/x",
            "trigger_id": f"trig-{self._seq}"}).encode()
        self._seq += 1
        headers = sign_slack(raw, secret, int(self.clock.now()))
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return await self.client.post("/slack/commands", data=raw, headers=headers)

    async def settle(self, timeout_s: float = 10.0) -> None:
        """Wait until every job that is due now has finished (timers in the future wait)."""

        async def idle() -> bool:
            before = await self.store.job_counts()
            due = await self.store.next_due()
            after = await self.store.job_counts()  # a claim in between would show here
            return (before == after and not after.get("running")
                    and (due is None or due > self.clock.now()))

        await eventually(idle, timeout_s)

    async def escalations(self) -> list[EscalationRow]:
        return await self.store.list_escalations()

    async def events(self, escalation_id: str) -> list[str]:
        return [entry.event for entry in await self.store.timeline(escalation_id)]

    async def work(self) -> list[str]:
        """Kinds of every job in the store but the daemon's own periodic jobs (retention and
        follow-through, there from the start): what the deliveries and decisions so far have
        set in motion."""
        return [j.kind for state in JobState for j in await self.store.list_jobs(state)
                if j.kind not in PERIODIC]

    async def dead_jobs(self) -> list[str]:
        return [f"{j.kind}: {j.last_error}" for j in await self.store.list_jobs(JobState.DEAD)]


@asynccontextmanager
async def running(tmp_path: Path, settings: Settings | None = None, *,
                  start: float = HARNESS_START, chat: ChatRoles | None = None
                  ) -> AsyncIterator[Harness]:
    """The daemon on `tmp_path`'s database, its clock at `start`, on `chat` instead of the
    configured Slack when given; run it again on the same `tmp_path` for a restart."""
    settings = settings or base_settings()
    clock = ManualClock(start)
    store = Store(SqliteBackend(tmp_path / "harness.db", exclusive=True), clock)
    metrics = Metrics()
    parts = build_parts(settings, store, clock, metrics, chat=chat)
    app = build_app(settings, store, handlers=handlers(parts.deps), metrics=metrics,
                    checks=[lambda: parts.deps.policy.problem,
                            lambda: parts.deps.roster.problem], on_close=parts.closers,
                    watch=parts.watch, roster=parts.deps.roster)
    async with both_listeners(app) as (client, admin):
        yield Harness(client, store, clock, settings, metrics, admin)


@asynccontextmanager
async def both_listeners(app: web.Application) -> AsyncIterator[tuple[AppClient, AppClient]]:
    """Test clients for the public app and its admin app. The public app opens the store, so
    its server starts first and stops last."""
    async with TestClient(TestServer(app)) as client, \
            TestClient(TestServer(build_admin_app(app))) as admin:
        yield client, admin
