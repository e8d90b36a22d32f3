"""Webhook signature checks for PagerDuty, incident.io (Standard Webhooks / Svix), Slack and the
support desks (Zendesk, Jira Service Management).

Everything here works on the raw request bytes: re-serialising a parsed body changes the bytes
and breaks every vendor's HMAC. Functions are pure (the clock is a parameter) so tests can use
the vendors' published vectors. A failed check raises `SignatureError` whose reason is short and
never contains a secret or a computed signature, so it is safe to log and to return as a 401 body.

The `sign_*` helpers produce correctly signed headers for tests and for the local demo.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime

from multidict import CIMultiDict, CIMultiDictProxy
from slack_sdk.signature import Clock, SignatureVerifier

TOLERANCE_S = 300
"""Standard Webhooks libraries and Slack accept a timestamp at most 5 minutes off, inclusive."""

_MAX_TIMESTAMP_DIGITS = 15
"""Unix seconds have 10 digits until the year 2286; longer values are garbage, not clock skew."""

PAGERDUTY_SIGNATURE_HEADER = "X-PagerDuty-Signature"
SLACK_SIGNATURE_HEADER = "X-Slack-Signature"
SLACK_TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
_STANDARD_PREFIXES = ("webhook-", "svix-")
_STANDARD_NAMES = tuple((f"{prefix}id", f"{prefix}timestamp", f"{prefix}signature")
                        for prefix in _STANDARD_PREFIXES)


class SignatureError(Exception):
    """The request is not provably from the vendor: answer 401 and store nothing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- PagerDuty ---------------------------------------------------------------------------------


def _pagerduty_digest(body: bytes, secret: str) -> str:
    # One call into OpenSSL (`hmac.digest`), not the Python-level HMAC object: per delivery.
    return hmac.digest(secret.encode("utf-8"), body, "sha256").hex()


def verify_pagerduty(body: bytes, header: str | None, secrets: Sequence[str]) -> None:
    """Accept the delivery if any `v1=` entry matches any configured secret.

    Several secrets and several entries exist so that a secret can be rotated without downtime;
    entries of other versions are skipped so that PagerDuty can introduce `v2` without breaking
    us. Blank secrets are ignored: an HMAC keyed with "" proves nothing.
    """
    if isinstance(secrets, str):
        raise TypeError("secrets must be a sequence of secrets, not one string")
    keys = [secret for secret in secrets if secret]
    if not keys:
        raise SignatureError("no PagerDuty webhook secret configured")
    if header is None or not header.strip():
        raise SignatureError(f"missing {PAGERDUTY_SIGNATURE_HEADER}")
    candidates = [
        _ascii_bytes(entry[3:].lower())
        for entry in (part.strip() for part in header.split(","))
        if entry.startswith("v1=")
    ]
    if not candidates:
        raise SignatureError(f"no v1 signature in {PAGERDUTY_SIGNATURE_HEADER}")
    expected = [_pagerduty_digest(body, key).encode("ascii") for key in keys]
    if not any(hmac.compare_digest(want, got) for want in expected for got in candidates):
        raise SignatureError("no matching v1 signature")


def sign_pagerduty(body: bytes, secret: str) -> str:
    """The `X-PagerDuty-Signature` value PagerDuty would send for `body`."""
    return f"v1={_pagerduty_digest(body, secret)}"


# --- Standard Webhooks / Svix (incident.io) ----------------------------------------------------


def decode_standard_webhook_secret(secret: str) -> bytes:
    """The HMAC key behind a `whsec_<base64>` secret (the prefix is optional).

    Raises ValueError for a secret that is not base64: that is a configuration mistake, not a
    bad request, so settings validation should call this at startup.
    """
    encoded = secret.strip().removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the Standard Webhooks secret is not valid base64") from None
    if not key:
        raise ValueError("the Standard Webhooks secret is empty")
    return key


