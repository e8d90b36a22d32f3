"""The outside world for end-to-end tests: fake Slack, PagerDuty (TLS) and trackers, started
together and wired into settings the way an operator would configure the real vendors."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.demo.payloads import button_press, decline_submission
from daemon.integrations.base import ChatRoles
from daemon.integrations.slack import APPROVE_ACTION
from daemon.settings import Settings
from daemon.standins.pagerduty import FakePagerDuty
from daemon.standins.slack import FakeSlack
from daemon.standins.trackers import FakeGitHub, FakeGitLab, FakeJira, FakeTracker
from tests.harness import HARNESS_START, Harness, base_settings, payload, running

SLACK_TOKEN = "xoxb-RECOGNISABLE-bot-token"
PD_TOKEN = "pd-RECOGNISABLE-api-token"
TRACKER_TOKEN = "glpat-RECOGNISABLE-tracker-token"
CHANNEL = "C0APPROVALS"
SMOC, BACKUP, STRANGER = "USMOC", "UBACKUP", "USTRANGER"
SMOC_EMAIL = "smoc@example.com"
SMOC_SCHEDULE, TIER2_SERVICE = "PSMOC01", "PT2SVC1"
FROM_EMAIL = "tier2gate@example.com"  # the PagerDuty user tier2gate creates incidents as
INC_CREATED = "incident_io/openapi_example_public_incident_created_v2.json"


@dataclass
class World:
    daemon: Harness
    slack: FakeSlack
    pagerduty: FakePagerDuty
    tracker: FakeTracker

    def approval_posts(self) -> list[Any]:
        return [c for c in self.slack.calls_to("chat.postMessage")
                if c.args.get("channel") == CHANNEL and "tier2gate_approve" in str(c.args)]


def serve_env(slack: FakeSlack, pagerduty: FakePagerDuty, gitlab: FakeGitLab | None = None
              ) -> dict[str, str]:
    """`TIER2GATE_*` settings pointing a `tier2gate serve` process at the stand-ins, as an
    operator would write them (secrets for inbound signatures are added by the caller)."""
    env = {
        "TIER2GATE_SLACK__BOT_TOKEN": SLACK_TOKEN,
        "TIER2GATE_SLACK__API_URL": slack.api_url,
        "TIER2GATE_SLACK__APPROVAL_CHANNEL": CHANNEL,
        "TIER2GATE_PAGERDUTY__API_TOKEN": PD_TOKEN,
        "TIER2GATE_PAGERDUTY__FROM_EMAIL": FROM_EMAIL,
        "TIER2GATE_PAGERDUTY__API_URL": pagerduty.api_url,
        "TIER2GATE_PAGERDUTY__EVENTS_URL": pagerduty.events_url,
        "TIER2GATE_PAGERDUTY__SMOC_SCHEDULE_ID": SMOC_SCHEDULE,
        "TIER2GATE_PAGERDUTY__TIER2_SERVICE_ID": TIER2_SERVICE,
        "TIER2GATE_TLS__CA_FILE": str(pagerduty.ca_file),
    }
    if gitlab is not None:
        env.update({"TIER2GATE_TRACKER__KIND": "gitlab", "TIER2GATE_TRACKER__URL": gitlab.url,
                    "TIER2GATE_TRACKER__TOKEN": TRACKER_TOKEN,
                    "TIER2GATE_TRACKER__PROJECT": gitlab.project})
    return env


def tracker_for(kind: str) -> FakeTracker:
    if kind == "github":
        return FakeGitHub(TRACKER_TOKEN, "acme/retros")
    if kind == "jira":
        return FakeJira(TRACKER_TOKEN.split(":")[-1], "bot@example.com", "OPS")
    return FakeGitLab(TRACKER_TOKEN, "ops/retros")


def settings_for(slack: FakeSlack, pagerduty: FakePagerDuty, tracker: FakeTracker, kind: str,
                 /, **overrides: Any) -> Settings:
    project = {"github": "acme/retros", "jira": "OPS"}.get(kind, "ops/retros")
    token = f"bot@example.com:{TRACKER_TOKEN}" if kind == "jira" else TRACKER_TOKEN
    wired: dict[str, dict[str, Any]] = {
        "slack": {"bot_token": SLACK_TOKEN, "api_url": slack.api_url,
                  "approval_channel": CHANNEL},
        "pagerduty": {"api_token": PD_TOKEN, "from_email": FROM_EMAIL,
                      "api_url": pagerduty.api_url, "events_url": pagerduty.events_url,
                      "smoc_schedule_id": SMOC_SCHEDULE, "tier2_service_id": TIER2_SERVICE},
        "tls": {"ca_file": str(pagerduty.ca_file)},
        "tracker": {"kind": kind, "url": tracker.url, "token": token, "project": project},
        "approval": {"backup_user_ids": [BACKUP]},
    }
    for key, value in overrides.items():  # a section given as a dict amends the wiring
        wired[key] = {**wired.get(key, {}), **value} if isinstance(value, dict) else value
    return base_settings(**wired)


@asynccontextmanager
async def world(tmp_path: Path, kind: str = "gitlab", *, start: float = HARNESS_START,
                users: dict[str, str] | None = None, chat: ChatRoles | None = None,
                **overrides: Any) -> AsyncIterator[World]:
    """The daemon among the stand-ins, its clock at `start`; `users` are more Slack users by
    email (the SMOC is one); `chat`: the chat it runs on instead of the Slack stand-in."""
    async with AsyncExitStack() as stack:
        slack = await stack.enter_async_context(
            FakeSlack(token=SLACK_TOKEN, users_by_email={SMOC_EMAIL: SMOC, **(users or {})}))
        pagerduty = await stack.enter_async_context(
            FakePagerDuty(token=PD_TOKEN, ca_file=tmp_path / "pd-ca.pem"))
        pagerduty.set_oncall(SMOC_SCHEDULE, "PSMOCUSER", SMOC_EMAIL)
        tracker = tracker_for(kind)
        await tracker.start()
        stack.push_async_callback(tracker.close)
        settings = settings_for(slack, pagerduty, tracker, kind, **overrides)
        daemon = await stack.enter_async_context(running(tmp_path, settings, start=start,
                                                           chat=chat))
        yield World(daemon, slack, pagerduty, tracker)


OPENED = datetime(2026, 11, 21, 2, 0, tzinfo=UTC).timestamp()
"""When the Saturday-night incident opened: five minutes before the harness clock starts."""


def stamp(epoch_s: float) -> str:
    """An ISO 8601 UTC timestamp as incident.io and PagerDuty write them."""
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def deliver(w: World, body: dict[str, Any]) -> None:
    """An incident.io delivery, accepted and processed."""
    assert (await w.daemon.incident_io(body)).status == 202
    await w.daemon.settle()


async def approve(w: World, esc_id: str, ts: str, action_ts: str) -> None:
    """The SMOC presses Approve on the message `ts`, and what it sets off is done."""
    assert (await w.daemon.slack_interaction(
        button(esc_id, SMOC, APPROVE_ACTION, ts, action_ts))).status == 200
    await w.daemon.settle()


async def emergency(w: World) -> tuple[str, str]:
    """Declare the Saturday-night S1 and return (escalation id, approval message ts)."""
    assert (await w.daemon.incident_io(incident())).status == 202
    await w.daemon.settle()
    [row] = await w.daemon.escalations()
    [(_channel, ts)] = [key for key, message in w.slack.messages.items()
                        if key[0] == CHANNEL and not message.thread_ts]
    return row.id, ts


def incident(*, severity: str = "SEV1", exhausted: bool = True, category: str = "live",
             updated_at: str | None = None, incident_id: str = "01SATNIGHT",
             event: str = "public_incident.incident_created_v2", opened_at: float = OPENED
             ) -> dict[str, Any]:
    """An incident.io webhook built from the published sample, with the fields that matter.

    `opened_at` (epoch seconds) is the incident's `created_at`: the default suits the harness's
    injected clock; a test against a real `serve` process passes the real time instead, so
    that nothing depends on today's date. `updated_at` defaults to `opened_at`.
    """
    sample = json.loads(payload(INC_CREATED))
    inner = copy.deepcopy(sample["public_incident.incident_created_v2"])
    field = copy.deepcopy(inner["custom_field_entries"][0])
    field["custom_field"].update(name="Support exhausted knowledge", field_type="single_select")
    field["values"] = [{"value_option": {"id": "01OPT", "value": "Yes" if exhausted else "No",
                                         "custom_field_id": "01CF", "sort_key": 1}}]
    customer = copy.deepcopy(field)
    customer["custom_field"].update(name="Customer", field_type="text")
    customer["values"] = [{"value_text": "Acme Corp"}]
    inner.update(
        id=incident_id, name="Checkout is down for Acme", reference="INC-4242",
        severity={**inner["severity"], "name": severity},
        incident_status={**inner["incident_status"], "category": category},
        custom_field_entries=[field, customer], created_at=stamp(opened_at),
        updated_at=updated_at or stamp(opened_at), mode="standard",
    )
    if event.endswith("status_updated_v2"):
        return {"event_type": event, event: {"incident": inner, "new_status": inner[
            "incident_status"], "previous_status": inner["incident_status"]}}
    return {"event_type": event, event: inner}


def button(escalation_id: str, user: str, action: str, ts: str, action_ts: str
           ) -> dict[str, Any]:
    """A block_actions payload as Slack sends it for our buttons."""
    decision = "approve" if action == APPROVE_ACTION else "decline"
    return button_press(escalation_id, user, decision, CHANNEL, ts, action_ts)


def decline_form(escalation_id: str, user: str, ts: str, reason: str) -> dict[str, Any]:
    return decline_submission(escalation_id, user, CHANNEL, ts, reason)


def page_event(event_type: str, incident_key: str, incident_id: str, *, event_id: str,
               agent: str = "Tina Tier2") -> dict[str, Any]:
    """A PagerDuty V3 webhook about the Tier 2 incident, from the published sample's shape."""
    sample: dict[str, Any] = json.loads(payload("pagerduty/zulip_triggered_v3.json"))
    event = sample["event"]
    event.update(id=event_id, event_type=event_type, occurred_at="2026-11-21T02:20:00Z")
    event["agent"] = {"id": "PTINA", "type": "user_reference", "summary": agent}
    event["data"].update(id=incident_id, incident_key=incident_key,
                         status="resolved" if event_type.endswith("resolved") else "triggered")
    event["data"]["service"]["id"] = TIER2_SERVICE
    return sample
