"""The Escalation Engineer rotation, from a roster file: date ranges -> engineers.

    timezone: Europe/Berlin      # the dates and `handoff_time` are local to it (default UTC)
    handoff_time: "09:00"        # when a rotation begins on its first day (default 09:00)
    rotations:
      - from: 2026-11-23         # first day
        to: 2026-12-06           # last day, inclusive: the next rotation begins the day after
        engineers:
          - slack_user_id: U0EE00001
            name: Ada Lovelace

A rotation is in force from `from` at `handoff_time` until the day after `to` at
`handoff_time`. Rotations may leave gaps (nobody is on rotation then: requests for help and
emergencies go on at once without an EE) and may not overlap. Its id is
`<from>..<to>`, stable across edits of its engineers; its handoff is keyed by `from` alone.

Like the policy, the roster is re-read when its file changes, and a file that became invalid
keeps the last good roster in force (`problem` says why, `/readyz` and `check-config` show it).
An empty file, or one without `rotations:`, is invalid (an editor saving in place empties the
file for a moment); no rotation at all is `rotations: []`.
Validation errors name the file, the line and the key.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from daemon.logging import get_logger
from daemon.yamlfile import YamlDoc, YamlError, dotted

log = get_logger("tier2gate.roster")

_SLACK_USER_ID = r"^[UW][A-Z0-9]{2,}$"  # Slack user ids: U… (W… on Enterprise Grid)
_FIRST_DAY, _LAST_DAY = date(1970, 1, 1), date(9998, 12, 31)


class RosterError(ValueError):
    """The roster cannot be used; the message lists every problem as `file:line: key: what`."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Engineer(_Frozen):
    slack_user_id: Annotated[str, Field(pattern=_SLACK_USER_ID)]
    name: Annotated[str, Field(min_length=1, max_length=200)]


class RotationEntry(_Frozen):
    from_: date = Field(alias="from")
    to: date
    engineers: Annotated[tuple[Engineer, ...], Field(min_length=1, max_length=50)]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.to < self.from_:
            raise ValueError("`to` is before `from`")
        if self.from_ < _FIRST_DAY or self.to > _LAST_DAY:
            # Beyond these the hand-over moments (the day after `to`, in UTC) are no dates.
            raise ValueError(f"dates must lie between {_FIRST_DAY} and {_LAST_DAY}")
        ids = [e.slack_user_id for e in self.engineers]
        if len(set(ids)) != len(ids):
            raise ValueError("an engineer is listed twice")
        return self


class RosterFile(_Frozen):
    timezone: str = "UTC"
    handoff_time: clock_time = clock_time(9, 0)
    rotations: tuple[RotationEntry, ...]  # required: a file without it is no roster

    @field_validator("handoff_time", mode="before")
    @classmethod
    def _quoted_time(cls, value: Any) -> Any:
        """YAML 1.1 reads an unquoted 9:00 as the number 540 (base 60): refuse it by name."""
        if isinstance(value, int | float):
            raise ValueError('write the time in quotes, e.g. "09:00"')
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{name!r} is not a known IANA time zone, e.g. Europe/Berlin") \
                from None
        return name


def _overlaps(parsed: RosterFile) -> list[tuple[int, str]]:
    """(index, message) of each rotation that begins before the one before it ended."""
    ordered = sorted(enumerate(parsed.rotations), key=lambda item: item[1].from_)
    return [(index, f"overlaps rotation {before.from_}..{before.to}")
            for (_, before), (index, after) in itertools.pairwise(ordered)
            if after.from_ <= before.to]


@dataclass(frozen=True)
class Rotation:
    """One rotation in force between `start` and `end` (aware datetimes)."""

    id: str
    start: datetime
    end: datetime
    engineers: tuple[Engineer, ...]
    first_day: date  # `from`: what the rotation is known by when its end or people are edited

    @property
    def user_ids(self) -> tuple[str, ...]:
        return tuple(e.slack_user_id for e in self.engineers)

    def name_of(self, user_id: str) -> str:
        return next((e.name for e in self.engineers if e.slack_user_id == user_id), "")


