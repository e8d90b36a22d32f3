"""One failure vocabulary for every integration: `Retry` or `Permanent`, decided once, here.

Adapters hand over what they saw (an HTTP status with headers and the vendor's own words, or an
exception that got no answer at all) and raise what comes back `from None`, because library
exceptions may print request headers and servers may echo what they were sent. The job runner
owns the timing; `Retry.after_s` is the vendor's wait, honoured as a floor.

| what happened                                   | class     | why                             |
|-------------------------------------------------|-----------|---------------------------------|
| 408 Request Timeout                             | Retry     | RFC 9110 15.5.9: the server     |
|                                                 |           | timed out, repeat the request   |
| 425 Too Early                                   | Retry     | RFC 8470 5.2: retry later       |
| 429 Too Many Requests (+ Retry-After)           | Retry     | RFC 6585 4; every vendor        |
| 403 that is a rate limit (GitHub secondary)     | Retry     | GitHub: wait retry-after, else  |
|                                                 |           | the reset, else at least 60 s   |
| 5xx                                             | Retry     | the vendor's bad moment         |
| 2xx/3xx whose body we cannot read               | Retry     | a proxy in the way; the caller's|
|                                                 |           | idempotency key makes it safe   |
| other 4xx                                       | Permanent | the request or configuration is |
|                                                 |           | wrong; repeating cannot help    |
| timeout, reset, refused, DNS                    | Retry     | no answer: outcome unknown      |
| TLS certificate not trusted                     | Permanent | fix the URL or `tls.ca_file`    |
| Slack `ok:false` transient codes (`SLACK_RETRY`)| Retry     | Slack's own bad moment          |
| any other Slack `ok:false` code                 | Permanent | carries `code` for the caller   |

Sources: RFC 9110 https://www.rfc-editor.org/rfc/rfc9110#name-408-request-timeout and
https://www.rfc-editor.org/rfc/rfc9110#name-retry-after (seconds or an HTTP-date); RFC 6585
https://www.rfc-editor.org/rfc/rfc6585#section-4; RFC 8470
https://www.rfc-editor.org/rfc/rfc8470#section-5.2; PagerDuty "408 (retry)" and "429"
https://developer.pagerduty.com/docs/rest-api-v2/errors/; GitHub secondary rate limits (403 or
429) https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit;
Slack error codes https://docs.slack.dev/reference/methods/chat.postMessage#errors and
https://docs.slack.dev/reference/methods/views.open#errors.
"""

from __future__ import annotations

import base64
import functools
import math
import re
import ssl
from collections.abc import Iterable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 4  # shorter "secrets" would erase ordinary words from every message
MAX_DETAIL_CHARS = 300  # the vendor's reason, enough for an operator, not a whole echo
# A job's stored error: our words around the vendor's reason, or a crashed handler's exception,
# whose text nobody cut before (the jobs table and the dashboard show it).
MAX_ERROR_CHARS = 1000
RATE_LIMIT_FALLBACK_S = 60.0  # GitHub: "wait at least one minute" when it names no time
_EPOCH_FLOOR_S = 1e9  # a reset header larger than this is a point in time, not a delay

_SLACK_CODE = re.compile(r"[a-z0-9_.]{1,64}")
RETRY_STATUSES = frozenset({408, 425, 429})

SLACK_RETRY = frozenset({
    "ratelimited", "rate_limited",  # both spellings appear in Slack's method docs
    "internal_error", "fatal_error", "service_unavailable", "request_timeout",
    "team_added_to_org", "org_login_required",  # "unavailable until the migration completes"
})
"""`ok:false` codes that mean Slack had a bad moment, not that the request is wrong.
`fatal_error` may have half-succeeded: callers retry only idempotent effects (posts look
their earlier copy up first). Everything else, e.g. `not_in_channel`, `channel_not_found`,
`is_archived`, `restricted_action`, `missing_scope`, `invalid_auth`, `msg_too_long`,
`invalid_blocks`, `expired_trigger_id`, is permanent and carries the code."""


