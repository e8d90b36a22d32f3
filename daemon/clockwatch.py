"""Noticing that the wall clock was stepped while the process runs, and discounting the steps.

Durable timers (approval reminders and timeouts) are due at a wall-clock instant, so a clock
stepped 25 minutes forward makes every pending one due at once. The process cannot tell a
step from elapsed time by the wall clock alone; it can by comparing how far the wall clock and
its own elapsed-time clock (`Clock.monotonic`) moved between two looks. `ClockWatch` looks
often (every `clock.check_interval_s`, and again right before a fallback acts), remembers each
step it saw, and answers "how much time really passed since this wall-clock instant".

What it cannot know: a step before this process started (monotonic history does not survive a
restart). For that span the wall clock is all there is; it is trusted, and only the steps seen
since the start are discounted. A timer that a restart finds overdue still fires (a process that
was down for 20 minutes must page on the approval it missed).

Backward steps are logged and surfaced but not compensated: they only make timers late, and
telling an event just before a backward step from one just after is impossible within a look.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.clock import Clock, iso
from daemon.logging import get_logger
from daemon.metrics import Metrics

log = get_logger("tier2gate.clock")


@dataclass(frozen=True)
class ClockStep:
    amount_s: float  # positive: the wall clock jumped forward
    seen_at: float  # wall clock (after the step) when it was noticed
    before_wall: float
    """The latest wall-clock reading that can predate the step: an instant recorded at or
    before it was on the old scale, one after it on the new scale (unambiguous for a forward
    step larger than the interval between two looks)."""


class ClockWatch:
    def __init__(self, clock: Clock, threshold_s: float, metrics: Metrics | None = None) -> None:
        """`threshold_s`: a difference between wall and elapsed time smaller than this is
        drift (NTP slews the clock by far less), not a step."""
        self.clock = clock
        self.threshold_s = threshold_s
        self.metrics = metrics
        self.steps: list[ClockStep] = []
        self._wall = clock.now()
        self._elapsed = clock.monotonic()

    def check(self) -> ClockStep | None:
        """Look at both clocks; a step since the last look is recorded, logged and counted."""
        wall, elapsed = self.clock.now(), self.clock.monotonic()
        amount = (wall - self._wall) - (elapsed - self._elapsed)
        self._wall, self._elapsed = wall, elapsed
        if abs(amount) < self.threshold_s:
            return None
        step = ClockStep(amount_s=amount, seen_at=wall, before_wall=wall - amount)
        self.steps.append(step)
        direction = "forward" if amount > 0 else "backward"
        log.warning("clock.stepped", amount_s=round(amount, 3), direction=direction,
                    at=iso(wall), was=iso(wall - amount))
        if self.metrics is not None:
            self.metrics.clock_steps.labels(direction).inc()
            self.metrics.clock_last_step.set(amount)
        return step

    @property
    def last(self) -> ClockStep | None:
        return self.steps[-1] if self.steps else None

    def elapsed_since(self, wall_s: float) -> float:
        """Seconds that really passed since the wall-clock instant `wall_s`: the wall clock's
        difference minus every forward step this process saw after that instant."""
        self.check()
        stepped = sum(s.amount_s for s in self.steps if s.amount_s > 0 and wall_s <= s.before_wall)
        return self.clock.now() - wall_s - stepped

    def detail(self) -> dict[str, object]:
        """How many steps were seen, and the last one."""
        last = self.last
        if last is None:
            return {"steps": 0}
        return {"steps": len(self.steps), "last_step_s": round(last.amount_s, 3),
                "last_step_at": iso(last.seen_at)}
