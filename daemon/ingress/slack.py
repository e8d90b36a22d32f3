"""Slack interactivity and the `/tier2` command: verify, store, answer within Slack's 3 s.

Clicks are stored as deliveries and decided by a job, so the answer to Slack never waits for
PagerDuty or the database of another replica. A click replayed byte for byte (the same body)
is a duplicate; a second, distinct click is a real event that the state machine turns away.
"""

from __future__ import annotations

import hashlib

from aiohttp import web

from daemon.appkeys import SETTINGS, STORE
from daemon.ingress.signatures import SignatureError, verify_slack
from daemon.ingress.webhooks import read_body, reject, store_delivery, unauthorized
from daemon.integrations.slack_payloads import (
    ButtonClick,
    InvalidInput,
    PayloadError,
    parse_interaction,
    parse_slash_command,
)
from daemon.jobs.approval import COMMAND, INTERACTION

FORM_TYPES = ("application/x-www-form-urlencoded",)


async def _verified_body(request: web.Request) -> bytes:
    body = await read_body(request, "slack", FORM_TYPES)
    secret = request.app[SETTINGS].slack.signing_secret
    if secret is None or not secret.get_secret_value():
        raise unauthorized(request, "slack", "no Slack signing secret is configured")
    try:
        verify_slack(body, request.headers, secret.get_secret_value(),
                     request.app[STORE].clock.now())
    except SignatureError as exc:
        raise unauthorized(request, "slack", exc.reason) from None
    return body


async def interactions(request: web.Request) -> web.Response:
    """Clicks and modal submissions.

    A submission of our own modal with a value the person must fix (a decline reason of only
    spaces, an escalation without a title) is answered the way Slack documents for modals: HTTP
    200 with `{"response_action": "errors", "errors": {<block_id>: <message>}}`, which keeps the
    modal open and shows each message under its input. Any other status makes Slack show a
    connection error and lose what was typed. Nothing is stored for such a submission.
    (api.slack.com/surfaces/modals#displaying_errors; the same shape is Bolt's
    `ViewErrorsResponseAction`, docs.slack.dev/tools/bolt-js/reference/interfaces/
    ViewErrorsResponseAction.)
    """
    body = await _verified_body(request)
    try:
        action = parse_interaction(body)
    except InvalidInput as exc:
        return web.json_response({"response_action": "errors", "errors": exc.errors})
    except PayloadError as exc:
        raise reject(400, exc.reason) from None
    if action is None:
        return web.Response(status=200)  # another app's button or a form we do not own
    kind = "block_actions" if isinstance(action, ButtonClick) else "view_submission"
    delivery_id = hashlib.sha256(body).hexdigest()[:40]
    await store_delivery(request, "slack", delivery_id, kind, body, INTERACTION)
    return web.Response(status=200)


async def commands(request: web.Request) -> web.Response:
    """`/tier2 [title]`: the form opens from a job within milliseconds; Slack gets 200 now."""
    body = await _verified_body(request)
    try:
        parse_slash_command(body)
    except PayloadError as exc:
        raise reject(400, exc.reason) from None
    delivery_id = hashlib.sha256(body).hexdigest()[:40]
    await store_delivery(request, "slack", delivery_id, "slash_command", body, COMMAND)
    return web.Response(status=200)
