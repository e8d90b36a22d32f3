"""The incident.io endpoint's check reads only what it needs (`check_incident_io_body`); its
verdict must be the full parse's (`check_incident_io(decode_json(body))`) on every body:
the same event type, or the same 400 reason. Hostile bodies included: a number out of
range, a NUL, deep nesting, bytes that are not UTF-8, fields of the wrong type."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.sources.fields import PayloadError, decode_json, skippable
from daemon.sources.incident_io import check_incident_io, check_incident_io_body
from tests.world import incident

EVENTS = ["public_incident.incident_created_v2", "public_incident.incident_updated_v2",
          "public_incident.incident_status_updated_v2", "private_incident.incident_created_v2",
          "public_incident.follow_up_created_v1", "schedule.updated", "x"]


def verdict(check: Any, body: bytes) -> tuple[str, str]:
    try:
        return "accepted", check(body)
    except PayloadError as exc:
        return "refused", exc.reason


def full(body: bytes) -> str:
    return check_incident_io(decode_json(body))


def same_verdict(body: bytes) -> tuple[str, str]:
    ours = verdict(check_incident_io_body, body)
    assert ours == verdict(full, body), body[:300]
    return ours


def envelope(event: str) -> dict[str, Any]:
    created = incident(event=event if event in EVENTS[:2] else EVENTS[0])
    inner = created[created["event_type"]]
    if event.endswith("status_updated_v2"):
        inner = {"incident": inner, "new_status": {"category": "live"}}
    return {"event_type": event, event: inner}


RAW_NUMBERS = [b"1e400", b"-1E+309", b"1.8e308", b"9" * 5000, b"1" + b"0" * 400 + b".5",
               b"1e99", b"12345678901234567890", b"-0.0e-400", b"NaN", b"Infinity"]


@pytest.mark.parametrize("event", EVENTS[:3])
@pytest.mark.parametrize("number", RAW_NUMBERS)
def test_a_number_in_a_field_nobody_reads_gets_the_full_parses_verdict(event: str,
                                                                       number: bytes) -> None:
    body = json.dumps(envelope(event)).encode().replace(b'"event_type"', b'"n": 0, "event_type"')
    body = body.replace(b'"n": 0', b'"n": ' + number)
    kind, _ = same_verdict(body)
    # A double's range and msgspec's integers, as `decode_json` has always refused.
    assert kind == ("accepted" if number in (b"1e99", b"12345678901234567890", b"-0.0e-400")
                    else "refused")


@pytest.mark.parametrize("hostile", [
    b'"\\u0000"', b'"caf\xc3\xa9"', b'"\xff"', b'"\xed\xa0\x80"', b'"\\ud800"',
    b"[" * 65 + b"]" * 65, b"[" * 64 + b"]" * 64, b'"\\u00e9 \\n \\" ok"'])
def test_hostile_text_in_a_field_nobody_reads_gets_the_full_parses_verdict(
        hostile: bytes) -> None:
    body = json.dumps(envelope(EVENTS[0])).encode().replace(
        b'"event_type"', b'"n": ' + hostile + b', "event_type"')
    same_verdict(body)


def test_the_usual_delivery_takes_the_short_way() -> None:
    """The reason for the short way: a published-sample delivery needs no full parse."""
    for event in EVENTS[:3]:
        body = json.dumps(envelope(event)).encode()
        assert skippable(body)
        assert same_verdict(body) == ("accepted", event)


def json_values() -> st.SearchStrategy[Any]:
    leaves = (st.none() | st.booleans() | st.integers() | st.floats()
              | st.text(max_size=12) | st.sampled_from(EVENTS))
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(event=st.sampled_from(EVENTS), where=st.sampled_from(["top", "inner", "identity"]),
       key=st.sampled_from(["id", "created_at", "updated_at", "incident", "event_type", "n"]),
       value=json_values(), ascii_only=st.booleans(), seed=st.integers(0, 2**32 - 1),
       splice=st.sampled_from([b"", b"1e400", b"\\u0000", b"{", b"\xff", b"\"", b"9" * 120]))
def test_any_body_gets_the_full_parses_verdict(event: str, where: str, key: str, value: Any,
                                               ascii_only: bool, seed: int,
                                               splice: bytes) -> None:
    payload = envelope(event)
    inner = payload[event]
    target = {"top": payload, "inner": inner,
              "identity": inner.get("incident", inner)}[where]
    target[key] = value
    body = json.dumps(payload, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    if splice:
        at = random.Random(seed).randrange(len(body))
        body = body[:at] + splice + body[at:]
    same_verdict(body)
