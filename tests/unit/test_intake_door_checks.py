"""The incident.io endpoint checks a body without building its escalation (the intake job
builds it, once): it must refuse exactly the bodies the job could not read, for the same
reason, and accept every other one."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.sources.fields import PayloadError
from daemon.sources.incident_io import check_incident_io, parse_incident_io

PAYLOADS = Path(__file__).parents[1] / "payloads" / "incident_io"
BODIES = [json.loads(path.read_bytes()) for path in sorted(PAYLOADS.glob("*.json"))]
ODD_VALUES = st.sampled_from([None, 0, 1.5, True, "", "x", "2026-13-45", "2026-11-21T02:00:01Z",
                              [], {}, {"id": "01X"}, ["01X"]])


def outcome(check: Any, payload: object) -> tuple[str, str]:
    try:
        check(payload)
    except PayloadError as exc:
        return "refused", exc.reason
    return "accepted", ""


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value (dict keys and list indexes), the root excluded."""
    found: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, child in items:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


def test_the_samples_pass_both_alike() -> None:
    assert BODIES
    for body in BODIES:
        assert outcome(check_incident_io, body) == outcome(parse_incident_io, body)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), sample=st.sampled_from(range(len(BODIES))))
def test_a_damaged_body_is_refused_at_the_door_exactly_when_the_job_would(
        data: st.DataObject, sample: int) -> None:
    body = copy.deepcopy(BODIES[sample])
    for _ in range(data.draw(st.integers(1, 3))):
        places = paths(body)
        if not places:
            break
        *parents, last = data.draw(st.sampled_from(places))
        holder = body
        for key in parents:
            holder = holder[key]
        if isinstance(holder, dict) and data.draw(st.booleans()):
            del holder[last]
        else:
            holder[last] = copy.deepcopy(data.draw(ODD_VALUES))
    assert outcome(check_incident_io, body) == outcome(parse_incident_io, body)


@given(ODD_VALUES)
def test_a_body_that_is_no_envelope_is_refused_alike(value: object) -> None:
    assert outcome(check_incident_io, value) == outcome(parse_incident_io, value)
