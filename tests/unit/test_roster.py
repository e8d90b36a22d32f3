"""The EE roster file: who is on rotation when, and errors that name the line and the key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.roster import RosterError, RosterSource, parse_roster

GOOD = """\
timezone: Europe/Berlin
handoff_time: "09:00"
rotations:
  - from: 2026-11-16
    to: 2026-11-29
    engineers:
      - slack_user_id: U0EE00001
        name: Ada Lovelace
  - from: 2026-12-07
    to: 2026-12-20
    engineers:
      - slack_user_id: U0EE00002
        name: Grace Hopper
"""


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_a_rotation_runs_from_its_first_day_to_the_day_after_its_last_at_handoff_time() -> None:
    roster = parse_roster(GOOD, "roster.yaml")
    first, second = roster.rotations
    assert first.id == "2026-11-16..2026-11-29"
    assert roster.at(at("2026-11-16T08:59:59+01:00")) is None
    assert roster.at(at("2026-11-16T09:00:00+01:00")) == first
    assert roster.at(at("2026-11-30T08:59:59+01:00")) == first
    assert roster.at(at("2026-11-30T09:00:00+01:00")) is None  # a gap: nobody on rotation
    assert roster.at(at("2026-12-07T09:00:00+01:00")) == second
    assert roster.before(second) == first and roster.before(first) is None
    assert first.name_of("U0EE00001") == "Ada Lovelace"


@pytest.mark.parametrize(("text", "expected"), [
    (GOOD.replace("slack_user_id: U0EE00002", "slack_user_id: grace"),
     "roster.yaml:12: rotations[1].engineers[0].slack_user_id: String should match pattern"),
    (GOOD.replace("    to: 2026-11-29", "    to: 2026-11-01"),
     "roster.yaml:4: rotations[0]: `to` is before `from`"),
    (GOOD.replace("    to: 2026-11-29", "    to: 2026-12-08"),
     "roster.yaml:9: rotations[1]: overlaps rotation 2026-11-16..2026-12-08"),
    (GOOD.replace("        name: Ada Lovelace", "        nmae: Ada Lovelace"),
     "roster.yaml:8: rotations[0].engineers[0].nmae: unknown key 'nmae'"),
    (GOOD.replace("timezone: Europe/Berlin", "timezone: Mars/Olympus"),
     "roster.yaml:1: timezone: 'Mars/Olympus' is not a known IANA time zone"),
    (GOOD.replace("- from: 2026-12-07", "- from: next monday"),
     "roster.yaml:9: rotations[1].from: Input should be a valid date"),
    ("rotations: [\n", "roster.yaml line 2:"),
    (GOOD.replace('handoff_time: "09:00"', "handoff_time: 9:00"),
     'roster.yaml:2: handoff_time: write the time in quotes, e.g. "09:00"'),
    (GOOD.replace("    to: 2026-11-29", "    to: 2026-11-31"),
     "roster.yaml:5: rotations[0].to: '2026-11-31' is not a date (day is out of range for month)"),
    (GOOD.replace("- from: 2026-12-07", "- from: 2026-13-07"),
     "roster.yaml:9: rotations[1].from: '2026-13-07' is not a date"),
    (GOOD.replace("    to: 2026-12-20", "    to: 9999-12-31"),
     "roster.yaml:9: rotations[1]: dates must lie between 1970-01-01 and 9998-12-31"),
    ("rotations: &r [*r]\n", "roster.yaml: an alias (*name) inside the value its anchor"),
    ("", "roster.yaml:1: the file is empty: write `rotations: []` for no rotation"),
    ("timezone: UTC\n", "roster.yaml:1: rotations: Field required"),
])
def test_a_bad_roster_names_the_line_and_the_key(text: str, expected: str) -> None:
    with pytest.raises(RosterError) as caught:
        parse_roster(text, "roster.yaml")
    assert expected in str(caught.value)


def test_a_broken_edit_keeps_the_last_good_roster(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(GOOD, encoding="utf-8")
    source = RosterSource(path)
    before = source.current()
    path.write_text(GOOD.replace("U0EE00001", "nobody") + "\n", encoding="utf-8")
    assert source.current() == before
    assert "not reloaded" in source.problem and "roster.yaml:7" in source.problem
    path.write_text(GOOD.replace("Ada Lovelace", "Ada King") + "\n", encoding="utf-8")
    assert source.current().rotations[0].name_of("U0EE00001") == "Ada King"
    assert source.problem == ""


def test_a_roster_that_cannot_be_used_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(RosterError, match="cannot read"):
        RosterSource(tmp_path / "missing.yaml")
    assert not RosterSource(None).configured
    assert RosterSource(None).current().rotations == ()
