"""Signature checks against the vendors' published vectors, their edges, and random input."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from daemon.ingress.signatures import (
    TOLERANCE_S,
    SignatureError,
    decode_standard_webhook_secret,
    sign_pagerduty,
    sign_slack,
    sign_standard_webhook,
    verify_pagerduty,
    verify_slack,
    verify_standard_webhook,
)

PAYLOADS = Path(__file__).parents[1] / "payloads"

# --- PagerDuty --------------------------------------------------------------------------------

# PagerDuty's own vector: github.com/PagerDuty/go-pagerduty webhookv3/webhookv3_test.go
# @ 3df5eb4e62dcdf897d37106578d7be6ad54449dc (`secret`, `defaultBody`, the "valid" and
# "mismatch" signatures). The body is byte-exact; note `conference_number` is a number.
PD_SECRET = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK"
PD_BODY = (
    b'{"event":{"id":"01BWDWL3NYY7LUFPZCC28QUCMK","event_type":"incident.priority_updated",'
    b'"resource_type":"incident","occurred_at":"2021-04-26T17:36:27.458Z","agent":{"html_url":'
    b'"https://acme.pagerduty.com/users/PLH1HKV","id":"PLH1HKV","self":'
    b'"https://api.pagerduty.com/users/PLH1HKV","summary":"Tenex Engineer","type":'
    b'"user_reference"},"client":null,"data":{"id":"PGR0VU2","type":"incident","self":'
    b'"https://api.pagerduty.com/incidents/PGR0VU2","html_url":'
    b'"https://acme.pagerduty.com/incidents/PGR0VU2","number":2,"status":"triggered","title":'
    b'"A little bump in the road","service":{"html_url":'
    b'"https://acme.pagerduty.com/services/PF9KMXH","id":"PF9KMXH","self":'
    b'"https://api.pagerduty.com/services/PF9KMXH","summary":"API Service","type":'
    b'"service_reference"},"assignees":[{"html_url":"https://acme.pagerduty.com/users/PTUXL6G",'
    b'"id":"PTUXL6G","self":"https://api.pagerduty.com/users/PTUXL6G","summary":"User 123",'
    b'"type":"user_reference"}],"escalation_policy":{"html_url":'
    b'"https://acme.pagerduty.com/escalation_policies/PUS0KTE","id":"PUS0KTE","self":'
    b'"https://api.pagerduty.com/escalation_policies/PUS0KTE","summary":"Default","type":'
    b'"escalation_policy_reference"},"teams":[{"html_url":'
    b'"https://acme.pagerduty.com/teams/PFCVPS0","id":"PFCVPS0","self":'
    b'"https://api.pagerduty.com/teams/PFCVPS0","summary":"Engineering","type":'
    b'"team_reference"}],"priority":{"html_url":'
    b'"https://acme.pagerduty.com/account/incident_priorities","id":"PSO75BM","self":'
    b'"https://api.pagerduty.com/priorities/PSO75BM","summary":"P1","type":'
    b'"priority_reference"},"urgency":"high","conference_bridge":{"conference_number":1000,'
    b'"conference_url":"https://example.com"},"resolve_reason":null}}}'
)
PD_VALID = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd"
PD_MISMATCH = "v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5"
OLD_SECRET = "retired-subscription-secret"


def test_pagerduty_published_vector() -> None:
    assert sign_pagerduty(PD_BODY, PD_SECRET) == PD_VALID
    verify_pagerduty(PD_BODY, PD_VALID, [PD_SECRET])


def test_pagerduty_published_mismatch() -> None:
    with pytest.raises(SignatureError, match="no matching v1 signature"):
        verify_pagerduty(PD_BODY, PD_MISMATCH, [PD_SECRET])


@pytest.mark.parametrize(
    "header",
    [
        f"{PD_MISMATCH},{PD_VALID}",  # rotation: new secret's signature second
        f"{PD_VALID}, {PD_MISMATCH}",  # ", " separator
        f"  {PD_MISMATCH} ,  {PD_VALID}  ",
        f"v2=deadbeef,{PD_VALID},v0=cafe",  # other versions are skipped
        PD_VALID.upper().replace("V1=", "v1="),  # hex case does not matter
    ],
)
def test_pagerduty_accepts_any_matching_v1_entry(header: str) -> None:
    verify_pagerduty(PD_BODY, header, [PD_SECRET])


def test_pagerduty_accepts_any_configured_secret() -> None:
    # During rotation the daemon holds old and new secrets; PagerDuty may sign with either.
    verify_pagerduty(PD_BODY, PD_VALID, [OLD_SECRET, PD_SECRET])
    verify_pagerduty(PD_BODY, sign_pagerduty(PD_BODY, OLD_SECRET), [OLD_SECRET, PD_SECRET])
    both = f"{sign_pagerduty(PD_BODY, OLD_SECRET)},{PD_VALID}"
    verify_pagerduty(PD_BODY, both, [PD_SECRET])


@pytest.mark.parametrize(
    ("body", "header", "secrets", "reason"),
    [
        (PD_BODY, None, [PD_SECRET], "missing X-PagerDuty-Signature"),
        (PD_BODY, "  ", [PD_SECRET], "missing X-PagerDuty-Signature"),
        (PD_BODY, "v0=" + PD_VALID[3:], [PD_SECRET], "no v1 signature"),
        (PD_BODY, PD_VALID[3:], [PD_SECRET], "no v1 signature"),  # bare hex, no version
        (PD_BODY, PD_VALID, [OLD_SECRET], "no matching v1 signature"),  # wrong secret
        (PD_BODY + b" ", PD_VALID, [PD_SECRET], "no matching v1 signature"),  # body changed
        (PD_BODY, PD_VALID + "00", [PD_SECRET], "no matching v1 signature"),
        (PD_BODY, "v1=ä" + PD_VALID[4:], [PD_SECRET], "no matching v1 signature"),
        (PD_BODY, PD_VALID, [], "no PagerDuty webhook secret configured"),
        (PD_BODY, sign_pagerduty(PD_BODY, ""), [""], "no PagerDuty webhook secret configured"),
    ],
)
def test_pagerduty_rejects(
    body: bytes, header: str | None, secrets: list[str], reason: str
) -> None:
    with pytest.raises(SignatureError, match=reason) as caught:
        verify_pagerduty(body, header, secrets)
    assert PD_SECRET not in str(caught.value)
    assert PD_VALID[3:] not in str(caught.value)


def test_pagerduty_refuses_a_single_string_as_secrets() -> None:
    # A str is a Sequence[str]: each character would silently become a "secret".
    with pytest.raises(TypeError):
        verify_pagerduty(PD_BODY, PD_VALID, PD_SECRET)


@pytest.mark.parametrize(
    "name",
    ["devdocs_incident_priority_updated.json", "zulip_triggered_v3.json", "zulip_resolved_v3.json"],
)
def test_pagerduty_signs_sample_files_byte_exact(name: str) -> None:
    body = (PAYLOADS / "pagerduty" / name).read_bytes()
    header = sign_pagerduty(body, PD_SECRET)
    verify_pagerduty(body, header, [PD_SECRET])
    with pytest.raises(SignatureError):
        verify_pagerduty(body.rstrip(b"\n"), header, [PD_SECRET])


# --- Standard Webhooks / Svix (incident.io) ----------------------------------------------------

# Svix / Standard Webhooks vector: standard-webhooks/standard-webhooks
# libraries/python/tests/test_webhooks.py (`test_sign_function`) and docs.svix.com.
SVIX_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SVIX_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SVIX_TS = 1614265330
SVIX_BODY = b'{"test": 2432232314}'
SVIX_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
# The same library's "invalid signature" case: last base64 character changed.
SVIX_BAD_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
OTHER_SECRET = "whsec_" + base64.b64encode(b"another endpoint's 32-byte secret").decode()


def svix_headers(signature: str = SVIX_SIGNATURE, prefix: str = "webhook-") -> dict[str, str]:
    return {
        f"{prefix}id": SVIX_ID,
        f"{prefix}timestamp": str(SVIX_TS),
        f"{prefix}signature": signature,
    }


def test_standard_webhook_published_vector() -> None:
    headers = sign_standard_webhook(SVIX_BODY, SVIX_ID, SVIX_TS, SVIX_SECRET)
    assert headers == svix_headers()
    assert verify_standard_webhook(SVIX_BODY, svix_headers(), SVIX_SECRET, SVIX_TS) == SVIX_ID


def test_standard_webhook_secret_prefix_is_optional() -> None:
    bare = SVIX_SECRET.removeprefix("whsec_")
    assert verify_standard_webhook(SVIX_BODY, svix_headers(), bare, SVIX_TS) == SVIX_ID


@pytest.mark.parametrize("prefix", ["svix-", "Webhook-", "SVIX-"])
def test_standard_webhook_accepts_svix_prefix_and_any_case(prefix: str) -> None:
    headers = svix_headers(prefix=prefix)
    assert verify_standard_webhook(SVIX_BODY, headers, SVIX_SECRET, SVIX_TS) == SVIX_ID


@pytest.mark.parametrize(
    "signature",
    [
        f"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {SVIX_SIGNATURE}",  # rotated keys
        f"v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {SVIX_SIGNATURE}",
        f"v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= {SVIX_SIGNATURE}",  # asymmetric
        f"v1,not-base64!! {SVIX_SIGNATURE} v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
    ],
)
def test_standard_webhook_accepts_any_matching_v1_entry(signature: str) -> None:
    headers = svix_headers(signature)
    assert verify_standard_webhook(SVIX_BODY, headers, SVIX_SECRET, SVIX_TS) == SVIX_ID


@pytest.mark.parametrize("skew", [-TOLERANCE_S, 0, TOLERANCE_S])
def test_standard_webhook_tolerance_is_inclusive(skew: int) -> None:
    now = SVIX_TS + skew
    assert verify_standard_webhook(SVIX_BODY, svix_headers(), SVIX_SECRET, now) == SVIX_ID


@pytest.mark.parametrize(
    ("now", "reason"),
    [
        (SVIX_TS + TOLERANCE_S + 1, "too old"),
        (SVIX_TS + TOLERANCE_S + 0.5, "too old"),
        (SVIX_TS - TOLERANCE_S - 1, "in the future"),
        (SVIX_TS + 86400, "too old"),
    ],
)
def test_standard_webhook_rejects_stale_and_future(now: float, reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify_standard_webhook(SVIX_BODY, svix_headers(), SVIX_SECRET, now)


def _without(name: str) -> dict[str, str]:
    headers = svix_headers()
    del headers[name]
    return headers


@pytest.mark.parametrize(
    ("body", "headers", "secret", "reason"),
    [
        (SVIX_BODY, svix_headers(SVIX_BAD_SIGNATURE), SVIX_SECRET, "no matching v1 signature"),
        (SVIX_BODY, svix_headers(), OTHER_SECRET, "no matching v1 signature"),
        (SVIX_BODY + b" ", svix_headers(), SVIX_SECRET, "no matching v1 signature"),
        (SVIX_BODY, svix_headers("v1a,abc v2,def"), SVIX_SECRET, "no v1 signature"),
        (SVIX_BODY, svix_headers(SVIX_SIGNATURE[3:]), SVIX_SECRET, "no v1 signature"),
        (SVIX_BODY, _without("webhook-id"), SVIX_SECRET, "missing webhook-id"),
        (SVIX_BODY, _without("webhook-timestamp"), SVIX_SECRET, "missing webhook-timestamp"),
        (SVIX_BODY, _without("webhook-signature"), SVIX_SECRET, "missing webhook-signature"),
        (SVIX_BODY, {}, SVIX_SECRET, "missing webhook-id"),
        (
            SVIX_BODY,
            {**_without("webhook-signature"), "svix-signature": SVIX_SIGNATURE},
            SVIX_SECRET,
            "incomplete",
        ),
    ],
)
def test_standard_webhook_rejects(
    body: bytes, headers: dict[str, str], secret: str, reason: str
) -> None:
    with pytest.raises(SignatureError, match=reason) as caught:
        verify_standard_webhook(body, headers, secret, SVIX_TS)
    assert SVIX_SECRET.removeprefix("whsec_") not in str(caught.value)


@pytest.mark.parametrize("timestamp", ["hello", "", " 1614265330", "1614265330.5", "-1", "1" * 40])
def test_standard_webhook_rejects_malformed_timestamp(timestamp: str) -> None:
    headers = {**svix_headers(), "webhook-timestamp": timestamp}
    with pytest.raises(SignatureError, match="webhook-timestamp"):
        verify_standard_webhook(SVIX_BODY, headers, SVIX_SECRET, SVIX_TS)


def test_standard_webhook_timestamp_is_part_of_the_signature() -> None:
    # A replay with a fresh timestamp must not verify with the old signature.
    headers = {**svix_headers(), "webhook-timestamp": str(SVIX_TS + 1)}
    with pytest.raises(SignatureError, match="no matching v1 signature"):
        verify_standard_webhook(SVIX_BODY, headers, SVIX_SECRET, SVIX_TS)


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_", "", "whsec_abc"])
def test_standard_webhook_bad_secret_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(ValueError, match="Standard Webhooks secret") as caught:
        decode_standard_webhook_secret(secret)
    assert not isinstance(caught.value, SignatureError)
    with pytest.raises(ValueError, match="Standard Webhooks secret"):
        verify_standard_webhook(SVIX_BODY, svix_headers(), secret, SVIX_TS)


@pytest.mark.parametrize(
    "name",
    [
        "openapi_example_public_incident_created_v2.json",
        "openapi_example_private_incident_created_v2.json",
    ],
)
def test_standard_webhook_signs_sample_files_byte_exact(name: str) -> None:
    body = (PAYLOADS / "incident_io" / name).read_bytes()
    headers = sign_standard_webhook(body, "msg_2mZK3x", 1_760_000_000, SVIX_SECRET)
    assert verify_standard_webhook(body, headers, SVIX_SECRET, 1_760_000_000) == "msg_2mZK3x"
    with pytest.raises(SignatureError):
        verify_standard_webhook(body.replace(b"\n", b"\r\n"), headers, SVIX_SECRET, 1_760_000_000)


# --- Slack ------------------------------------------------------------------------------------

# Slack's documented example (docs.slack.dev "Verifying requests from Slack"), as used in
# slackapi/python-slack-sdk tests/slack_sdk/signature/test_signature_verifier.py.
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TS = 1531420618
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    b"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
SLACK_HEADERS = {"X-Slack-Request-Timestamp": str(SLACK_TS), "X-Slack-Signature": SLACK_SIGNATURE}


def test_slack_published_vector() -> None:
    assert sign_slack(SLACK_BODY, SLACK_SECRET, SLACK_TS) == SLACK_HEADERS
    verify_slack(SLACK_BODY, SLACK_HEADERS, SLACK_SECRET, SLACK_TS)


def test_slack_headers_are_case_insensitive() -> None:
    lowered = {name.lower(): value for name, value in SLACK_HEADERS.items()}
    verify_slack(SLACK_BODY, lowered, SLACK_SECRET, SLACK_TS + 10)


@pytest.mark.parametrize("skew", [-TOLERANCE_S, TOLERANCE_S])
def test_slack_tolerance_is_inclusive(skew: int) -> None:
    verify_slack(SLACK_BODY, SLACK_HEADERS, SLACK_SECRET, SLACK_TS + skew)


def _slack_with(**changes: str) -> dict[str, str]:
    headers = dict(SLACK_HEADERS)
    for name, value in changes.items():
        header = {"ts": "X-Slack-Request-Timestamp", "sig": "X-Slack-Signature"}[name]
        if value == "<drop>":
            del headers[header]
        else:
            headers[header] = value
    return headers


@pytest.mark.parametrize(
    ("body", "headers", "secret", "now", "reason"),
    [
        (SLACK_BODY, SLACK_HEADERS, SLACK_SECRET, SLACK_TS + TOLERANCE_S + 1, "5-minute window"),
        (SLACK_BODY, SLACK_HEADERS, SLACK_SECRET, SLACK_TS - TOLERANCE_S - 1, "5-minute window"),
        (SLACK_BODY, SLACK_HEADERS, "another-signing-secret", SLACK_TS, "does not match"),
        (SLACK_BODY + b"------", SLACK_HEADERS, SLACK_SECRET, SLACK_TS, "does not match"),
        (SLACK_BODY, _slack_with(sig="v0=" + "0" * 64), SLACK_SECRET, SLACK_TS, "does not match"),
        (SLACK_BODY, _slack_with(sig="<drop>"), SLACK_SECRET, SLACK_TS, "missing X-Slack-Sig"),
        (SLACK_BODY, _slack_with(ts="<drop>"), SLACK_SECRET, SLACK_TS, "missing X-Slack-Req"),
        (SLACK_BODY, _slack_with(ts="soon"), SLACK_SECRET, SLACK_TS, "invalid X-Slack-Req"),
        (SLACK_BODY, _slack_with(sig="v0=ä"), SLACK_SECRET, SLACK_TS, "not ASCII"),
        (b"\xff\xfe", SLACK_HEADERS, SLACK_SECRET, SLACK_TS, "not UTF-8"),
    ],
)
def test_slack_rejects(
    body: bytes, headers: dict[str, str], secret: str, now: float, reason: str
) -> None:
    with pytest.raises(SignatureError, match=reason) as caught:
        verify_slack(body, headers, secret, now)
    assert SLACK_SECRET not in str(caught.value)


def test_slack_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="signing_secret") as caught:
        verify_slack(SLACK_BODY, SLACK_HEADERS, " ", SLACK_TS)
    assert not isinstance(caught.value, SignatureError)


def test_slack_signs_sample_slash_command() -> None:
    body = (PAYLOADS / "slack" / "bolt_python_slash_command.form").read_bytes()
    headers = sign_slack(body, "our-test-signing-secret", 1_760_000_000)
    verify_slack(body, headers, "our-test-signing-secret", 1_760_000_000)
    with pytest.raises(SignatureError, match="does not match"):
        verify_slack(
            body.replace(b"text=Hi", b"text=Ho"), headers, "our-test-signing-secret", 1_760_000_000
        )


# --- properties -------------------------------------------------------------------------------

header_text = st.text(max_size=200)
secrets_text = st.text(min_size=1, max_size=64)


@given(
    body=st.binary(max_size=512),
    header=st.none() | header_text,
    secrets=st.lists(secrets_text, max_size=3),
)
def test_pagerduty_random_input_never_verifies(
    body: bytes, header: str | None, secrets: list[str]
) -> None:
    with pytest.raises(SignatureError):
        verify_pagerduty(body, header, secrets)


@given(body=st.binary(max_size=512), secret=secrets_text, other=secrets_text)
def test_pagerduty_verifies_only_with_the_signing_secret(
    body: bytes, secret: str, other: str
) -> None:
    header = sign_pagerduty(body, secret)
    verify_pagerduty(body, header, [secret])
    if other != secret:
        with pytest.raises(SignatureError):
            verify_pagerduty(body, header, [other])


standard_header_names = st.sampled_from(
    [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "svix-id",
        "svix-timestamp",
        "svix-signature",
        "x-other",
    ]
)


@given(
    body=st.binary(max_size=512),
    headers=st.dictionaries(standard_header_names, header_text),
    timestamp=st.integers(min_value=SVIX_TS - 400, max_value=SVIX_TS + 400),
    signatures=st.lists(st.binary(min_size=32, max_size=32), max_size=3),
)
def test_standard_webhook_random_input_never_verifies(
    body: bytes, headers: dict[str, str], timestamp: int, signatures: list[bytes]
) -> None:
    # Well-formed headers with random v1 signatures, then arbitrary header junk on top.
    forged = {
        "webhook-id": SVIX_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join("v1," + base64.b64encode(s).decode() for s in signatures),
    }
    for candidate in (forged, headers, {**forged, **headers}):
        with pytest.raises(SignatureError):
            verify_standard_webhook(body, candidate, SVIX_SECRET, SVIX_TS)


@given(
    body=st.binary(max_size=512),
    msg_id=st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s.isprintable()),
    key=st.binary(min_size=24, max_size=64),
    other=st.binary(min_size=24, max_size=64),
)
def test_standard_webhook_verifies_only_with_the_signing_secret(
    body: bytes, msg_id: str, key: bytes, other: bytes
) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    headers = sign_standard_webhook(body, msg_id, SVIX_TS, secret)
    assert verify_standard_webhook(body, headers, secret, SVIX_TS) == msg_id
    if other != key:
        with pytest.raises(SignatureError):
            verify_standard_webhook(
                body, headers, "whsec_" + base64.b64encode(other).decode(), SVIX_TS
            )


@given(
    body=st.binary(max_size=512),
    headers=st.dictionaries(
        st.sampled_from(
            ["X-Slack-Signature", "X-Slack-Request-Timestamp", "x-slack-signature", "Other"]
        ),
        header_text | st.integers(SLACK_TS - 400, SLACK_TS + 400).map(str),
    ),
)
def test_slack_random_input_never_verifies(body: bytes, headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        verify_slack(body, headers, SLACK_SECRET, SLACK_TS)


@pytest.mark.parametrize("wrapped", [
    CIMultiDict, lambda items: CIMultiDictProxy(CIMultiDict(items))])
def test_a_standard_webhook_header_sent_twice_counts_as_its_last_value(wrapped: Any) -> None:
    """As a request's own headers (a `CIMultiDictProxy`) or any other mapping, a repeated
    header reads as its last value, as when every header was copied into a dict."""
    good = svix_headers()
    first_bad = wrapped([*((k, v) for k, v in good.items() if k != "webhook-signature"),
                         ("webhook-signature", SVIX_BAD_SIGNATURE),
                         ("Webhook-Signature", SVIX_SIGNATURE)])
    assert verify_standard_webhook(SVIX_BODY, first_bad, SVIX_SECRET, SVIX_TS) == SVIX_ID
    last_bad = wrapped([*good.items(), ("WEBHOOK-SIGNATURE", SVIX_BAD_SIGNATURE)])
    with pytest.raises(SignatureError, match="no matching v1 signature"):
        verify_standard_webhook(SVIX_BODY, last_bad, SVIX_SECRET, SVIX_TS)
    emptied = wrapped([*good.items(), ("webhook-id", "")])
    with pytest.raises(SignatureError, match="missing webhook-id"):
        verify_standard_webhook(SVIX_BODY, emptied, SVIX_SECRET, SVIX_TS)
