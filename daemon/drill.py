"""`tier2gate drill`: a rehearsal of the live path on the configured vendors.

The running daemon does the work, because only it receives Slack's clicks: the command asks
its admin listener for a drill (`POST /api/drills`), which enqueues a `drill` job; the job
declares a synthetic escalation marked `drill` that goes the whole way: classified, the
approval request to the real SMOC (marked DRILL), the click, the page to the drill service
(or recorded without paging), the retro issue labelled drill, opened and closed. The command
follows the timeline (`GET /api/drills/{id}`) and prints each step with its latency.
`--auto-approve` presses Approve as the approver, with a signed interaction to the public
listener (as the demo's dashboard does), for CI against the stand-ins.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from daemon.appkeys import STORE
from daemon.demo.clicks import send_interaction
from daemon.demo.payloads import button_press
from daemon.domain.models import Source
from daemon.jobs.intake import DRILL, drill_external_id
from daemon.settings import Settings
from daemon.store import NewJob

POLL_S = 0.25


@dataclass(frozen=True)
class Step:
    """A timeline event the drill waits for, and how it reads on the terminal."""

    events: tuple[str, ...]
    words: str


STEPS = (
    Step(("classified",), "classified"),
    Step(("approval_requested",), "approval request posted"),
    Step(("approved", "declined", "approval_timed_out"), "decided"),
    Step(("paged", "would_have_paged"), "page"),
    Step(("retro_opened", "would_have_opened_retro"), "retro issue opened and closed"),
)


# --- the daemon's side: the admin listener ------------------------------------------------------


async def start_drill(request: web.Request) -> web.Response:
    drill_id = secrets.token_hex(8)
    store = request.app[STORE]
    await store.enqueue(NewJob(DRILL, f"{DRILL}:{drill_id}", {"drill_id": drill_id},
                               store.clock.now()))
    return web.json_response({"drill_id": drill_id}, status=202)


async def drill_status(request: web.Request) -> web.Response:
    store = request.app[STORE]
    current = await store.load_by_source(Source.SLACK,
                                         drill_external_id(request.match_info["id"]))
    if current is None:
        return web.json_response({"phase": "queued", "timeline": []})
    gate = current.gate
    approval = gate.approval
    return web.json_response({
        "escalation_id": current.row.id, "phase": gate.phase.value,
        "approval": None if approval is None else {
            "channel": approval.channel, "ts": approval.ts, "approvers": list(approval.approvers)},
        "problems": [p.reason for p in gate.problems],
        "timeline": [{"event": e.event, "at": e.at, "actor": e.actor, "details": e.details}
                     for e in await store.timeline(current.row.id)],
    })


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/drills", start_drill)
    app.router.add_get("/api/drills/{id}", drill_status)


# --- the command's side -------------------------------------------------------------------------


class DrillFailed(Exception):
    """The rehearsal stopped short; the message says at which step and why."""


def _summary(entry: dict[str, Any]) -> str:
    details = entry["details"]
    event = str(entry["event"])
    if event == "classified":
        return f"{details.get('outcome')} per rule {details.get('rule')!r}"
    if event == "approval_requested":
        return "to " + ", ".join(details.get("approvers") or []) if details.get(
            "approvers") else "posted"
    if event in ("approved", "declined"):
        return f"{event} by {entry['actor']}"
    if event == "would_have_paged":
        return "recorded without paging (no drill.pagerduty_service_id or routing key)"
    if event == "paged":
        return f"drill service paged: {details.get('url') or details.get('incident_id')}"
    if event in ("retro_opened", "would_have_opened_retro"):
        return str(details.get("url") or "SHADOW mode: no issue")
    return event


async def run_drill(settings: Settings, admin_url: str, public_url: str, *,
                    auto_approve: bool, timeout_s: float, out: Any) -> None:
    """Start a drill and print each step as it happens; raise DrillFailed when it stops."""
    headers = {}
    if settings.admin.token is not None:
        headers["Authorization"] = f"Bearer {settings.admin.token.get_secret_value()}"
    started = time.monotonic()
    last = started
    deadline = started + timeout_s
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(f"{admin_url}/api/drills") as response:
            if response.status != 202:
                raise DrillFailed(f"the daemon at {admin_url} refused the drill: HTTP "
                                  f"{response.status}")
            drill_id = (await response.json())["drill_id"]
        print(f"drill {drill_id}: started", file=out, flush=True)
        pressed = False
        for step in STEPS:
            while True:
                async with session.get(f"{admin_url}/api/drills/{drill_id}") as response:
                    status = await response.json()
                entry = next((e for e in status["timeline"] if e["event"] in step.events), None)
                if entry is not None:
                    break
                if status.get("problems"):
                    raise DrillFailed(f"{step.words}: {'; '.join(status['problems'])}")
                if (auto_approve and not pressed and status.get("approval")
                        and step.events[0] == "approved"):
                    await _press_approve(settings, public_url, status)
                    pressed = True
                if time.monotonic() > deadline:
                    raise DrillFailed(f"no '{step.words}' within {timeout_s:g} s "
                                      f"(phase {status['phase']})")
                await asyncio.sleep(POLL_S)
            now = time.monotonic()
            print(f"  ✓ {step.words:<30} +{now - last:6.2f} s  (total {now - started:6.2f} s)"
                  f"  {_summary(entry)}", file=out, flush=True)
            last = now
            if entry["event"] == "classified" and entry["details"].get("outcome") != "emergency":
                raise DrillFailed("the policy does not call the drill an emergency: check that "
                                  "its first severity with every criterion is one")
            if entry["event"] in ("declined", "approval_timed_out"):
                raise DrillFailed(f"the approver did not approve ({entry['event']})")
    print(f"drill {drill_id}: passed in {time.monotonic() - started:.2f} s", file=out)


async def _press_approve(settings: Settings, public_url: str, status: dict[str, Any]) -> None:
    """As the first approver (the SMOC), the way Slack would send the click."""
    if settings.slack.signing_secret is None:
        raise DrillFailed("--auto-approve needs slack.signing_secret to sign the click")
    approval = status["approval"]
    if not approval["approvers"]:
        raise DrillFailed("nobody can approve the drill: no SMOC and no backups")
    interaction = button_press(status["escalation_id"], approval["approvers"][0], "approve",
                               approval["channel"], approval["ts"], f"{time.time():.6f}")
    answer = await send_interaction(public_url, settings.slack.signing_secret.get_secret_value(),
                                    time.time(), interaction)
    if answer != 200:
        raise DrillFailed(f"the signed click was refused by {public_url}: HTTP {answer}")
