"""Inbound vendor webhooks: verify the raw body, parse, store durably, answer. Nothing else.

Status codes are the contract's: 2xx only once the delivery is committed (fsync'd on SQLite);
a repeated delivery id answers 200 and does nothing; 401 for a missing, bad or stale
signature, 400 for a malformed body, 413 over the size limit, 415 for another content type;
nothing is stored for any of those. A store outage answers 503 so the vendor retries later.

Replays: incident.io signs its `webhook-id` and a timestamp checked to ±5 minutes, so a
captured delivery can only come back within minutes and under its own id (a duplicate).
PagerDuty V3 signs only the body: its signed `event.id` is the delivery id (the unsigned
`X-Webhook-Id` header is anyone's to change), and an event older than
`pagerduty.max_event_age_s` is recorded as stale and answered 200 without a job: PagerDuty
must get a 2xx for every validly signed delivery, but nothing may act on it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from daemon.appkeys import INTAKE, METRICS, SETTINGS, STORE
from daemon.clock import to_datetime
from daemon.ingress.limits import BodyRefused, read_bounded
from daemon.ingress.signatures import SignatureError, verify_pagerduty, verify_standard_webhook
from daemon.logging import DESCRIBED, get_logger
from daemon.sources import incident_io, pagerduty
from daemon.sources.fields import PayloadError, decode_json
from daemon.store import DeliveryState, Outage, StoreUnavailable

log = get_logger("tier2gate.ingress")

JSON_TYPES = ("application/json",)
_T = TypeVar("_T")


def reject(status: int, error: str) -> web.HTTPException:
    """An HTTP error with a JSON body: vendors' delivery logs show it to the operator."""
    cls: type[web.HTTPException] = {
        400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 415: web.HTTPUnsupportedMediaType,
        503: web.HTTPServiceUnavailable,
    }[status]
    return cls(text=json.dumps({"error": error}), content_type="application/json")


def too_large(limit: int, actual: int) -> web.HTTPException:
    return web.HTTPRequestEntityTooLarge(
        max_size=limit, actual_size=actual, content_type="application/json",
        text=json.dumps({"error": f"body over the {limit}-byte limit"}))


async def read_body(request: web.Request, source: str, content_types: tuple[str, ...]) -> bytes:
    """The raw body, read once and capped, after the content type was checked."""
    metrics = request.app[METRICS]
    if request.content_type not in content_types:
        metrics.webhook_rejections.labels(source, "content_type").inc()
        raise reject(415, f"expected Content-Type {' or '.join(content_types)}")
    limit = request.app[SETTINGS].http.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        metrics.webhook_rejections.labels(source, "too_large").inc()
        raise too_large(limit, request.content_length)
    try:
        return await read_bounded(request, limit, request.app[SETTINGS].http.body_timeout_s)
    except BodyRefused as exc:
        metrics.webhook_rejections.labels(source, exc.reason).inc()
        if exc.reason == "too_large":
            raise too_large(limit, limit + 1) from None
        log.warning("webhook.body_refused", source=source, reason=exc.reason)
        raise exc.answer() from None
    except RequestPayloadError:
        # e.g. a body that is not what its Content-Encoding says; vendors never compress. The
        # rest of the stream cannot be trusted either, so this connection ends with the answer.
        metrics.webhook_rejections.labels(source, "malformed").inc()
        error = reject(400, "the body cannot be read as sent (Content-Encoding?)")
        error.force_close()
        raise error from None


def unauthorized(request: web.Request, source: str, reason: str) -> web.HTTPException:
    request.app[METRICS].webhook_rejections.labels(source, "signature").inc()
    log.warning("webhook.rejected", source=source, reason=reason)
    return reject(401, reason)


def parse_json(request: web.Request, source: str, body: bytes) -> Any:
    try:
        return decode_json(body)
    except PayloadError as exc:
        request.app[METRICS].webhook_rejections.labels(source, "malformed").inc()
        raise reject(400, exc.reason) from None


async def record_delivery(request: web.Request, source: str, delivery_id: str,
                          event_type: str, body: bytes, job_kind: str,
                          timeout_s: float | None = None, *, stale: str = "") -> bool:
    """Commit the delivery and its processing job; False if this delivery id was seen.
    A `stale` delivery (the text says why) is recorded without a job, so it acts on nothing.

    Raises StoreUnavailable (logged) when the store cannot take it, or has not within
    `timeout_s`: the caller picks the answer its sender understands."""
    stored = request.app[STORE].record_delivery(
        source, delivery_id, event_type, body, None if stale else job_kind,
        DeliveryState.STALE if stale else DeliveryState.STORED, stale)
    # The ids go into the two log lines directly: binding them as context variables for the
    # duration of one await cost more than everything else this function does.
    try:
        # No Task for the common unbounded case: wait_for costs one per request.
        row_id = await (stored if timeout_s is None else asyncio.wait_for(stored, timeout_s))
    except TimeoutError:
        # Say what the store is going through when it is known ("locked"): the person reads it.
        trouble = request.app[STORE].trouble
        late = StoreUnavailable(f"the store did not take the delivery within {timeout_s:g} s",
                                trouble.kind if trouble is not None else Outage.TIMEOUT)
        log.error("webhook.store_unavailable", kind=late.kind.value, error=str(late),
                  delivery_id=delivery_id, source=source)
        raise late from None
    except StoreUnavailable as exc:
        log.error("webhook.store_unavailable", kind=exc.kind.value, error=str(exc),
                  delivery_id=delivery_id, source=source)
        raise
    if row_id is not None and stale:
        log.warning("webhook.stale", event_type=event_type, delivery_id=delivery_id,
                    source=source, reason=stale)
    else:
        log.info("webhook.duplicate" if row_id is None else "webhook.stored",
                 event_type=event_type, delivery_id=delivery_id, source=source)
    request[DESCRIBED] = True  # that line says it all: no `http.access` line too (log.access)
    return row_id is not None


