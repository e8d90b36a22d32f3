"""One classification of tracker failures for GitLab, GitHub and Jira: Retry or Permanent.

The three client libraries report failures differently (GitlabHttpError, GithubException,
JIRAError, bare `requests` exceptions); each adapter extracts status, headers and the vendor's
short message and hands them here, so "what is worth retrying" is decided in one place.

Messages are built here from those parts, never from `str(library_exception)`: some library
exceptions print request headers, and some servers echo what they were sent, so every message is
also scrubbed of the configured secrets. Callers raise the result `from None` for the same reason.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime

import requests

from daemon.workers.retry import Permanent, Retry

# GitHub: "if no retry-after and x-ratelimit-remaining is not 0, wait at least one minute".
RATE_LIMIT_FALLBACK_S = 60.0
MAX_DETAIL_CHARS = 200


def scrub(text: str, secrets: Iterable[str]) -> str:
    """The text with every non-empty secret masked (longest first, so parts don't leave tails)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _when_s(value: str, now_s: float) -> float | None:
    """Seconds until an absolute time given as epoch seconds, ISO 8601 or an HTTP date."""
    try:
        return max(0.0, float(value) - now_s)
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        try:
            at = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if at.tzinfo is None:
        return None
    return max(0.0, at.timestamp() - now_s)


def wait_hint_s(headers: Mapping[str, str], now_s: float | None = None) -> float | None:
    """How long the vendor asked us to wait, if it said: Retry-After first, then a reset time.

    Retry-After is seconds or an HTTP date (RFC 9110). GitHub's `x-ratelimit-reset` and GitLab's
    `RateLimit-Reset` are epoch seconds; Jira's `X-RateLimit-Reset` is ISO 8601.
    """
    now = time.time() if now_s is None else now_s
    lower = {key.lower(): value for key, value in headers.items()}
    retry_after = lower.get("retry-after", "").strip()
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            hinted = _when_s(retry_after, now)
            if hinted is not None:
                return hinted
    for name in ("x-ratelimit-reset", "ratelimit-reset"):
        reset = lower.get(name, "").strip()
        if reset:
            return _when_s(reset, now)
    return None


def http_failure(what: str, status: int | None, headers: Mapping[str, str], detail: str,
                 secrets: Iterable[str], *, rate_limited: bool = False,
                 now_s: float | None = None) -> Retry | Permanent:
    """Classify an HTTP answer that was not a success.

    429 and 5xx are temporary. A 403 is temporary only when it is a rate limit (GitHub answers
    secondary limits with 403: the library recognises the message and sets `rate_limited`, or the
    headers say so); every other 4xx is a request or configuration problem retrying cannot fix.
    """
    # mask first, then cut: a cut secret no longer matches its mask and would leak in part
    short = " ".join(scrub(detail, secrets).split())[:MAX_DETAIL_CHARS]
    suffix = f" ({short})" if short else ""
    if status is None or status < 400:
        return Permanent(scrub(f"{what}: unexpected answer{suffix}", secrets))
    message = scrub(f"{what}: HTTP {status}{suffix}", secrets)
    lower = {key.lower(): value for key, value in headers.items()}
    hint = wait_hint_s(lower, now_s)
    if status == 429 or status >= 500:
        return Retry(message, after_s=hint)
    exhausted = lower.get("x-ratelimit-remaining", "").strip() == "0"
    if status == 403 and (rate_limited or exhausted or "retry-after" in lower):
        return Retry(message, after_s=RATE_LIMIT_FALLBACK_S if hint is None else hint)
    return Permanent(message)


def transport_failure(what: str, exc: requests.RequestException, secrets: Iterable[str]
                      ) -> Retry | Permanent:
    """Classify a call that got no HTTP answer at all.

    Timeouts and dropped connections are temporary (the outcome of a create is then unknown:
    the caller looks the marker up before trying again). A failed certificate check is not: it
    needs `tls.ca_file` or the URL fixed, and retrying for an hour would only hide that.
    """
    name = type(exc).__name__
    if isinstance(exc, requests.exceptions.SSLError):
        return Permanent(f"{what}: TLS failed ({name}); check tracker.url and tls.ca_file")
    if isinstance(exc, requests.Timeout):
        return Retry(f"{what}: no answer in time ({name})")
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return Retry(f"{what}: connection failed ({name})")
    return Permanent(scrub(f"{what}: request could not be sent ({name})", secrets))