@dataclass(frozen=True)
class Roster:
    rotations: tuple[Rotation, ...]  # in time order

    def at(self, moment: datetime) -> Rotation | None:
        """The rotation in force at `moment`, or None (a gap, or before/after the roster)."""
        return next((r for r in self.rotations if r.start <= moment < r.end), None)

    def before(self, rotation: Rotation) -> Rotation | None:
        """The last rotation that ended before `rotation` began: its EEs are the outgoing."""
        earlier = [r for r in self.rotations if r.end <= rotation.start]
        return earlier[-1] if earlier else None


def parse_roster(text: str, name: str) -> Roster:
    """Validate roster YAML; `RosterError` names `name`, the line and the key."""
    try:
        doc = YamlDoc(text, name)
    except YamlError as exc:
        raise RosterError(str(exc)) from None
    if doc.data is None:
        # Most likely a file caught between an editor's truncate and its write: refused, so
        # the last good roster stays. No rotation at all is written `rotations: []`.
        raise RosterError(f"{name}:1: the file is empty: write `rotations: []` for no rotation")
    data: Any = doc.data
    if not isinstance(data, dict):
        raise RosterError(f"{name}:1: expected a mapping with `rotations:`")
    lines: list[str] = []
    try:
        parsed = RosterFile.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            # The alias is what people write: `from`, not the attribute's name.
            loc = tuple("from" if part == "from_" else part for part in loc)
            line = doc.line_of(loc)
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = f"unknown key {loc[-1]!r}"
            lines.append(f"{name}:{line if line is not None else 1}: "
                         f"{dotted(loc) or '(document)'}: {message}")
        raise RosterError("\n".join(lines)) from None
    for index, message in _overlaps(parsed):
        loc = ("rotations", index)
        lines.append(f"{name}:{doc.line_of(loc) or 1}: {dotted(loc)}: {message}")
    if lines:
        raise RosterError("\n".join(lines))
    zone = ZoneInfo(parsed.timezone)

    def moment(day: date) -> datetime:
        return datetime.combine(day, parsed.handoff_time, tzinfo=zone)

    rotations = tuple(
        Rotation(id=f"{entry.from_.isoformat()}..{entry.to.isoformat()}",
                 start=moment(entry.from_), end=moment(entry.to + timedelta(days=1)),
                 engineers=entry.engineers, first_day=entry.from_)
        for entry in sorted(parsed.rotations, key=lambda r: r.from_))
    return Roster(rotations)


def roster_summary(roster: Roster) -> list[dict[str, Any]]:
    """The rotations as `check-config` prints them: id, start, end, engineers."""
    return [{"rotation": r.id, "starts": r.start.isoformat(), "ends": r.end.isoformat(),
             "engineers": [f"{e.name} ({e.slack_user_id})" for e in r.engineers]}
            for r in roster.rotations]


def load_roster(path: Path) -> Roster:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"{path}: cannot read ({exc})") from None
    return parse_roster(text, str(path))


_Stat = tuple[int, int, int] | None


class RosterSource:
    """The roster in force, re-read when its file changes (like the policy), keeping the last
    good one when an edit is broken. No file configured: an empty roster (no EE layer)."""

    def __init__(self, path: Path | None) -> None:
        """Load the roster now; raises `RosterError` when it cannot be used at start."""
        self.path = path
        self.problem = ""
        self._roster = load_roster(path) if path is not None else Roster(())
        self._seen = self._stat()

    @property
    def configured(self) -> bool:
        return self.path is not None

    def _stat(self) -> _Stat:
        if self.path is None:
            return None
        try:
            found = self.path.stat()
        except OSError:
            return None
        return found.st_mtime_ns, found.st_size, found.st_ino

    def current(self) -> Roster:
        self.refresh()
        return self._roster

    def refresh(self) -> None:
        if self.path is None:
            return
        seen = self._stat()
        if seen == self._seen:
            return
        self._seen = seen
        try:
            roster = load_roster(self.path)
        except RosterError as exc:
            self.problem = (f"EE roster {self.path} not reloaded, the previous one is in "
                            f"force: {exc}")
            log.error("roster.reload_failed", error=str(exc))
            return
        self.problem = ""
        self._roster = roster
        log.info("roster.reloaded", path=str(self.path), rotations=len(roster.rotations))