class Retry(Exception):
    """Try again later. `after_s` is the vendor's own wait when it named one (a floor);
    `code` the vendor's machine-readable reason when it gave one (Slack's `ratelimited`)."""

    def __init__(self, reason: str, after_s: float | None = None, code: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.after_s = after_s
        self.code = code


class Permanent(Exception):
    """Retrying cannot help (a 400, a 403, bad configuration). `code` is the vendor's
    machine-readable reason, e.g. Slack's `not_in_channel`, so a caller can react to it."""

    def __init__(self, reason: str, code: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def scrub(text: str, secrets: Iterable[str]) -> str:
    """The text with every configured secret masked: raw, URL-encoded (any mix of `%XX`, `+`
    for a space) and base64 (standard and URL-safe alphabets, at any offset, so a secret
    inside an encoded `user:token` Basic credential is found too). Vendors echo what they were
    sent in all of these forms (a GitLab 401 quoted the token base64-encoded)."""
    pattern = secret_pattern(secrets)
    return text if pattern is None else pattern.sub(REDACTED, text)


def secret_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """The one regex `scrub` masks with (None: no secret long enough to mask), for a caller
    that scrubs many strings with the same secrets: the log scrubber builds it once instead
    of sorting the secrets on every value of every line."""
    return _secret_pattern(tuple(sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS})))


def clean(text: str, secrets: Iterable[str], limit: int = MAX_DETAIL_CHARS) -> str:
    """Vendor text fit to store or show: masked first, then cut (a cut secret would no longer
    match its mask and leak in part), on one line."""
    return " ".join(scrub(text, secrets).split())[:limit]


@functools.lru_cache(maxsize=32)
def shortest_form(secrets: tuple[str, ...]) -> int:
    """The length of the shortest text `scrub` could mask for these secrets: a shorter string
    holds none of them (the log scrubber skips those: most values of a log line are short)."""
    lengths = [len(secret) for secret in secrets if len(secret) >= MIN_SECRET_CHARS]
    lengths += [len(core) for secret in secrets if len(secret) >= MIN_SECRET_CHARS
                for core in _base64_cores(secret.encode())]
    return min(lengths, default=2**31)


@functools.lru_cache(maxsize=32)  # one set of secrets per process in practice (the log scrubber)
def _secret_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    forms: list[tuple[int, str]] = []
    for secret in secrets:
        forms.append((len(secret), "".join(_char_forms(char) for char in secret)))
        forms.extend((len(core), re.escape(core)) for core in _base64_cores(secret.encode()))
    if not forms:
        return None
    # Longest first: at one position the longer secret wins and leaves no tail of itself.
    forms.sort(key=lambda form: form[0], reverse=True)
    return re.compile("|".join(dict.fromkeys(form for _length, form in forms)))


def _char_forms(char: str) -> str:
    """A regex for one character as itself or percent-encoded (either hex case)."""
    encoded = "".join(
        "%" + "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in f"{byte:02X}")
        for byte in char.encode())
    alternatives = [re.escape(char), encoded] + (["\\+"] if char == " " else [])
    return "(?:" + "|".join(alternatives) + ")"