def _standard_digest(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    # HMAC over "{id}.{timestamp}." + body in one call into OpenSSL: copying a webhook body
    # (a few KB) costs less than the Python-level HMAC object fed in two parts.
    return hmac.digest(key, f"{msg_id}.{timestamp}.".encode() + body, "sha256")


@functools.lru_cache(maxsize=16)
def _standard_key(secret: str) -> bytes:
    """The decoded key, once per configured secret rather than once per request (a bad
    secret raises every time: exceptions are not cached)."""
    return decode_standard_webhook_secret(secret)


def _standard_headers(headers: Mapping[str, str]) -> tuple[str, str, str]:
    """(id, timestamp, signature), preferring the unbranded `webhook-*` set over `svix-*`.

    Header names are case-insensitive: a request's own headers (a `CIMultiDictProxy`) are
    looked up as they are; any other mapping is read into one first. Copying every header of
    every delivery into a lowered dict cost more than the six look-ups. A header sent twice
    counts as its last value, as it always has."""
    named = headers if isinstance(headers, CIMultiDictProxy | CIMultiDict) else (
        CIMultiDict(headers))

    def last(name: str) -> str:
        values = named.getall(name, None)
        return values[-1] if values else ""

    for id_name, timestamp_name, signature_name in _STANDARD_NAMES:
        msg_id, timestamp, signature = last(id_name), last(timestamp_name), last(signature_name)
        if msg_id and timestamp and signature:
            return msg_id, timestamp, signature
    for part in ("id", "timestamp", "signature"):
        if not any(last(prefix + part) for prefix in _STANDARD_PREFIXES):
            raise SignatureError(f"missing webhook-{part}")
    raise SignatureError("incomplete webhook-* and svix-* header sets")


def verify_standard_webhook(
    body: bytes, headers: Mapping[str, str], secret: str, now: float
) -> str:
    """Check a Standard Webhooks (Svix) signature and return the `webhook-id`.

    The id is the idempotency key: incident.io redelivers with the same id. The timestamp window
    (±`TOLERANCE_S`) stops replays of captured deliveries. Asymmetric `v1a,` and unknown
    entries are skipped, as the spec asks.
    """
    key = _standard_key(secret)
    msg_id, timestamp, signature_header = _standard_headers(headers)
    sent_at = _parse_timestamp(timestamp, "webhook-timestamp")
    if now - sent_at > TOLERANCE_S:
        raise SignatureError("webhook-timestamp is too old")
    if sent_at - now > TOLERANCE_S:
        raise SignatureError("webhook-timestamp is in the future")
    try:
        expected = _standard_digest(key, msg_id, timestamp, body)
    except UnicodeEncodeError:
        raise SignatureError("webhook-id is not valid text") from None
    seen_v1 = False
    for entry in signature_header.split(" "):
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        seen_v1 = True
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, candidate):
            return msg_id
    if not seen_v1:
        raise SignatureError("no v1 signature in webhook-signature")
    raise SignatureError("no matching v1 signature")


def sign_standard_webhook(body: bytes, msg_id: str, timestamp: int, secret: str) -> dict[str, str]:
    """Headers incident.io (via Svix) would send for `body`."""
    digest = _standard_digest(decode_standard_webhook_secret(secret), msg_id, str(timestamp), body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode("ascii"),
    }


# --- Slack -------------------------------------------------------------------------------------


