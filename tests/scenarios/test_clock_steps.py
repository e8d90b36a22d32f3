"""A wall clock stepped forward makes every durable timer due at once; it must page nobody.

Seen: the clock stepped 25 minutes forward, and within half a second both pending approvals
were reminded, timed out and paged Tier 2 with nobody deciding, and nothing was logged.
"""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from tests.world import World, incident, world

STEP_S = 25 * 60


async def two_pending_approvals(w: World) -> list[str]:
    for incident_id in ("01FIRST", "01SECOND"):
        assert (await w.daemon.incident_io(incident(incident_id=incident_id))).status == 202
    await w.daemon.settle()
    ids = [row.id for row in await w.daemon.escalations()]
    assert len(ids) == 2 and len(w.approval_posts()) == 2
    return ids


async def test_a_forward_step_reminds_nobody_times_out_nothing_and_pages_nobody(
        tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        ids = await two_pending_approvals(w)
        w.daemon.clock.advance(60)  # a minute of real waiting, then the clock is stepped
        with capture_logs() as logs:
            w.daemon.clock.step(STEP_S)
            await w.daemon.settle()

        assert w.pagerduty.pages == []
        for esc_id in ids:
            events = await w.daemon.events(esc_id)
            assert "approval_timed_out" not in events
            assert "approval_reminded" not in events
            deferred = [e.details for e in await w.daemon.store.timeline(esc_id)
                        if e.event == "timer_deferred"]
            assert {d["timer"] for d in deferred} == {"remind-1", "timeout"}
            assert {d["reason"] for d in deferred} == {"clock_stepped"}
            timeout = next(d for d in deferred if d["timer"] == "timeout")
            assert (timeout["measured_s"], timeout["wall_clock_s"]) == (60, 60 + STEP_S)
        [stepped] = [e for e in logs if e["event"] == "clock.stepped"]
        assert stepped["amount_s"] == STEP_S
        assert [e["event"] for e in logs].count("approval.timer_deferred") == 4

        ready = await w.daemon.admin.get("/readyz")
        assert ready.status == 200  # news, not a reason to stop taking webhooks
        assert (await ready.json())["clock"]["last_step_s"] == STEP_S
        sample = w.daemon.metrics.registry.get_sample_value
        assert sample("tier2gate_clock_steps_total", {"direction": "forward"}) == 1
        assert sample("tier2gate_fallbacks_deferred_total",
                      {"kind": "approval_timeout"}) == 2

        # The fallbacks still act once the time they stand for really passed.
        w.daemon.clock.advance(9 * 60)
        await w.daemon.settle()
        assert w.pagerduty.pages == []
        for esc_id in ids:
            assert "approval_reminded" in await w.daemon.events(esc_id)
        w.daemon.clock.advance(10 * 60)
        await w.daemon.settle()
        assert len(w.pagerduty.pages) == 2
        for esc_id in ids:
            assert (await w.daemon.events(esc_id)).count("approval_timed_out") == 1
        assert await w.daemon.dead_jobs() == []


async def test_without_a_step_the_timeout_pages_on_time(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        [esc_id, _other] = await two_pending_approvals(w)
        w.daemon.clock.advance(20 * 60)
        await w.daemon.settle()
        w.daemon.clock.advance(1)  # the reminder and the timeout raced: one is retried
        await w.daemon.settle()
        assert len(w.pagerduty.pages) == 2
        assert "timer_deferred" not in await w.daemon.events(esc_id)
        assert "clock" not in await (await w.daemon.admin.get("/readyz")).json()
