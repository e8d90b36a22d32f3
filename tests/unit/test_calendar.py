"""Business hours in a non-UTC timezone: weekend and holiday edges, and both 2026 DST switches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from daemon.domain.calendar import BusinessHours, NaiveDatetimeError

BERLIN = ZoneInfo("Europe/Berlin")
HOURS = BusinessHours(timezone="Europe/Berlin", holidays_country="DE")


def berlin(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "off_hours"),
    [
        pytest.param(berlin(2026, 3, 27, 16, 59), False, id="fri-16:59-open"),
        pytest.param(berlin(2026, 3, 27, 17, 0), True, id="fri-17:00-closed"),
        pytest.param(utc(2026, 3, 27, 15, 59), False, id="fri-15:59Z-is-16:59-CET"),
        pytest.param(utc(2026, 3, 27, 16, 0), True, id="fri-16:00Z-is-17:00-CET"),
        pytest.param(berlin(2026, 3, 30, 8, 59), True, id="mon-08:59-closed"),
        pytest.param(berlin(2026, 3, 30, 9, 0), False, id="mon-09:00-open"),
        pytest.param(utc(2026, 3, 30, 7, 0), False, id="mon-07:00Z-is-09:00-CEST"),
        pytest.param(utc(2026, 3, 30, 6, 59), True, id="mon-06:59Z-is-08:59-CEST"),
        pytest.param(berlin(2026, 3, 28, 12, 0), True, id="saturday"),
        pytest.param(berlin(2026, 12, 24, 12, 0), False, id="christmas-eve-is-a-workday"),
        pytest.param(berlin(2026, 12, 25, 12, 0), True, id="christmas-day"),
        pytest.param(berlin(2026, 12, 28, 12, 0), False, id="monday-after-christmas"),
        pytest.param(berlin(2027, 1, 1, 12, 0), True, id="new-year-2027"),
        pytest.param(utc(2026, 12, 31, 23, 0), True, id="new-year-starts-at-local-midnight"),
    ],
)
def test_off_hours_at_edges(at: datetime, off_hours: bool) -> None:
    assert HOURS.is_off_hours(at) is off_hours


@pytest.mark.parametrize(
    ("at", "weekend"),
    [
        pytest.param(utc(2026, 3, 27, 22, 59), False, id="winter-fri-23:59-CET"),
        pytest.param(utc(2026, 3, 27, 23, 0), True, id="winter-sat-00:00-CET"),
        pytest.param(utc(2026, 6, 5, 21, 59), False, id="summer-fri-23:59-CEST"),
        pytest.param(utc(2026, 6, 5, 22, 0), True, id="summer-sat-00:00-CEST"),
        pytest.param(berlin(2026, 3, 29, 23, 59), True, id="sunday-23:59"),
        pytest.param(berlin(2026, 3, 30, 0, 0), False, id="monday-00:00"),
        pytest.param(berlin(2026, 12, 25, 12, 0), False, id="a-holiday-is-not-a-weekend"),
    ],
)
def test_weekend_is_judged_on_the_local_calendar(at: datetime, weekend: bool) -> None:
    assert HOURS.is_weekend(at) is weekend


@pytest.mark.parametrize(
    ("at", "expected_utc"),
    [
        pytest.param(berlin(2026, 3, 27, 17, 0), utc(2026, 3, 30, 7, 0), id="over-spring-dst"),
        pytest.param(berlin(2026, 10, 23, 17, 0), utc(2026, 10, 26, 8, 0), id="over-autumn-dst"),
        pytest.param(utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 7, 0), id="inside-spring-switch"),
        pytest.param(utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 8, 0), id="1st-02:30-of-oct-25"),
        pytest.param(utc(2026, 10, 25, 1, 30), utc(2026, 10, 26, 8, 0), id="2nd-02:30-of-oct-25"),
        pytest.param(berlin(2026, 3, 30, 9, 0), utc(2026, 3, 30, 7, 0), id="exactly-at-start"),
        pytest.param(berlin(2026, 3, 30, 9, 1), utc(2026, 3, 31, 7, 0), id="window-under-way"),
        pytest.param(berlin(2026, 3, 30, 6, 0), utc(2026, 3, 30, 7, 0), id="early-same-morning"),
        pytest.param(berlin(2026, 12, 24, 17, 0), utc(2026, 12, 28, 8, 0), id="over-christmas"),
        pytest.param(berlin(2026, 12, 31, 17, 0), utc(2027, 1, 4, 8, 0), id="over-new-year"),
    ],
)
def test_next_business_start_is_nine_local(at: datetime, expected_utc: datetime) -> None:
    start = HOURS.next_business_start(at)
    assert start == expected_utc
    assert (start.tzinfo, start.hour, start.minute) == (BERLIN, 9, 0)


def sunday_window(zone: str, window: str) -> BusinessHours:
    # DST switches happen on Sunday nights: a Sunday window is what lands in them.
    return BusinessHours(timezone=zone, weekly={"sun": [window]}, weekend_days=["sat"])


@pytest.mark.parametrize(
    ("zone", "window", "at", "expected_utc", "local_hhmm"),
    [
        # Berlin 2026-03-29: clocks jump from 02:00 CET to 03:00 CEST (01:00Z).
        pytest.param("Europe/Berlin", "02:30-06:00", utc(2026, 3, 28, 12), utc(2026, 3, 29, 1),
                     (3, 0), id="berlin-02:30-in-the-gap"),
        pytest.param("Europe/Berlin", "02:00-06:00", utc(2026, 3, 28, 12), utc(2026, 3, 29, 1),
                     (3, 0), id="berlin-02:00-gap-start"),
        pytest.param("Europe/Berlin", "02:59-06:00", utc(2026, 3, 28, 12), utc(2026, 3, 29, 1),
                     (3, 0), id="berlin-02:59-gap-end"),
        pytest.param("Europe/Berlin", "03:00-06:00", utc(2026, 3, 28, 12), utc(2026, 3, 29, 1),
                     (3, 0), id="berlin-03:00-after-the-gap"),
        pytest.param("Europe/Berlin", "01:59-06:00", utc(2026, 3, 28, 12),
                     utc(2026, 3, 29, 0, 59), (1, 59), id="berlin-01:59-before-the-gap"),
        pytest.param("Europe/Berlin", "02:30-06:00", utc(2026, 3, 29, 1), utc(2026, 3, 29, 1),
                     (3, 0), id="berlin-asked-at-the-jump"),
        # New York 2026-03-08: 02:00 EST -> 03:00 EDT (07:00Z).
        pytest.param("America/New_York", "02:30-06:00", utc(2026, 3, 7, 12), utc(2026, 3, 8, 7),
                     (3, 0), id="new-york-02:30-in-the-gap"),
        # Lord Howe 2026-10-04: a half-hour jump, 02:00 +10:30 -> 02:30 +11:00 (15:30Z).
        pytest.param("Australia/Lord_Howe", "02:15-06:00", utc(2026, 10, 3, 0),
                     utc(2026, 10, 3, 15, 30), (2, 30), id="lord-howe-half-hour-gap"),
        # Berlin 2026-10-25: 02:00-03:00 happens twice; a window opens at the first 02:30.
        pytest.param("Europe/Berlin", "02:30-06:00", utc(2026, 10, 24, 12),
                     utc(2026, 10, 25, 0, 30), (2, 30), id="berlin-fall-back-first-02:30"),
    ],
)
def test_a_window_starting_in_a_dst_gap_starts_at_the_first_real_instant_after_it(
    zone: str, window: str, at: datetime, expected_utc: datetime, local_hhmm: tuple[int, int]
) -> None:
    hours = sunday_window(zone, window)
    start = hours.next_business_start(at)
    # Compared in UTC: Python never calls a time in a fold equal to one in another zone.
    assert start.astimezone(UTC) == expected_utc
    assert (start.tzinfo, start.hour, start.minute) == (ZoneInfo(zone), *local_hhmm)
    # The start agrees with is_off_hours: open from that instant, closed a second before it
    # (stepping back in UTC: wall-clock arithmetic would step into the gap).
    assert hours.is_off_hours(expected_utc) is False
    assert hours.is_off_hours(expected_utc - timedelta(seconds=1)) is True


def test_several_windows_a_day_and_extra_closing_days() -> None:
    hours = BusinessHours.model_validate(
        {
            "timezone": "Europe/Berlin",
            "weekly": {"mon": ["13:00-17:00", "09:00-12:00"], "tue": ["22:00-24:00"]},
            "extra_holidays": ["2026-04-07"],
        }
    )
    assert [str(w) for w in hours.weekly.mon] == ["09:00-12:00", "13:00-17:00"]
    assert hours.is_off_hours(berlin(2026, 3, 30, 12, 30)) is True
    assert hours.next_business_start(berlin(2026, 3, 30, 12, 30)) == berlin(2026, 3, 30, 13, 0)
    assert hours.is_off_hours(berlin(2026, 3, 31, 23, 59)) is False
    assert hours.is_off_hours(berlin(2026, 4, 7, 23, 0)) is True  # company closing day
    assert hours.next_business_start(berlin(2026, 3, 31, 23, 0)) == berlin(2026, 4, 6, 9, 0)


def test_default_hours_are_office_hours_in_utc_without_holidays() -> None:
    hours = BusinessHours()
    assert hours.is_off_hours(utc(2026, 12, 25, 10, 0)) is False
    assert hours.is_off_hours(utc(2026, 12, 25, 17, 0)) is True
    assert hours.next_business_start(utc(2026, 12, 25, 17, 0)) == utc(2026, 12, 28, 9, 0)


@pytest.mark.parametrize("call", ["is_weekend", "is_off_hours", "next_business_start"])
def test_naive_datetimes_are_refused(call: str) -> None:
    with pytest.raises(NaiveDatetimeError, match="has no timezone"):
        getattr(HOURS, call)(datetime(2026, 3, 30, 9, 0))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"timezone": "Europe/Berlinn"}, "unknown timezone 'Europe/Berlinn'"),
        ({"holidays_country": "XX"}, "Country XX not available"),
        ({"holidays_country": "DE", "holidays_subdivision": "ZZ"}, "does not have subdivision"),
        ({"holidays_subdivision": "BY"}, "needs holidays_country"),
        ({"weekly": {"sat": ["09:00-12:00"]}}, "sat is a weekend day but has business hours"),
        ({"weekly": {"mon": ["09:00-12:00", "11:00-13:00"]}}, "overlap"),
        ({"weekly": {"mon": ["9-17"]}}, "is not a HH:MM time"),
        ({"weekly": {"mon": ["17:00-09:00"]}}, "ends before it starts"),
        ({"weekly": {"mon": ["09:00-25:00"]}}, "between 00:00 and 24:00"),
        ({"weekly": {}}, "no business window on any day"),
        ({"weekly": {"monday": ["09:00-17:00"]}}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_business_hours_are_rejected(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BusinessHours.model_validate(settings)
