"""Support desk webhooks: `POST /webhooks/zendesk` and `POST /webhooks/jira`.

Same rules as the other webhooks (`ingress.webhooks`): verify on the raw body, parse, store
durably, answer; 401 with nothing stored for a missing, bad or stale signature, 400 for a body
that is not a ticket, a repeated delivery id 200 and nothing new.

Freshness: Zendesk signs its timestamp header, checked to ±5 minutes. Jira signs only the body,
so the body's own `timestamp` must be within `jsm.max_event_age_s` (and not ahead of us by more
than 5 minutes); without it a captured delivery would verify forever. Jira automation's unsigned
web request, allowed only with `jsm.automation_token`, has neither: it is the lower-assurance
path (README), and its delivery id is the digest of its body, so a replay of it is a duplicate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from aiohttp import web

from daemon.appkeys import METRICS, SETTINGS, STORE
from daemon.ingress.signatures import (
    JIRA_SIGNATURE_HEADER,
    TOLERANCE_S,
    SignatureError,
    verify_jira,
    verify_jira_token,
    verify_zendesk,
)
from daemon.ingress.webhooks import (
    JSON_TYPES,
    accepted,
    parse_json,
    read_body,
    reject,
    store_delivery,
    unauthorized,
)
from daemon.logging import get_logger
from daemon.sources.desks import INTAKE_DESK, DeskEvent, parse_jsm, parse_zendesk
from daemon.sources.fields import PayloadError

log = get_logger("tier2gate.ingress")


async def zendesk_webhook(request: web.Request) -> web.Response:
    body = await read_body(request, "zendesk", JSON_TYPES)
    settings = request.app[SETTINGS].zendesk
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    if not secret:
        raise unauthorized(request, "zendesk", "no Zendesk webhook secret is configured")
    try:
        delivery_id = verify_zendesk(body, request.headers, secret,
                                     request.app[STORE].clock.now())
    except SignatureError as exc:
        raise unauthorized(request, "zendesk", exc.reason) from None
    payload = parse_json(request, "zendesk", body)
    event = _parsed(request, "zendesk",
                    lambda: parse_zendesk(payload, field_names=settings.field_names))
    return accepted(await store_delivery(request, "zendesk", delivery_id, event.event_type,
                                         body, INTAKE_DESK))


async def jira_webhook(request: web.Request) -> web.Response:
    body = await read_body(request, "jsm", JSON_TYPES)
    settings = request.app[SETTINGS].jsm
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    token = settings.automation_token.get_secret_value() if settings.automation_token else ""
    # A signature, when sent, is always checked: a bad one is not rescued by the token path.
    signed = JIRA_SIGNATURE_HEADER.lower() in {name.lower() for name in request.headers}
    if not secret and not token:
        raise unauthorized(request, "jsm", "no Jira webhook secret is configured")
    try:
        if signed or not token:
            delivery_id = verify_jira(body, request.headers, secret)
        else:
            verify_jira_token(request.headers, token)
            delivery_id = "automation:" + hashlib.sha256(body).hexdigest()
    except SignatureError as exc:
        raise unauthorized(request, "jsm", exc.reason) from None
    payload = parse_json(request, "jsm", body)
    event = _parsed(request, "jsm", lambda: parse_jsm(
        payload, field_names=settings.field_names, customer_field=settings.customer_field))
    if signed or not token:
        _fresh(request, event, settings.max_event_age_s)
    return accepted(await store_delivery(request, "jsm", delivery_id, event.event_type, body,
                                         INTAKE_DESK))


def _fresh(request: web.Request, event: DeskEvent, max_age_s: float) -> None:
    """Refuse a signed Jira delivery whose signed `timestamp` is missing or out of its window:
    it is a replay (or a clock far off), and nothing of it may be stored."""
    now = request.app[STORE].clock.now()
    sent = event.sent_at.timestamp() if event.sent_at is not None else None
    if sent is not None and -TOLERANCE_S <= now - sent <= max_age_s:
        return
    request.app[METRICS].webhook_rejections.labels("jsm", "stale").inc()
    reason = ("the body has no timestamp" if sent is None else
              f"timestamp is outside the window (jsm.max_event_age_s = {max_age_s:g} s)")
    log.warning("webhook.rejected", source="jsm", reason=reason)
    raise reject(401, reason)


def _parsed(request: web.Request, source: str, parse: Callable[[], DeskEvent]) -> DeskEvent:
    try:
        return parse()
    except PayloadError as exc:
        request.app[METRICS].webhook_rejections.labels(source, "malformed").inc()
        raise reject(400, exc.reason) from None
