"""The one failure vocabulary, as tables: what is retried, how long the vendor asked us to wait,
and what an error text may never contain. Every adapter goes through these functions; the
conformance kit (tests/integrations/test_conformance.py) checks that they really do."""

from __future__ import annotations

from email.utils import format_datetime

import pytest

from daemon.clock import to_datetime
from daemon.integrations.failures import (
    REDACTED,
    Permanent,
    Retry,
    http_failure,
    retry_after_s,
    scrub,
    slack_failure,
)
from tests.support import START


@pytest.mark.parametrize(("status", "kind"), [
    *[(s, Retry) for s in (408, 425, 429, 500, 502, 503, 504)],
    *[(s, Permanent) for s in (400, 401, 402, 403, 404, 405, 409, 410, 413, 422)],
    (200, Retry),  # a success we could not read: a proxy in the way
    (None, Permanent),  # a library refusal without any answer
])
def test_status_classes(status: int | None, kind: type[Exception]) -> None:
    assert type(http_failure("x", status, now_s=START)) is kind


@pytest.mark.parametrize(("headers", "wait_s"), [
    ({"Retry-After": "7"}, 7.0),
    ({"retry-after": " 0 "}, 0.0),
    ({"Retry-After": format_datetime(to_datetime(START + 30), usegmt=True)}, 30.0),
    ({"Retry-After": format_datetime(to_datetime(START - 30), usegmt=True)}, 0.0),
    ({"Retry-After": "soon"}, None),
    ({"Retry-After": "-5"}, 0.0),
    ({"ratelimit-reset": "12"}, 12.0),  # PagerDuty: a delay
    ({"X-RateLimit-Reset": f"{START + 60:.0f}"}, 60.0),  # GitHub: an epoch
    ({"X-RateLimit-Reset": to_datetime(START + 40).isoformat()}, 40.0),  # Jira: ISO 8601
    ({"Retry-After": "5", "X-RateLimit-Reset": f"{START + 60:.0f}"}, 5.0),  # Retry-After wins
    ({}, None),
])
def test_retry_after_in_seconds_or_as_a_date_against_the_injected_clock(
        headers: dict[str, str], wait_s: float | None) -> None:
    assert retry_after_s(headers, START) == wait_s


def test_a_429_carries_the_wait_and_a_403_is_retried_only_when_it_is_a_rate_limit() -> None:
    limited = http_failure("x", 429, headers={"Retry-After": "7"}, now_s=START)
    assert isinstance(limited, Retry) and limited.after_s == 7
    assert isinstance(http_failure("x", 403, detail="Resource not accessible", now_s=START),
                      Permanent)
    exhausted = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": f"{START + 60:.0f}"}
    secondary = http_failure("x", 403, headers=exhausted, now_s=START)
    assert isinstance(secondary, Retry) and secondary.after_s == 60
    recognised = http_failure("x", 403, now_s=START, rate_limited=True)
    assert isinstance(recognised, Retry) and recognised.after_s == 60  # GitHub: >= 1 minute


@pytest.mark.parametrize(("code", "kind"), [
    *[(c, Retry) for c in ("ratelimited", "rate_limited", "internal_error", "fatal_error",
                           "service_unavailable", "request_timeout")],
    *[(c, Permanent) for c in ("not_in_channel", "channel_not_found", "is_archived",
                               "restricted_action", "missing_scope", "invalid_auth",
                               "msg_too_long", "invalid_blocks", "expired_trigger_id")],
])
def test_slack_codes_are_split_and_carried(code: str, kind: type[Exception]) -> None:
    failure = slack_failure("slack chat.postMessage", 200, code, {}, now_s=START)
    assert type(failure) is kind
    assert failure.code == code and code in str(failure)


def test_a_slack_code_that_is_not_a_code_is_not_repeated() -> None:
    failure = slack_failure("slack chat.postMessage", 200, "Bearer xoxb-123-secret", {},
                            now_s=START)
    assert isinstance(failure, Permanent) and failure.code == ""
    assert "xoxb" not in str(failure)


def test_secrets_are_masked_longest_first_before_the_detail_is_cut() -> None:
    token, part = "glpat-abcdef-SECRET-0123456789", "SECRET-0123456789"
    assert scrub(f"{token} and {part}", [part, token]) == f"{REDACTED} and {REDACTED}"
    assert scrub("abc", ["abc"]) == "abc"  # too short to be a secret: masking it hides words
    echo = "x" * 290 + token  # the cut at 300 characters would leave the token's head
    failure = http_failure("x", 400, detail=echo, secrets=[token], now_s=START)
    assert "glpat" not in str(failure) and REDACTED[:5] in str(failure)
