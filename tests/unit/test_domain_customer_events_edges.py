"""Customer events (`daemon.domain.customer_events`) at their edges: their order in time, and
the calendar's fingerprint that tells the daemon the calendar changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from daemon.domain.customer_events import CustomerEvent, EventCalendar, EventKind

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def event(customer: str, hours: int = 2, start: datetime = START) -> CustomerEvent:
    return CustomerEvent(customer=customer, summary="launch", kind=EventKind.LAUNCH,
                         start=start, end=start + timedelta(hours=hours))


@pytest.mark.parametrize("hours", [0, -1])
def test_an_event_must_end_after_it_starts(hours: int) -> None:
    with pytest.raises(ValidationError, match="end must be after start"):
        event("Acme", hours)


def test_a_calendar_fingerprint_changes_only_with_its_events() -> None:
    acme, globex = event("Acme"), event("Globex", start=START + timedelta(days=1))
    one = EventCalendar.of([acme, globex])
    assert EventCalendar.of([globex, acme, acme]).fingerprint == one.fingerprint
    assert EventCalendar.of([acme]).fingerprint != one.fingerprint
    assert EventCalendar.of([acme, event("Globex", hours=3, start=START + timedelta(days=1))]
                            ).fingerprint != one.fingerprint
