"""Business hours: when Tier 2 is at work, so that RFHs get a due time and reports can say
"weekend".

Hours are wall-clock times in one named timezone, so "09:00" stays 09:00 local across DST
changes. Every function takes the clock as an argument and refuses naive datetimes: a naive
value would silently be read in the host's timezone, which is exactly the bug this module exists
to prevent.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from itertools import pairwise
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

MINUTES_PER_DAY = 24 * 60
# A policy with at least one window a week always finds one within a year, unless every day is
# a holiday; two years bounds the search without guessing at calendars.
_SEARCH_LIMIT_DAYS = 2 * 366


class NaiveDatetimeError(ValueError):
    """A datetime without timezone reached the calendar; the caller must pass an aware one."""


def require_aware(at: datetime, what: str = "datetime") -> datetime:
    """Return `at` unchanged if it carries a UTC offset, else raise `NaiveDatetimeError`."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetimeError(
            f"{what} {at.isoformat()} has no timezone; pass an aware datetime "
            "(e.g. datetime.now(UTC))"
        )
    return at


def _parse_hhmm(text: str) -> int:
    """Minutes after midnight for "HH:MM"; "24:00" is allowed so a window can end at midnight."""
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not (hours.isdigit() and minutes.isdigit()) or len(minutes) != 2:
        raise ValueError(f"{text!r} is not a HH:MM time")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > MINUTES_PER_DAY:
        raise ValueError(f"{text!r} is not a time of day between 00:00 and 24:00")
    return value


def _window_from_text(value: object) -> object:
    """Accept the compact "09:00-17:00" form used in YAML; anything else goes to the model."""
    if not isinstance(value, str):
        return value
    start, sep, end = value.partition("-")
    if not sep:
        raise ValueError(f"{value!r} is not a window like '09:00-17:00'")
    return {"start_minute": _parse_hhmm(start), "end_minute": _parse_hhmm(end)}


class _Window(BaseModel):
    """One stretch of a day, [start, end) in local wall-clock minutes; no overnight windows
    (write 22:00-24:00 and 00:00-06:00 on the next day instead)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_minute: int = Field(ge=0, lt=MINUTES_PER_DAY)
    end_minute: int = Field(gt=0, le=MINUTES_PER_DAY)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start_minute >= self.end_minute:
            raise ValueError(f"window {self} ends before it starts")
        return self

    @model_serializer
    def _as_text(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return "{:02d}:{:02d}-{:02d}:{:02d}".format(
            *divmod(self.start_minute, 60), *divmod(self.end_minute, 60)
        )

    @property
    def start(self) -> time:
        return time(*divmod(self.start_minute, 60))


Window = Annotated[_Window, BeforeValidator(_window_from_text)]
_OFFICE = ("09:00-17:00",)


class WeeklyHours(BaseModel):
    """Business windows per weekday; a day that is not listed has none."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mon: tuple[Window, ...] = ()
    tue: tuple[Window, ...] = ()
    wed: tuple[Window, ...] = ()
    thu: tuple[Window, ...] = ()
    fri: tuple[Window, ...] = ()
    sat: tuple[Window, ...] = ()
    sun: tuple[Window, ...] = ()

    @field_validator(*WEEKDAYS)
    @classmethod
    def _sorted_disjoint(cls, windows: tuple[_Window, ...]) -> tuple[_Window, ...]:
        """Sorted once here so that the search for the next start can take the first hit."""
        ordered = tuple(sorted(windows, key=lambda w: w.start_minute))
        for earlier, later in pairwise(ordered):
            if later.start_minute < earlier.end_minute:
                raise ValueError(f"windows {earlier} and {later} overlap")
        return ordered

    def on(self, day: Weekday) -> tuple[_Window, ...]:
        windows: tuple[_Window, ...] = getattr(self, day)
        return windows


