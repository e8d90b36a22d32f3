"""Validly signed bodies that no vendor would send but an attacker holding a captured secret,
or a broken proxy, might: each is a 400 that stores nothing, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest

from daemon.ingress.signatures import sign_slack
from tests.harness import SLACK_SECRET, Harness, running

DEEP = b'{"event": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
HUGE_INT = (b'{"event": {"id": "01X", "event_type": "incident.triggered", "n": '
            + b"9" * 5000 + b"}}")
BAD_UTF8 = b'{"event": {"id": "01X\xff\xfe", "event_type": "incident.triggered"}}'
# UTF-8 has no encoded surrogates; Python's json module accepts them from bytes.
ENCODED_SURROGATE = b'{"event": {"id": "01X", "event_type": "incident.\xed\xa0\x80"}}'
# Valid JSON syntax, but no Unicode text: SQLite cannot even store it.
ESCAPED_SURROGATE = b'{"event": {"id": "01X", "event_type": "incident.\\ud800"}}'
# Valid JSON and Unicode, but PostgreSQL's text holds no NUL: the step that stores the
# name would fail on every retry.
ESCAPED_NUL = b'{"event": {"id": "01X", "event_type": "incident.\\u0000triggered"}}'
NOT_A_NUMBER = b'{"event": {"id": "01X", "event_type": "incident.triggered", "n": NaN}}'
# A UTF-16 body is what Python's json module guesses for leading NULs; HTTP JSON is UTF-8.
UTF16 = '{"event": {"id": "01X", "event_type": "x"}}'.encode("utf-16-le")

BODIES = {
    "nested-100000": DEEP, "integer-5000-digits": HUGE_INT, "invalid-utf8": BAD_UTF8,
    "encoded-surrogate": ENCODED_SURROGATE, "escaped-lone-surrogate": ESCAPED_SURROGATE,
    "escaped-nul": ESCAPED_NUL, "nan": NOT_A_NUMBER, "utf-16": UTF16,
}


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running(tmp_path) as h:
        yield h


async def _nothing_stored(harness: Harness) -> None:
    assert await harness.store.count_deliveries() == 0
    assert await harness.work() == []


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
async def test_a_pathological_signed_pagerduty_body_is_400(harness: Harness, body: bytes
                                                           ) -> None:
    response = await harness.pagerduty(body)
    assert response.status == 400, await response.text()
    await _nothing_stored(harness)


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
async def test_a_pathological_signed_incident_io_body_is_400(harness: Harness, body: bytes
                                                             ) -> None:
    response = await harness.incident_io(body.replace(b'"event"', b'"event_type": "x", "y"'))
    assert response.status == 400, await response.text()
    await _nothing_stored(harness)


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
async def test_a_pathological_signed_slack_interaction_is_never_a_5xx(harness: Harness, body: bytes
                                                              ) -> None:
    raw = b"payload=" + quote(body, safe="").encode()
    headers = sign_slack(raw, SLACK_SECRET, int(harness.clock.now()))
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    response = await harness.client.post("/slack/interactions", data=raw, headers=headers)
    # Slack's form decoding replaces bad bytes, so most of these read as someone else's payload
    # (200, "not ours"); what matters is that none is a 5xx or stored.
    assert response.status in (200, 400), await response.text()
    await _nothing_stored(harness)
