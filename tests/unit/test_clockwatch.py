"""Wall-clock steps are noticed by comparing the wall clock with elapsed time, and discounted
from the time that passed since an instant before them."""

from __future__ import annotations

from structlog.testing import capture_logs

from daemon.clock import ManualClock
from daemon.clockwatch import ClockWatch
from daemon.metrics import Metrics
from tests.support import START


def test_time_passing_is_not_a_step_but_a_forward_step_is_logged_and_counted() -> None:
    clock, metrics = ManualClock(START), Metrics()
    watch = ClockWatch(clock, threshold_s=5.0, metrics=metrics)
    clock.advance(3600)
    clock.step(2.0)  # drift below the threshold: NTP's business, not ours
    assert watch.check() is None
    with capture_logs() as logs:
        clock.step(30 * 60)
        step = watch.check()
    assert step is not None and step.amount_s == 30 * 60
    [entry] = logs
    assert entry["event"] == "clock.stepped"
    assert entry["log_level"] == "warning"
    assert (entry["amount_s"], entry["direction"]) == (1800, "forward")
    sample = metrics.registry.get_sample_value
    assert sample("tier2gate_clock_steps_total", {"direction": "forward"}) == 1
    assert sample("tier2gate_clock_last_step_seconds") == 1800
    assert watch.detail() == {"steps": 1, "last_step_s": 1800.0,
                              "last_step_at": "2026-11-18T12:36:42Z"}
    assert watch.check() is None  # seen once


def test_elapsed_time_discounts_forward_steps_after_the_instant_only() -> None:
    clock = ManualClock(START)
    watch = ClockWatch(clock, threshold_s=5.0)
    asked = clock.now()
    clock.advance(60)
    clock.step(25 * 60)
    after_step = clock.now()
    clock.advance(30)
    # The wall clock says 26.5 minutes passed; the process measured 90 seconds.
    assert watch.elapsed_since(asked) == 90
    # An instant recorded after the step is on the new scale: nothing to discount.
    assert watch.elapsed_since(after_step) == 30
    assert watch.last is not None


def test_a_backward_step_is_reported_but_never_makes_time_pass_faster() -> None:
    clock, metrics = ManualClock(START), Metrics()
    watch = ClockWatch(clock, threshold_s=5.0, metrics=metrics)
    asked = clock.now()
    clock.advance(60)
    clock.step(-600)
    assert watch.elapsed_since(asked) == 60 - 600  # late, never early
    sample = metrics.registry.get_sample_value
    assert sample("tier2gate_clock_steps_total", {"direction": "backward"}) == 1
    assert sample("tier2gate_clock_last_step_seconds") == -600
