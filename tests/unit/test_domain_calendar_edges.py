"""Business hours at their edges: how a window may be written, a calendar with no window for
years, and the rule every due time keeps (a property over any moment and several calendars)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from daemon.domain.calendar import BusinessHours

CALENDARS = (
    BusinessHours(),
    BusinessHours(timezone="Europe/Berlin", holidays_country="DE"),
    BusinessHours(timezone="America/New_York", holidays_country="US",
                  weekly={"mon": ["08:00-12:00", "13:00-17:00"], "fri": ["10:00-24:00"]}),
    BusinessHours(timezone="Asia/Kolkata", weekend_days=("fri", "sat"),
                  weekly={"sun": ["09:30-18:00"], "thu": ["00:00-02:00"]}),
)


def test_a_window_may_be_written_as_minutes() -> None:
    written = BusinessHours.model_validate(
        {"weekly": {"mon": [{"start_minute": 540, "end_minute": 1020}]}})
    assert written == BusinessHours.model_validate({"weekly": {"mon": ["09:00-17:00"]}})


def test_a_window_without_a_dash_is_refused_with_the_form_to_use() -> None:
    with pytest.raises(ValidationError, match="'09:00' is not a window like '09:00-17:00'"):
        BusinessHours.model_validate({"weekly": {"mon": ["09:00"]}})


def test_the_search_for_the_next_business_morning_ends() -> None:
    """Open on Mondays only, and every Monday for three years a closing day: no due time can
    be given, and the search says so instead of running on."""
    first = date(2026, 11, 23)  # a Monday
    mondays = tuple(first + timedelta(weeks=n) for n in range(160))
    hours = BusinessHours(weekly={"mon": ["09:00-17:00"]}, extra_holidays=mondays)
    with pytest.raises(ValueError, match="no business window within 732 days"):
        hours.next_business_start(datetime(2026, 11, 21, 2, 0, tzinfo=UTC))


@settings(max_examples=150, deadline=None)
@given(calendar=st.sampled_from(CALENDARS),
       at=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31),
                       timezones=st.just(UTC)))
def test_the_next_business_start_is_the_first_window_start_not_before_now(
        calendar: BusinessHours, at: datetime) -> None:
    start = calendar.next_business_start(at)
    assert start >= at
    assert not calendar.is_off_hours(start)  # a window is open at its start
    assert not calendar.is_weekend(start) and not calendar.is_holiday(start.date())
    # No window started in between (these calendars have no back-to-back windows): the minute
    # before the due time is off hours, unless it is before `at` itself.
    before = start - timedelta(minutes=1)
    assert before < at or calendar.is_off_hours(before)
    if calendar.is_off_hours(at):  # then nothing opened between `at` and the due time
        assert all(calendar.is_off_hours(at + (start - at) * n / 24) for n in range(24))