class _FixedClock(Clock):
    """slack_sdk reads time through a clock object; ours is the caller's `now`."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def verify_slack(body: bytes, headers: Mapping[str, str], signing_secret: str, now: float) -> None:
    """Check Slack's v0 signature with slack_sdk's verifier.

    The SDK answers only yes/no and raises on some malformed input (a non-numeric timestamp,
    a body that is not UTF-8, non-ASCII in the signature), so those cases are rejected here
    first, each with its own reason. An empty signing secret raises ValueError (configuration).
    """
    verifier = SignatureVerifier(signing_secret, clock=_FixedClock(now))
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = lowered.get(SLACK_TIMESTAMP_HEADER.lower())
    signature = lowered.get(SLACK_SIGNATURE_HEADER.lower())
    if not timestamp:
        raise SignatureError(f"missing {SLACK_TIMESTAMP_HEADER}")
    if not signature:
        raise SignatureError(f"missing {SLACK_SIGNATURE_HEADER}")
    sent_at = _parse_timestamp(timestamp, SLACK_TIMESTAMP_HEADER)
    if abs(now - sent_at) > TOLERANCE_S:
        raise SignatureError(f"{SLACK_TIMESTAMP_HEADER} is outside the 5-minute window")
    if not signature.isascii():
        raise SignatureError(f"{SLACK_SIGNATURE_HEADER} is not ASCII")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureError("body is not UTF-8") from None
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        raise SignatureError(f"{SLACK_SIGNATURE_HEADER} does not match")


def sign_slack(body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    """Headers Slack would send for `body`."""
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    if signature is None:  # only when timestamp is None, which the type excludes
        raise ValueError("slack_sdk produced no signature")
    return {SLACK_TIMESTAMP_HEADER: str(timestamp), SLACK_SIGNATURE_HEADER: signature}


# --- Zendesk ------------------------------------------------------------------------------------

ZENDESK_SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
ZENDESK_INVOCATION_HEADER = "X-Zendesk-Webhook-Invocation-Id"
_MAX_ISO_TIMESTAMP_CHARS = 40


def _zendesk_digest(secret: str, timestamp: str, body: bytes) -> bytes:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii"), hashlib.sha256)
    mac.update(body)
    return mac.digest()


def verify_zendesk(body: bytes, headers: Mapping[str, str], secret: str, now: float) -> str:
    """Check a Zendesk webhook signature and return the invocation id (the delivery id).

    "Verifying webhook authenticity" (https://developer.zendesk.com/documentation/webhooks/verifying/):
    `X-Zendesk-Webhook-Signature` is base64(HMAC-SHA256(secret, TIMESTAMP + BODY)), where
    TIMESTAMP is the `X-Zendesk-Webhook-Signature-Timestamp` header as sent (ISO 8601, e.g.
    `2021-07-25T10:00:00Z`) and the key is the signing secret's text as shown in Admin Center
    (not base64-decoded). The timestamp must lie within ±`TOLERANCE_S`: it is the only signed
    freshness Zendesk gives. The invocation id (`X-Zendesk-Webhook-Invocation-Id`, kept across
    Zendesk's retries) is not signed; a replay under a new id is still bound by the window,
    and a desk ticket's facts are applied idempotently (`jobs.intake`).
    """
    if not secret:
        raise SignatureError("no Zendesk webhook signing secret configured")
    lowered = {name.lower(): value for name, value in headers.items()}
    signature = lowered.get(ZENDESK_SIGNATURE_HEADER.lower(), "")
    timestamp = lowered.get(ZENDESK_TIMESTAMP_HEADER.lower(), "")
    invocation = lowered.get(ZENDESK_INVOCATION_HEADER.lower(), "").strip()
    if not signature:
        raise SignatureError(f"missing {ZENDESK_SIGNATURE_HEADER}")
    if not timestamp:
        raise SignatureError(f"missing {ZENDESK_TIMESTAMP_HEADER}")
    sent_at = _parse_iso_timestamp(timestamp, ZENDESK_TIMESTAMP_HEADER)
    if abs(now - sent_at) > TOLERANCE_S:
        raise SignatureError(f"{ZENDESK_TIMESTAMP_HEADER} is outside the 5-minute window")
    try:
        candidate = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{ZENDESK_SIGNATURE_HEADER} is not base64") from None
    if not hmac.compare_digest(_zendesk_digest(secret, timestamp, body), candidate):
        raise SignatureError(f"{ZENDESK_SIGNATURE_HEADER} does not match")
    if not invocation or not invocation.isascii() or len(invocation) > 200:
        raise SignatureError(f"missing or invalid {ZENDESK_INVOCATION_HEADER}")
    return invocation


def sign_zendesk(body: bytes, secret: str, timestamp: str, invocation_id: str) -> dict[str, str]:
    """Headers Zendesk would send for `body` (`timestamp` in ISO 8601, as Zendesk writes it)."""
    digest = _zendesk_digest(secret, timestamp, body)
    return {ZENDESK_SIGNATURE_HEADER: base64.b64encode(digest).decode("ascii"),
            ZENDESK_TIMESTAMP_HEADER: timestamp, ZENDESK_INVOCATION_HEADER: invocation_id}


# --- Jira (admin webhooks, WebSub signatures) ---------------------------------------------------

JIRA_SIGNATURE_HEADER = "X-Hub-Signature"
JIRA_IDENTIFIER_HEADER = "X-Atlassian-Webhook-Identifier"
JIRA_TOKEN_HEADER = "X-Tier2gate-Token"  # noqa: S105 - a header name, not a secret


def verify_jira(body: bytes, headers: Mapping[str, str], secret: str) -> str:
    """Check a Jira admin webhook's signature and return its delivery identifier.

    "Secure admin webhooks" (https://developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks):
    a webhook registered with a secret carries `X-Hub-Signature: sha256=<hex HMAC-SHA256 of
    the raw body>` (WebSub's `method=signature`, https://www.w3.org/TR/websub/#signing-content).
    `X-Atlassian-Webhook-Identifier` is the same across retries of one delivery
    (https://developer.atlassian.com/cloud/jira/platform/webhooks/#known-issues), so it is the
    delivery id. Jira signs no timestamp: the caller judges the body's own `timestamp`.
    """
    if not secret:
        raise SignatureError("no Jira webhook secret configured")
    lowered = {name.lower(): value for name, value in headers.items()}
    header = lowered.get(JIRA_SIGNATURE_HEADER.lower(), "").strip()
    if not header:
        raise SignatureError(f"missing {JIRA_SIGNATURE_HEADER}")
    method, _, hex_digest = header.partition("=")
    if method.lower() != "sha256":
        raise SignatureError(f"{JIRA_SIGNATURE_HEADER} is not sha256")
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), _ascii_bytes(hex_digest.lower())):
        raise SignatureError(f"{JIRA_SIGNATURE_HEADER} does not match")
    return _jira_identifier(lowered)


def verify_jira_token(headers: Mapping[str, str], token: str) -> None:
    """The lower-assurance path for Jira automation's "Send web request", which cannot sign:
    a shared secret in the `X-Tier2gate-Token` header (compared in constant time). It proves
    who knows the token, not that the body is unchanged, and gives no freshness at all."""
    if not token:
        raise SignatureError("no Jira automation token configured")
    sent = {name.lower(): value for name, value in headers.items()}.get(
        JIRA_TOKEN_HEADER.lower(), "")
    if not sent or not hmac.compare_digest(_ascii_bytes(sent), _ascii_bytes(token)):
        raise SignatureError(f"missing or wrong {JIRA_TOKEN_HEADER}")


def _jira_identifier(lowered: Mapping[str, str]) -> str:
    identifier = lowered.get(JIRA_IDENTIFIER_HEADER.lower(), "").strip()
    if not identifier or not identifier.isascii() or len(identifier) > 200:
        raise SignatureError(f"missing or invalid {JIRA_IDENTIFIER_HEADER}")
    return identifier


def sign_jira(body: bytes, secret: str, identifier: str) -> dict[str, str]:
    """Headers a Jira admin webhook with a secret would send for `body`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return {JIRA_SIGNATURE_HEADER: f"sha256={digest}", JIRA_IDENTIFIER_HEADER: identifier}


# --- shared ------------------------------------------------------------------------------------


def _parse_timestamp(value: str, header: str) -> int:
    """Unix seconds as plain ASCII digits; `int()` alone would also take " 12", "1_2" and "٣"."""
    if not (value.isascii() and value.isdigit() and len(value) <= _MAX_TIMESTAMP_DIGITS):
        raise SignatureError(f"invalid {header}")
    return int(value)


def _parse_iso_timestamp(value: str, header: str) -> float:
    """An ISO 8601 instant with its zone; anything else (a zone-less time, garbage) is refused,
    since a window cannot be judged against a time of unknown zone."""
    if not value.isascii() or len(value) > _MAX_ISO_TIMESTAMP_CHARS:
        raise SignatureError(f"invalid {header}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise SignatureError(f"invalid {header}") from None
    if parsed.tzinfo is None:
        raise SignatureError(f"invalid {header}")
    return parsed.timestamp()


def _ascii_bytes(value: str) -> bytes:
    """Header text as bytes for `compare_digest`, which refuses non-ASCII str."""
    return value.encode("ascii", errors="replace")
