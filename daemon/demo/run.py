"""The scripted Saturday night, narrated as it happens.

An incident.io S1 whose support engineer marked "Support exhausted knowledge" asks the SMOC for
approval; an S3 becomes a request for help due on Monday; a forged webhook is refused. The
approval comes from the dashboard (or `--auto-approve`), then Tier 2 acknowledges the page, the
customer recovers, and the retro issue appears in the local GitLab. Last, Support escalates an
urgent Zendesk ticket through a signed trigger delivery: it belongs to a second Tier 1 team,
Platform Support (recognised by its Zendesk group), so that team's own manager on call is
asked in its own channel, and the ticket gets internal notes saying so. Acme Corp is in the
middle of a migration weekend (the customer-events calendar): Friday's heads-up told Tier 2,
and the approval request says so.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from daemon.app import build_admin_app, build_app
from daemon.clock import iso
from daemon.demo.clicks import SMOC_USER, WEBHOOKS_URL, click, send_interaction
from daemon.demo.narration import Narrator
from daemon.demo.payloads import (
    button_press,
    ee_button_press,
    incident_io_event,
    pagerduty_event,
)
from daemon.domain.events import EventKind
from daemon.ingress.signatures import sign_pagerduty, sign_standard_webhook
from daemon.jobs.intake import page_key
from daemon.jobs.registry import handlers
from daemon.listeners import Listeners
from daemon.logging import configure
from daemon.metrics import Metrics
from daemon.reporting.dashboard import DEMO_ACTIONS_KEY
from daemon.settings import BUILTIN_POLICY_FILE, Settings
from daemon.standins.desks import FakeZendesk
from daemon.standins.pagerduty import FakePagerDuty
from daemon.standins.slack import FakeSlack
from daemon.standins.trackers import FakeGitLab
from daemon.store import Store
from daemon.store.sqlite import SqliteBackend
from daemon.wiring import build_parts

SMOC_USER_ID, SMOC_EMAIL = "U0SMOC", "smoc@demo.example"
SCHEDULE, TIER2_SERVICE, CHANNEL = "PSMOC1", "PTIER2", "C0APPROVALS"
FROM_EMAIL = "tier2gate@demo.example"
ZD_AGENT, ZD_TICKET, ZD_EXHAUSTED = "tier2gate-agent@demo.example", "4242", "360001234567"
PLATFORM_SMOC_ID, PLATFORM_SMOC_EMAIL = "U0PLATSMOC", "platform-smoc@demo.example"
PLATFORM_SCHEDULE, PLATFORM_CHANNEL = "PSMOCPF", "C0PLATFORM"
PLATFORM_TEAM = f"""
# The demo's second Tier 1 team: Zendesk tickets of the Platform Support group.
teams:
  - name: platform
    recognised_by:
      desk_groups: ["Platform Support"]
    smoc_schedule_id: {PLATFORM_SCHEDULE}
    approval_channel: {PLATFORM_CHANNEL}