class BusinessHours(BaseModel):
    """When Tier 2 works: weekly windows in `timezone`, minus weekends and public holidays."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = "UTC"
    weekly: WeeklyHours = WeeklyHours.model_validate(
        {day: _OFFICE for day in ("mon", "tue", "wed", "thu", "fri")}
    )
    weekend_days: tuple[Weekday, ...] = ("sat", "sun")
    holidays_country: str | None = Field(
        default=None, description="ISO country code for the `holidays` package, e.g. DE or US"
    )
    holidays_subdivision: str | None = Field(default=None, description="e.g. BY for Bavaria")
    extra_holidays: tuple[date, ...] = Field(
        default=(), description="company closing days on top of public holidays"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {name!r} (use an IANA name)") from exc
        return name

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.holidays_subdivision and not self.holidays_country:
            raise ValueError("holidays_subdivision needs holidays_country")
        if self.holidays_country:
            try:
                self._public_holidays  # noqa: B018 -- building it is the validation
            except NotImplementedError as exc:
                raise ValueError(f"holidays: {exc}") from exc
        for day in self.weekend_days:
            if self.weekly.on(day):
                raise ValueError(f"{day} is a weekend day but has business hours")
        if not any(self.weekly.on(day) for day in WEEKDAYS):
            raise ValueError("weekly has no business window on any day")
        return self

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _public_holidays(self) -> holidays.HolidayBase | None:
        if not self.holidays_country:
            return None
        return holidays.country_holidays(self.holidays_country, subdiv=self.holidays_subdivision)

    def local(self, at: datetime) -> datetime:
        """`at` as wall-clock time in the business timezone."""
        return require_aware(at).astimezone(self.zone)

    def is_holiday(self, day: date) -> bool:
        """Public holiday or company closing day, judged by the local calendar date."""
        public = self._public_holidays
        return day in self.extra_holidays or (public is not None and day in public)

    def _windows(self, day: date) -> tuple[_Window, ...]:
        weekday = WEEKDAYS[day.weekday()]
        if weekday in self.weekend_days or self.is_holiday(day):
            return ()
        return self.weekly.on(weekday)

    def is_weekend(self, at: datetime) -> bool:
        """Whether `at` falls on a local weekend day: Saturday 00:00 Berlin is Friday 23:00 UTC."""
        return WEEKDAYS[self.local(at).weekday()] in self.weekend_days

    def is_off_hours(self, at: datetime) -> bool:
        """Whether `at` is outside every business window: evenings, weekends and holidays."""
        local = self.local(at)
        second = local.hour * 3600 + local.minute * 60 + local.second
        return not any(
            w.start_minute * 60 <= second < w.end_minute * 60 for w in self._windows(local.date())
        )

    def next_business_start(self, at: datetime) -> datetime:
        """The first business-window start at or after `at`, in the business timezone.

        A window already under way does not count: an RFH raised at Monday 10:00 is due Tuesday
        09:00, the next business morning. Starts are compared as instants, so DST days work.
        """
        local = self.local(at)
        instant = local.astimezone(UTC)
        day = local.date()
        for _ in range(_SEARCH_LIMIT_DAYS):
            for window in self._windows(day):
                start = self._first_instant_from(datetime.combine(day, window.start))
                if start >= instant:
                    return start.astimezone(self.zone)
            day += timedelta(days=1)
        raise ValueError(f"no business window within {_SEARCH_LIMIT_DAYS} days after {at}")

    def _first_instant_from(self, wall: datetime) -> datetime:
        """The first real instant (UTC) at which the local clock reads `wall` or later.

        Usually that is `wall` itself; on a fall-back night it is the first of the two. A
        wall-clock time inside a spring-forward gap never happens, and reading it with `fold=0`
        (the offset from before the change) lands as far after the gap as it was inside it:
        02:30 in Berlin on 2026-03-29 would become 03:30. The window really opens when the
        clock jumps, at the first instant after the gap (03:00), which is what `is_off_hours`
        already says: at 03:00 the local clock is past 02:30.
        """
        after = wall.replace(tzinfo=self.zone).astimezone(UTC)
        if self._wall(after) == wall:
            return after
        # `fold=1` reads it with the offset from after the change: an instant before the jump.
        # zoneinfo does not expose its transitions, so find the jump between the two readings;
        # the tz database puts every transition on a whole second.
        before_s = int(wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC).timestamp())
        after_s = int(after.timestamp())
        while after_s - before_s > 1:
            middle_s = (before_s + after_s) // 2
            if self._wall(datetime.fromtimestamp(middle_s, UTC)) >= wall:
                after_s = middle_s
            else:
                before_s = middle_s
        return datetime.fromtimestamp(after_s, UTC)

    def _wall(self, instant: datetime) -> datetime:
        """What a local clock shows at `instant`, without its zone, to compare with a window."""
        return instant.astimezone(self.zone).replace(tzinfo=None)