def _base64_cores(secret: bytes) -> set[str]:
    """The base64 characters that depend on the secret alone, for each of the three offsets
    it can start at within encoded text: the one or two characters at either end that mix in
    neighbouring bytes are left (they reveal at most a few bits)."""
    cores: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + secret).decode()
        core = encoded[-(-8 * offset // 6):(8 * (offset + len(secret))) // 6]
        if len(core) >= MIN_SECRET_CHARS:
            cores.update((core, core.translate(_URLSAFE)))
    return cores


_URLSAFE = str.maketrans("+/", "-_")


def retry_after_s(headers: Mapping[str, str], now_s: float) -> float | None:
    """How long the vendor asked us to wait, or None if it did not say.

    `Retry-After` is delay seconds or an HTTP-date (RFC 9110 10.2.3), measured against `now_s`
    (the caller's clock, so tests need no real date). Without it, a rate-limit reset header:
    PagerDuty's `ratelimit-reset` is a delay in seconds, GitHub's `x-ratelimit-reset` and
    GitLab's `RateLimit-Reset` are epoch seconds, Jira's `X-RateLimit-Reset` is ISO 8601; a
    number is read as a point in time only when it is that large.
    """
    lower = {key.lower(): value.strip() for key, value in headers.items()}
    named = lower.get("retry-after", "")
    if named:
        seconds = _number(named)
        if seconds is not None:
            return max(0.0, seconds)
        at = _http_date_s(named)
        if at is not None:
            return max(0.0, at - now_s)
    for name in ("ratelimit-reset", "x-ratelimit-reset"):
        reset = lower.get(name, "")
        seconds = _number(reset)
        if seconds is not None:
            return max(0.0, seconds - now_s if seconds >= _EPOCH_FLOOR_S else seconds)
        at = _iso_s(reset)
        if at is not None:
            return max(0.0, at - now_s)
    return None


def http_failure(what: str, status: int | None, *, headers: Mapping[str, str] | None = None,
                 detail: str = "", code: str = "", secrets: Iterable[str] = (),
                 now_s: float, rate_limited: bool = False) -> Retry | Permanent:
    """Classify an answer that was not the success the caller needed (table above).

    `detail` is the vendor's own explanation, masked first and then cut (a cut secret no
    longer matches its mask and would leak in part). `rate_limited` is for a library that
    recognised a rate limit from the body (PyGithub's RateLimitExceededException).
    """
    secrets = tuple(secrets)
    short = clean(detail, secrets)
    said = f" {code}" if code else ""
    message = scrub(f"{what}: HTTP {status}{said}" + (f" ({short})" if short else ""), secrets)
    if status is None:
        return Permanent(scrub(f"{what}: failed without an HTTP answer"
                               + (f" ({short})" if short else ""), secrets), code)
    lower = {key.lower(): value for key, value in (headers or {}).items()}
    wait_s = retry_after_s(lower, now_s)
    if status < 400:
        return Retry(f"{message} without a readable answer", code=code)
    if status in RETRY_STATUSES or status >= 500:
        return Retry(message, after_s=wait_s, code=code)
    exhausted = lower.get("x-ratelimit-remaining", "").strip() == "0"
    if status == 403 and (rate_limited or exhausted or "retry-after" in lower):
        return Retry(message, after_s=RATE_LIMIT_FALLBACK_S if wait_s is None else wait_s,
                     code=code)
    return Permanent(message, code)


def slack_failure(what: str, status: int, code: str, headers: Mapping[str, str], *,
                  now_s: float) -> Retry | Permanent:
    """Slack answers refusals as HTTP 200 with `ok:false` and an error code: the code decides,
    the status only when it is itself a failure (429, 5xx from a proxy or Slack's edge)."""
    if code and not _SLACK_CODE.fullmatch(code):
        code = ""  # a code is a short snake_case word; anything else may echo the request
        if status == 200:
            return Permanent(f"{what}: HTTP 200 with an unrecognised error code")
    if status != 200 or not code:
        return http_failure(what, status, headers=headers, code=code, now_s=now_s)
    message = f"{what}: {code}"
    if code in SLACK_RETRY:
        return Retry(message, after_s=retry_after_s(headers, now_s), code=code)
    return Permanent(message, code)


def transport_failure(what: str, exc: BaseException, *, timed_out: bool) -> Retry | Permanent:
    """Classify a call that got no HTTP answer at all. Only the class name is shown: library
    texts are not ours to promise secret-free.

    Timeouts and dropped connections are temporary (the outcome of a create is then unknown:
    the caller's idempotency key or marker lookup covers a second try). An untrusted
    certificate is not: it needs the URL or `tls.ca_file` fixed, and retrying for an hour
    would only hide that from the operator.
    """
    name = type(exc).__name__
    if _caused_by(exc, ssl.SSLCertVerificationError):
        return Permanent(f"{what}: TLS certificate not trusted ({name}); check the URL and "
                         "tls.ca_file")
    if timed_out:
        return Retry(f"{what}: no answer in time ({name})")
    return Retry(f"{what}: connection failed ({name})")


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether `kind` is anywhere in the chain: clients wrap the ssl error two or three deep."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _number(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) else None


def _http_date_s(value: str) -> float | None:
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return at.timestamp() if at.tzinfo is not None else None


def _iso_s(value: str) -> float | None:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at.timestamp() if at.tzinfo is not None else None
