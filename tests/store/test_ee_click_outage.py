"""A "Take it" click while another process locks the SQLite database: answered within Slack's
3 s with a 503 (Slack marks the click failed, the EE presses again), like Approve and Decline;
pressed again once the database is back, it is recorded."""

from __future__ import annotations

import subprocess
import time

from daemon.demo.payloads import ee_button_press
from tests.harness import Harness
from tests.store.test_sqlite_outages import (
    SLACK_DEADLINE_S,
    harness,
    locker,
    readiness,
    release,
)

__all__ = ["harness", "locker"]  # the fixtures, used by name


async def test_a_take_it_click_while_locked_is_answered_503_in_time(
        harness: Harness, locker: subprocess.Popen[str]) -> None:
    take = ee_button_press("esc-00000000", "UEE0ADA", "take", "C0EESUPPORT", "1700000000.000100",
                           "1.001")
    started = time.monotonic()
    response = await harness.slack_interaction(take)
    assert time.monotonic() - started < SLACK_DEADLINE_S
    assert response.status == 503
    assert "database is unavailable (locked)" in await response.text()
    release(locker)
    assert await readiness(harness) == (200, [])
    again = dict(take, actions=[{**take["actions"][0], "action_ts": "1.002"}])
    assert (await harness.slack_interaction(again)).status == 200
    assert await harness.store.count_deliveries() >= 1
