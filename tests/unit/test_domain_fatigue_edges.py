"""Responders' time zones and the load buckets of `daemon.domain.fatigue`, at their edges."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from daemon.domain.fatigue import Bucket, Buckets, zone_or

FALLBACK = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(("name", "zone", "fell_back"), [
    ("America/New_York", ZoneInfo("America/New_York"), False),
    ("", FALLBACK, True),  # the PagerDuty lookup failed
    ("Mars/Olympus_Mons", FALLBACK, True),  # no such zone
    ("America", FALLBACK, True),  # a folder of zones
    ("../../etc/passwd", FALLBACK, True),  # not a zone name at all
    ("x" * 300, FALLBACK, True),  # too long for a file name
])
def test_a_responders_unknown_time_zone_falls_back_and_says_so(name: str, zone: ZoneInfo,
                                                               fell_back: bool) -> None:
    assert zone_or(name, FALLBACK) == (zone, fell_back)


def test_buckets_count_each_interruption_once() -> None:
    counted = Buckets.of([Bucket.SLEEP, Bucket.OFF, Bucket.SLEEP, Bucket.BUSINESS, Bucket.SLEEP])
    assert counted == Buckets(business_hours=1, off_hours=1, sleep_hours=3)
    assert counted.total == 5
    assert Buckets.of([]).total == 0

