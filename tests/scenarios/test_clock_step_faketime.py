"""A real `tier2gate serve` whose wall clock is stepped 30 minutes forward under libfaketime
(as NTP or an operator would step it; elapsed time is left alone) pages nobody, and says so."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path

import aiohttp
import pytest

from tests.resilience.live import LiveDaemon, fast_jobs_env, incident_io_headers, vendors
from tests.support import eventually
from tests.world import CHANNEL, incident

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not LIBFAKETIME.exists(), reason="libfaketime is not installed"),
]


def outer_offset_s() -> float:
    """The offset this test itself runs under (CI runs the suite again with libfaketime's
    `FAKETIME='+400 days'`): the daemon starts from the same wall clock as the test."""
    spec = os.environ.get("FAKETIME", "").strip()
    found = re.fullmatch(r"([+-]\d+(?:\.\d+)?)\s*([a-z]*)", spec)
    if found is None:
        return 0.0
    unit = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "day": 86400,
            "days": 86400, "y": 31536000}[found[2]]
    return float(found[1]) * unit


async def test_a_30_minute_forward_step_pages_nobody_and_is_logged(tmp_path: Path) -> None:
    base_s = outer_offset_s()
    offset = tmp_path / "faketime"
    offset.write_text(f"{base_s:+.0f}\n")
    async with vendors(tmp_path) as v:
        daemon = LiveDaemon(tmp_path, {
            **v.env(), **fast_jobs_env(), "TIER2GATE_CLOCK__CHECK_INTERVAL_S": "0.1",
            "LD_PRELOAD": str(LIBFAKETIME), "FAKETIME_TIMESTAMP_FILE": str(offset),
            "FAKETIME_NO_CACHE": "1",
            # A step moves the wall clock only: the process's elapsed time goes on as before.
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        })
        # libfaketime's FAKETIME always wins over the file: the outer one must not reach it.
        daemon.env.pop("FAKETIME", None)
        await daemon.start()
        try:
            body = json.dumps(incident(opened_at=time.time())).encode()
            async with aiohttp.ClientSession() as session:
                async with session.post(daemon.url + "/webhooks/incident-io", data=body,
                                        headers=incident_io_headers(body, "msg_1")) as answer:
                    assert answer.status == 202

                async def asked() -> bool:
                    return any(key[0] == CHANNEL for key in v.slack.messages)
                await eventually(asked, 20)

                offset.write_text(f"{base_s + 1800:+.0f}\n")

                async def deferred() -> bool:
                    events = daemon.log_events()
                    return (events["clock.stepped"] == 1
                            and events["approval.timer_deferred"] >= 2)
                await eventually(deferred, 20)
                await asyncio.sleep(1)  # whatever the step made due has had its chance

                assert v.pagerduty.pages == []
                async with session.get(daemon.admin_url + "/readyz") as ready:
                    assert ready.status == 200
                    clock = (await ready.json())["clock"]
                assert clock["steps"] == 1
                assert 1790 < clock["last_step_s"] < 1810
        finally:
            assert await daemon.stop() == 0
        timeline = [event for (event,) in daemon.query("SELECT event FROM timeline ORDER BY id")]
        assert "approval_timed_out" not in timeline
        assert "approval_reminded" not in timeline
        assert timeline.count("timer_deferred") == 2
        assert "paged" not in timeline
