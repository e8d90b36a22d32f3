"""Time as a dependency, so timers and backoff can be tested without sleeping.

Two readings: `now()` is the wall clock (what timestamps, timelines and durable timers use),
`monotonic()` is the process's own measure of elapsed time, which never jumps. They differ
when the wall clock is stepped (NTP, an operator, a VM resumed with an old clock); the
`clockwatch` module compares them to notice that and to keep steps from firing timers.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """UNIX epoch seconds (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that only ever advance with real elapsed time."""
        ...


def _elapsed_clock() -> int:
    # CLOCK_BOOTTIME keeps counting while the host is suspended (a paused VM, a laptop lid):
    # the wall clock does too, so the two agree and a suspend is not mistaken for a step.
    return getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


class SystemClock:
    def __init__(self) -> None:
        self._elapsed_id = _elapsed_clock()

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.clock_gettime(self._elapsed_id)


class ManualClock:
    """A clock that moves only when told to: tests of timers and timeouts."""

    def __init__(self, start: float) -> None:
        self._now = start
        self._elapsed = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._elapsed

    def advance(self, seconds: float) -> None:
        """Time passes: both readings move together."""
        self._now += seconds
        self._elapsed += seconds

    def step(self, seconds: float) -> None:
        """The wall clock is set (forward when positive) while no time passes."""
        self._now += seconds


def to_datetime(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def iso(epoch_s: float) -> str:
    """UTC timestamps as people read them in logs and timelines: 2026-11-21T03:12:07Z."""
    return to_datetime(epoch_s).strftime("%Y-%m-%dT%H:%M:%SZ")
