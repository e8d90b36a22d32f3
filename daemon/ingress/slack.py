"""Slack interactivity and the `/tier2` command: verify, store, answer within Slack's 3 s.

Clicks are stored as deliveries and decided by a job, so the answer to Slack never waits for
PagerDuty or the database of another replica. A click replayed byte for byte (the same body)
is a duplicate; a second, distinct click is a real event that the state machine turns away.

The store gets `STORE_WAIT_S`; whatever it does meanwhile (locked, read-only, full, gone), the
person hears back within Slack's 3 s, in the one place Slack shows for that surface:
- a button click: 503. Slack ignores the body of a block_actions answer, but a non-2xx marks the
  click as failed in the client, so the approver knows to press again (a late store is not
  needed: the click is not written once we gave up on it, see sqlite._commit_batch);
- a form submission: 200 with `response_action: errors`, the message under the first input;
  the form stays open with what was typed, to submit again;
- `/tier2`: 200 with an ephemeral message, Slack's documented way to report a command's error
  (api.slack.com/interactivity/slash-commands#responding_with_errors).
"""

from __future__ import annotations

import hashlib

from aiohttp import web

from daemon.appkeys import SETTINGS, STORE
from daemon.ingress.signatures import SignatureError, verify_slack
from daemon.ingress.webhooks import read_body, record_delivery, reject, unauthorized
from daemon.integrations.slack import REASON_BLOCK
from daemon.integrations.slack_forms import TITLE
from daemon.integrations.slack_payloads import (
    ButtonClick,
    DeclineReason,
    EEClick,
    InvalidInput,
    PayloadError,
    parse_interaction,
    parse_slash_command,
)
from daemon.jobs.deciding import INTERACTION
from daemon.jobs.forms import COMMAND
from daemon.store import StoreUnavailable

FORM_TYPES = ("application/x-www-form-urlencoded",)
STORE_WAIT_S = 2.0
"""The longest a Slack request waits for the store. Slack gives up after 3 s and then shows
the person only a generic error; the rest of the 3 s is for the network both ways and for
verifying the signature. The SQLite busy timeout is kept below it (sqlite.BUSY_TIMEOUT_S)."""


def unavailable_text(exc: StoreUnavailable) -> str:
    """What the person reads when their click or form could not be recorded."""
    return (f"tier2gate could not record this: its database is unavailable ({exc.kind}). "
            "Nothing happened yet. Try again in a minute; if Tier 2 must be paged now, page "
            "them in PagerDuty by hand.")


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
    click = isinstance(action, ButtonClick | EEClick)
    kind = "block_actions" if click else "view_submission"
    delivery_id = hashlib.sha256(body).hexdigest()[:40]
    try:
        await record_delivery(request, "slack", delivery_id, kind, body, INTERACTION,
                              timeout_s=STORE_WAIT_S)
    except StoreUnavailable as exc:
        if click:
            return web.Response(status=503, text=unavailable_text(exc))
        block = REASON_BLOCK if isinstance(action, DeclineReason) else TITLE[0]
        return web.json_response({"response_action": "errors",
                                  "errors": {block: unavailable_text(exc)}})
    return web.Response(status=200)


async def commands(request: web.Request) -> web.Response:
    """`/tier2 [title]`: the form opens from a job within milliseconds; Slack gets 200 now."""
    body = await _verified_body(request)
    try:
        parse_slash_command(body)
    except PayloadError as exc:
        raise reject(400, exc.reason) from None
    delivery_id = hashlib.sha256(body).hexdigest()[:40]
    try:
        await record_delivery(request, "slack", delivery_id, "slash_command", body, COMMAND,
                              timeout_s=STORE_WAIT_S)
    except StoreUnavailable as exc:
        return web.json_response({"response_type": "ephemeral", "text": unavailable_text(exc)})
    return web.Response(status=200)
