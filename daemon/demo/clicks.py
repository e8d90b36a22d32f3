"""The dashboard's Approve / Decline in demo mode: a correctly signed Slack interaction, sent
as the SMOC to the daemon's own `/slack/interactions`, so the demo exercises the real path."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from daemon.appkeys import SETTINGS, STORE
from daemon.demo.payloads import button_press, decline_submission
from daemon.ingress.signatures import sign_slack

SMOC_USER = web.AppKey("demo_smoc_user", str)
WEBHOOKS_URL = web.AppKey("demo_webhooks_url", str)  # the public listener, where Slack posts


async def send_interaction(base_url: str, signing_secret: str, now: float,
                           interaction: dict[str, Any]) -> int:
    body = ("payload=" + quote(json.dumps(interaction))).encode()
    headers = {**sign_slack(body, signing_secret, int(now)),
               "Content-Type": "application/x-www-form-urlencoded"}
    async with aiohttp.ClientSession() as session, session.post(
            base_url + "/slack/interactions", data=body, headers=headers) as response:
        return response.status


async def click(request: web.Request) -> web.Response:
    form = await request.post()
    escalation_id = str(form.get("escalation_id", ""))
    decision = str(form.get("decision", ""))
    reason = str(form.get("reason", "")).strip() or "Declined from the demo dashboard"
    if decision not in ("approve", "decline"):
        raise web.HTTPBadRequest(text="decision must be approve or decline")
    current = await request.app[STORE].load_escalation(escalation_id)
    approval = current.gate.approval if current is not None else None
    if approval is None:
        raise web.HTTPNotFound(text="no approval request for that escalation")
    settings = request.app[SETTINGS]
    assert settings.slack.signing_secret is not None
    secret = settings.slack.signing_secret.get_secret_value()
    base = request.app[WEBHOOKS_URL]
    now = request.app[STORE].clock.now()
    # As the request's own SMOC (each Tier 1 team has its own), else the demo's.
    user = approval.approvers[0] if approval.approvers else request.app[SMOC_USER]
    await send_interaction(base, secret, now, button_press(
        escalation_id, user, decision, approval.channel, approval.ts, f"{time.time():.6f}"))
    if decision == "decline":
        await send_interaction(base, secret, now, decline_submission(
            escalation_id, user, approval.channel, approval.ts, reason))
    raise web.HTTPSeeOther(f"/#{escalation_id}")