def store_unavailable(exc: StoreUnavailable) -> web.HTTPException:
    """503 so the vendor retries later; the kind (never the database's words, which name
    hosts and files) goes into the vendor's delivery log for the operator."""
    return reject(503, f"store unavailable ({exc.kind}), retry later")


async def store_delivery(request: web.Request, source: str, delivery_id: str, event_type: str,
                         body: bytes, job_kind: str, *, stale: str = "") -> bool:
    """`record_delivery`, answering 503 when the store cannot take it."""
    try:
        return await record_delivery(request, source, delivery_id, event_type, body, job_kind,
                                     stale=stale)
    except StoreUnavailable as exc:
        raise store_unavailable(exc) from None


_ACCEPTED = json.dumps({"status": "accepted"}).encode()
_DUPLICATE = json.dumps({"status": "duplicate"}).encode()
_STALE = json.dumps({"status": "stale"}).encode()


def accepted(new: bool) -> web.Response:
    """202 for a new delivery, 200 for a repeat; the JSON bodies are encoded once, at import."""
    if new:
        return web.Response(body=_ACCEPTED, status=202, content_type="application/json",
                            charset="utf-8")
    return web.Response(body=_DUPLICATE, status=200, content_type="application/json",
                        charset="utf-8")


async def pagerduty_webhook(request: web.Request) -> web.Response:
    gauge = request.app[INTAKE]
    gauge.begin()  # the job runner yields to a burst of these (`JobRunner._yield`)
    try:
        return await _pagerduty_webhook(request)
    finally:
        gauge.end()


async def _pagerduty_webhook(request: web.Request) -> web.Response:
    body = await read_body(request, "pagerduty", JSON_TYPES)
    secrets = [s.get_secret_value() for s in request.app[SETTINGS].pagerduty.webhook_secrets]
    if not secrets:
        raise unauthorized(request, "pagerduty", "no PagerDuty webhook secret is configured")
    try:
        verify_pagerduty(body, request.headers.get("X-PagerDuty-Signature"), secrets)
    except SignatureError as exc:
        raise unauthorized(request, "pagerduty", exc.reason) from None
    payload = parse_json(request, "pagerduty", body)
    now = request.app[STORE].clock.now()
    event = _parsed(request, "pagerduty",
                    lambda: pagerduty.parse_pagerduty(payload, received_at=to_datetime(now)))
    # An event without `occurred_at` reads as received now, so it is never stale: the age
    # check can only be as good as the signed timestamp PagerDuty gives us.
    age_s = now - event.occurred_at.timestamp()
    max_age_s = request.app[SETTINGS].pagerduty.max_event_age_s
    if age_s > max_age_s:
        request.app[METRICS].webhook_rejections.labels("pagerduty", "stale").inc()
        why = (f"occurred at {event.occurred_at.isoformat()}, {age_s / 3600:.1f} h before it "
               f"arrived: older than pagerduty.max_event_age_s ({max_age_s:g} s)")
        new = await store_delivery(request, "pagerduty", event.event_id, event.event_type, body,
                                   pagerduty.INTAKE_PAGERDUTY, stale=why)
        return web.Response(body=_STALE if new else _DUPLICATE, status=200,
                            content_type="application/json", charset="utf-8")
    return accepted(await store_delivery(request, "pagerduty", event.event_id, event.event_type,
                                         body, pagerduty.INTAKE_PAGERDUTY))


async def incident_io_webhook(request: web.Request) -> web.Response:
    gauge = request.app[INTAKE]
    gauge.begin()  # the job runner yields to a burst of these (`JobRunner._yield`)
    try:
        return await _incident_io_webhook(request)
    finally:
        gauge.end()


async def _incident_io_webhook(request: web.Request) -> web.Response:
    body = await read_body(request, "incident_io", JSON_TYPES)
    secret = request.app[SETTINGS].incident_io.webhook_secret
    if secret is None or not secret.get_secret_value():
        raise unauthorized(request, "incident_io", "no incident.io webhook secret is configured")
    try:
        delivery_id = verify_standard_webhook(body, request.headers, secret.get_secret_value(),
                                              request.app[STORE].clock.now())
    except SignatureError as exc:
        raise unauthorized(request, "incident_io", exc.reason) from None
    except ValueError:
        log.error("webhook.secret_misconfigured", source="incident_io")
        raise reject(503, "the incident.io webhook secret is misconfigured") from None
    # Only the checks that decide 400 or 2xx, reading no more of the body than they need:
    # the escalation is built by the job, once.
    event_type = _parsed(request, "incident_io",
                         lambda: incident_io.check_incident_io_body(body))
    return accepted(await store_delivery(request, "incident_io", delivery_id, event_type,
                                         body, incident_io.INTAKE_INCIDENT_IO))


def _parsed(request: web.Request, source: str, parse: Callable[[], _T]) -> _T:
    try:
        return parse()
    except PayloadError as exc:
        request.app[METRICS].webhook_rejections.labels(source, "malformed").inc()
        raise reject(400, exc.reason) from None