"""
TIER2_CHANNEL, TIER2_SCHEDULE = "C0TIER2", "PTIER2SCHED"
TIER2_USER_ID, TIER2_EMAIL = "U0TINA", "tina@example.com"
EE_USER_ID, EE_NAME, EE_CHANNEL = "U0EEDEMO", "Eve Engineer", "C0EESUPPORT"


class ShiftedClock:
    """Real time moved to last Saturday 02:00 UTC, so the story happens on a weekend night."""

    def __init__(self) -> None:
        today = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
        saturday = today - timedelta(days=(today.weekday() - 5) % 7)
        self.offset_s = saturday.timestamp() - time.time()

    def now(self) -> float:
        return time.time() + self.offset_s

    def monotonic(self) -> float:
        return time.monotonic()


class DemoSettings(Settings):
    """Settings from the story alone: `TIER2GATE_*` variables in the shell (a real
    installation's tokens, URLs or ports) must not reach a demo that runs on stand-ins."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _secret() -> str:
    return secrets.token_urlsafe(24)


class Demo:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.base = f"http://127.0.0.1:{port}"  # the dashboard (admin listener)
        self.webhooks = ""  # the public listener, on a free port: known once it listens
        self.clock = ShiftedClock()
        # Slack's signing secrets are 32 hexadecimal characters; the demo's looks the same.
        self.pd_secret, self.slack_secret = _secret(), secrets.token_hex(16)
        self.inc_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.slack = FakeSlack(token="xoxb-" + _secret(), users_by_email={
            SMOC_EMAIL: SMOC_USER_ID, PLATFORM_SMOC_EMAIL: PLATFORM_SMOC_ID,
            TIER2_EMAIL: TIER2_USER_ID})
        self.calendar = folder / "customer-events.yaml"
        self.pagerduty = FakePagerDuty(token=_secret(), ca_file=folder / "standin-ca.pem")
        self.gitlab = FakeGitLab(_secret(), "support/retros")
        self.zd_secret, self.zd_token = _secret(), _secret()
        self.zendesk = FakeZendesk(ZD_AGENT, self.zd_token)

    def policy_file(self) -> Path:
        """The shipped policy with the demo's second team."""
        path = self.folder / "policy.yaml"
        path.write_text(BUILTIN_POLICY_FILE.read_text(encoding="utf-8") + PLATFORM_TEAM,
                        encoding="utf-8")
        return path

    def roster(self) -> Path:
        """This week's Escalation Engineer rotation, around the story's Saturday."""
        today = datetime.fromtimestamp(self.clock.now(), tz=UTC).date()
        path = self.folder / "ee-roster.yaml"
        path.write_text(yaml.safe_dump({"timezone": "UTC", "handoff_time": "09:00", "rotations": [
            {"from": (today - timedelta(days=5)).isoformat(),
             "to": (today + timedelta(days=8)).isoformat(),
             "engineers": [{"slack_user_id": EE_USER_ID, "name": EE_NAME}]}]}),
            encoding="utf-8")
        return path

    def settings(self) -> Settings:
        return DemoSettings(
            database_url=f"sqlite:///{self.folder / 'tier2gate.db'}",
            policy_file=self.policy_file(),
            public_url=self.base,
            http={"host": "127.0.0.1", "port": 0},
            admin={"host": "127.0.0.1", "port": self.port},
            slack={"bot_token": self.slack.token, "signing_secret": self.slack_secret,
                   "api_url": self.slack.api_url, "approval_channel": CHANNEL,
                   "tier2_channel": TIER2_CHANNEL},
            pagerduty={"api_token": self.pagerduty.token, "from_email": FROM_EMAIL,
                       "api_url": self.pagerduty.api_url,
                       "events_url": self.pagerduty.events_url,
                       "webhook_secrets": [self.pd_secret], "smoc_schedule_id": SCHEDULE,
                       "tier2_service_id": TIER2_SERVICE, "tier2_schedule_id": TIER2_SCHEDULE},
            customer_events={"files": [self.calendar]},
            incident_io={"webhook_secret": self.inc_secret},
            zendesk={"webhook_secret": self.zd_secret, "url": self.zendesk.url,
                     "email": ZD_AGENT, "api_token": self.zd_token,
                     "field_names": {ZD_EXHAUSTED: "Support exhausted knowledge"}},
            tls={"ca_file": self.pagerduty.ca_file},
            tracker={"kind": "gitlab", "url": self.gitlab.url, "token": self.gitlab.token,
                     "project": "support/retros"},
            jobs={"poll_interval_s": 0.1, "backoff_base_s": 0.5, "backoff_max_s": 5},
            ee={"roster_file": self.roster(), "channel": EE_CHANNEL},
            log={"level": "ERROR", "format": "console"},
        )

    def write_calendar(self) -> None:
        """Acme Corp migrates to a new payment provider over the story's weekend."""
        now = datetime.fromtimestamp(self.clock.now(), tz=UTC)
        start, end = now - timedelta(hours=2), now + timedelta(hours=40)
        self.calendar.write_text(
            "events:\n  - customer: Acme Corp\n    kind: migration\n"
            "    summary: move to the new payment provider\n"
            f"    start: {start.isoformat()}\n    end: {end.isoformat()}\n", encoding="utf-8")

    def headsups(self) -> list[str]:
        return [m.text for m in self.slack.messages.values() if m.channel == TIER2_CHANNEL]

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session, session.post(
                self.webhooks + path, data=body, headers=headers) as response:
            return response.status, await response.json(content_type=None)

    async def incident_io(self, event: dict[str, Any], *, secret: str | None = None
                          ) -> tuple[int, Any]:
        body = json.dumps(event).encode()
        headers = sign_standard_webhook(body, f"msg_{secrets.token_hex(8)}",
                                        int(self.clock.now()), secret or self.inc_secret)
        return await self.post("/webhooks/incident-io", body,
                               {**headers, "Content-Type": "application/json"})

    async def zendesk_trigger(self, ticket: dict[str, Any]) -> tuple[int, Any]:
        """A Zendesk trigger's webhook delivery, signed as Zendesk signs it."""
        sent = datetime.fromtimestamp(self.clock.now(), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body, headers = self.zendesk.signed(ticket, self.zd_secret, sent,
                                            f"inv-{secrets.token_hex(8)}")
        return await self.post("/webhooks/zendesk", body, headers)

    async def pagerduty_webhook(self, event: dict[str, Any]) -> tuple[int, Any]:
        body = json.dumps(event).encode()
        return await self.post("/webhooks/pagerduty", body, {
            "X-PagerDuty-Signature": sign_pagerduty(body, self.pd_secret),
            "X-Webhook-Id": secrets.token_hex(8), "Content-Type": "application/json"})


def fresh_folder(folder: Path) -> Path:
    """Every demo starts from an empty database: the story's numbers are the story's own."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


async def run_demo(folder: Path, port: int, auto_approve: bool) -> int:
    demo = Demo(folder, port)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(demo.slack)
        await stack.enter_async_context(demo.pagerduty)
        await stack.enter_async_context(demo.zendesk)
        demo.zendesk.add_ticket(ZD_TICKET)
        await demo.gitlab.start()
        stack.push_async_callback(demo.gitlab.close)
        demo.pagerduty.set_oncall(SCHEDULE, "PSMOCUSER", SMOC_EMAIL)
        demo.pagerduty.set_oncall(PLATFORM_SCHEDULE, "PPLATUSER", PLATFORM_SMOC_EMAIL)
        demo.write_calendar()
        # the Tier 2 engineer on call, who acknowledges: her profile time zone judges her load
        demo.pagerduty.set_oncall(TIER2_SCHEDULE, "PTIER2", TIER2_EMAIL)
        demo.pagerduty.set_user("PTIER2", TIER2_EMAIL, name="Tina (Tier 2)",
                                time_zone="America/Los_Angeles")
        demo.pagerduty.services[TIER2_SERVICE] = "Tier 2 (demo)"
        demo.pagerduty.requesters = {FROM_EMAIL}
        settings = demo.settings()
        configure(settings.log.level, settings.log.format, settings.secrets())
        store = Store(SqliteBackend(folder / "tier2gate.db", exclusive=True), demo.clock)
        metrics = Metrics()
        parts = build_parts(settings, store, demo.clock, metrics)
        app = build_app(settings, store, handlers=handlers(parts.deps), metrics=metrics,
                        checks=[lambda: parts.deps.policy.problem], on_close=parts.closers,
                        watch=parts.watch, preflight=parts.preflight())
        admin = build_admin_app(app)
        admin[DEMO_ACTIONS_KEY] = True
        admin[SMOC_USER] = SMOC_USER_ID
        admin.router.add_post("/demo/click", click)
        listeners = Listeners(app, admin)
        await listeners.start()
        stack.push_async_callback(listeners.stop)
        demo.webhooks = listeners.public_url
        admin[WEBHOOKS_URL] = demo.webhooks
        narrator = Narrator(store, demo)
        stack.push_async_callback(narrator.stop)
        narrator.start()
        return await story(demo, store, narrator, auto_approve)
    return 1


async def story(demo: Demo, store: Store, narrator: Narrator, auto_approve: bool) -> int:
    opened = iso(demo.clock.now())
    narrator.say(f"Saturday {opened[11:16]} UTC. tier2gate is up at {demo.base}/ "
                 f"(stand-ins: Slack, PagerDuty over TLS, GitLab, Zendesk).")
    await headsup_step(demo, narrator)
    s1 = incident_io_event(
        incident_id="01DEMOS1", reference="INC-5001", name="Checkout is down for Acme Corp",
        severity="SEV1", customer="Acme Corp", exhausted=True, category="triage",
        created_at=opened, updated_at=opened)
    await demo.incident_io(s1)
    s3 = incident_io_event(
        incident_id="01DEMOS3", reference="INC-5002", name="Export to CSV is slow",
        severity="SEV3", customer="Globex", exhausted=False, category="triage",
        created_at=opened, updated_at=opened)
    await demo.incident_io(s3)
    await ee_step(demo, narrator)
    status, body = await demo.incident_io(s1, secret="whsec_" + base64.b64encode(
        b"an attacker's guess at it").decode())
    narrator.say(f"A forged incident.io webhook was refused: HTTP {status} ({body['error']}).")

    escalation_id, channel, ts = await narrator.approval_request("01DEMOS1")
    if auto_approve:
        narrator.say("--auto-approve: pressing Approve as the SMOC.")
        await send_interaction(demo.webhooks, demo.slack_secret, demo.clock.now(), button_press(
            escalation_id, SMOC_USER_ID, "approve", channel, ts, f"{time.time():.6f}"))
    else:
        narrator.say(f"Open {demo.base}/#{escalation_id} and press Approve or Decline "
                     "(as the SMOC). Ctrl-C stops the demo.")
    verdict = await narrator.decision(escalation_id)
    if verdict == "approved":
        incident = await narrator.page(escalation_id)
        later = iso(demo.clock.now())
        await demo.pagerduty_webhook(pagerduty_event(
            "incident.acknowledged", event_id="ack-1", incident_id=incident,
            incident_key=page_key(escalation_id), service_id=TIER2_SERVICE,
            agent="Tina (Tier 2)", occurred_at=later))
        await narrator.acknowledged(escalation_id)  # as in life: the ack comes before the close
        closed = incident_io_event(
            incident_id="01DEMOS1", reference="INC-5001", name="Checkout is down for Acme Corp",
            severity="SEV1", customer="Acme Corp", exhausted=True, category="closed",
            created_at=opened, updated_at=later)
        await demo.incident_io(closed)
        await narrator.retro(escalation_id)
    await zendesk_step(demo, narrator)
    narrator.summary()
    if auto_approve:
        return 0 if verdict == "approved" and demo.gitlab.issues else 1
    narrator.say(f"The story is over; the dashboard stays up at {demo.base}/ until Ctrl-C.")
    await asyncio.Event().wait()
    return 0



async def headsup_step(demo: Demo, narrator: Narrator) -> None:
    """Friday 15:00 passed while the demo was not running: started within a day of it, the
    daemon sends the weekend heads-up late, once."""
    for _ in range(100):
        if demo.headsups():
            break
        await asyncio.sleep(0.1)
    text = "\n".join(demo.headsups())
    if "Acme Corp" in text and f"<@{TIER2_USER_ID}>" in text:
        narrator.say(f"Customer events: Friday's heads-up reached Tier 2 in Slack {TIER2_CHANNEL}"
                     ": Acme Corp migrates to a new payment provider this weekend; Tina is on "
                     "call for Tier 2.")
    else:
        narrator.say("Customer events: the weekend heads-up did not arrive (see the log).")


async def ee_step(demo: Demo, narrator: Narrator) -> None:
    """The request for help goes to the Escalation Engineer on rotation, who takes it and
    resolves it without Engineering: no RFH issue for Tier 2."""
    escalation_id, channel, ts = await narrator.ee_offer("01DEMOS3")
    for action, event in (("take", EventKind.EE_ASSIGNED), ("resolved", EventKind.EE_RESOLVED)):
        narrator.say(f"{EE_NAME}, the Escalation Engineer on rotation, presses "
                     f"\"{'Take it' if action == 'take' else 'Resolved without Engineering'}\".")
        await send_interaction(demo.webhooks, demo.slack_secret, demo.clock.now(),
                               ee_button_press(escalation_id, EE_USER_ID, action, channel, ts,
                                               f"{time.time():.6f}"))
        await narrator.ee_event(escalation_id, event)


async def zendesk_step(demo: Demo, narrator: Narrator) -> None:
    """Support marks an urgent Zendesk ticket for Tier 2; its trigger calls tier2gate."""
    now = iso(demo.clock.now())
    status, _ = await demo.zendesk_trigger(zendesk_ticket(ZD_TICKET, now))
    narrator.say(f"Zendesk ticket #{ZD_TICKET}: the trigger's signed delivery was accepted "
                 f"(HTTP {status}).")
    await narrator.approval_request(ZD_TICKET, "zendesk")
    narrator.say(f"Zendesk ticket #{ZD_TICKET} belongs to team platform (Zendesk group "
                 f"Platform Support): its own SMOC was asked in its own channel "
                 f"{PLATFORM_CHANNEL}, not the default team's.")
    notes = await narrator.desk_notes(demo.zendesk, ZD_TICKET,
                                      (f"{EventKind.CLASSIFIED.value}-emergency",
                                       EventKind.APPROVAL_REQUESTED.value))
    steps = ", ".join(note.rsplit(":", 1)[-1].replace("_", " ").replace("-", " ") for note in notes)
    narrator.say(f"Zendesk ticket #{ZD_TICKET} got {len(notes)} internal note(s) ({steps}), "
                 "seen by agents only; the SMOC's answer will be noted there too.")


def zendesk_ticket(ticket_id: str, now: str) -> dict[str, Any]:
    """The trigger body of docs/setup/zendesk.md, rendered for an urgent ticket."""
    return {
        "id": ticket_id, "subject": "Payments API returns 500 for Initech",
        "priority": "Urgent", "status": "Open", "tags": "tier2 payments",
        "organization": "Initech", "group": "Platform Support", "brand": "Initech",
        "url": f"https://demo.zendesk.com/agent/tickets/{ticket_id}",
        "created_at": now, "updated_at": now,
        "custom_fields": [{"id": ZD_EXHAUSTED, "value": "Yes"}],
        "updated_by": {"name": "Sam Support", "email": "sam@demo.example"},
    }
