"""Policy edits are atomic and apply to what is pending.

Seen: the policy saved in place and read half-written (valid YAML, most rules missing)
classified an S1 emergency as an RFH, and it stayed an RFH after the full file loaded; and an
approval pending when `on_timeout` changed from `page` to `hold` was paged under the old
fallback.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from tests.harness import REPO
from tests.world import World, incident, world

SHIPPED = (REPO / "config" / "policy.yaml").read_text()
HALF = SHIPPED[:SHIPPED.index("  # Support asserts one of")]  # valid YAML, one rule of four
SETTLE_S = 2.0
_mtime_ns = 1_000_000_000


def edit(path: Path, text: str) -> None:
    """Save in place, as an editor does, with a distinct mtime even within one clock tick."""
    global _mtime_ns
    _mtime_ns += 1_000_000_000
    path.write_text(text)
    os.utime(path, ns=(_mtime_ns, _mtime_ns))


def policy_world(tmp_path: Path, check_interval_s: float = 0.02) -> Any:
    path = tmp_path / "policy.yaml"
    edit(path, SHIPPED)
    return world(tmp_path, policy_file=str(path), policy_settle_s=SETTLE_S,
                 clock={"check_interval_s": check_interval_s})


async def outcomes(w: World, esc_id: str) -> list[str]:
    return [str(e.details["outcome"]) for e in await w.daemon.store.timeline(esc_id)
            if e.event == "classified"]


async def policy_changes(w: World, esc_id: str) -> list[dict[str, Any]]:
    return [e.details for e in await w.daemon.store.timeline(esc_id)
            if e.event == "policy_changed"]


def announcements(w: World) -> float:
    done = w.daemon.metrics.registry.get_sample_value(
        "tier2gate_job_runs_total", {"kind": "policy_changed", "result": "done"})
    return done or 0.0


async def put_in_force(w: World, path: Path, text: str) -> None:
    """Save `text` and let it settle, until the watch has put it in force and announced it."""
    before = announcements(w)
    edit(path, text)
    for _ in range(100):
        await asyncio.sleep(0.05)  # a few looks of the watch
        w.daemon.clock.advance(SETTLE_S)
        await w.daemon.settle()
        if announcements(w) > before:
            return
    pytest.fail("the edited policy was never put in force")


async def test_an_s1_arriving_while_the_policy_is_half_written_is_an_emergency(
        tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    edit(path, SHIPPED)
    async with world(tmp_path, policy_file=str(path)) as w:  # default settle interval
        edit(path, HALF)  # the editor truncated the file and wrote its first part
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        edit(path, SHIPPED)  # ... and then the rest
        w.daemon.clock.advance(SETTLE_S)
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        assert await outcomes(w, row.id) == ["emergency"]
        assert len(w.approval_posts()) == 1


async def test_an_rfh_made_by_a_half_written_policy_is_an_emergency_once_the_full_file_loads(
        tmp_path: Path) -> None:
    """The editor stalled longer than the settle interval: the half file was put in force."""
    async with policy_world(tmp_path) as w:
        path = tmp_path / "policy.yaml"
        await put_in_force(w, path, HALF)
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        assert await outcomes(w, row.id) == ["rfh"]

        await put_in_force(w, path, SHIPPED)
        await w.daemon.settle()
        assert await outcomes(w, row.id) == ["rfh", "emergency"]
        [change] = await policy_changes(w, row.id)
        assert (change["previous"], change["outcome"]) == ("rfh", "emergency")
        assert change["from"] != change["to"]
        assert len(w.approval_posts()) == 1
        events = await w.daemon.events(row.id)
        assert events.index("policy_changed") < events.index("approval_requested")


async def test_an_approval_pending_when_on_timeout_becomes_hold_is_held(tmp_path: Path
                                                                       ) -> None:
    async with policy_world(tmp_path) as w:
        path = tmp_path / "policy.yaml"
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        await put_in_force(w, path, SHIPPED.replace("on_timeout: page", "on_timeout: hold"))
        [change] = await policy_changes(w, row.id)
        assert (change["previous"], change["outcome"]) == ("emergency", "emergency")
        assert change["on_timeout"] == "hold"
        await held_at_the_timeout(w, row.id)


async def test_a_timeout_due_before_the_change_is_announced_uses_the_policy_in_force(
        tmp_path: Path) -> None:
    """The watch has not announced the new policy yet (it looks once an hour here), but the
    intake already put it in force: the timeout judges the escalation again itself."""
    async with policy_world(tmp_path, check_interval_s=3600.0) as w:
        path = tmp_path / "policy.yaml"
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        edit(path, SHIPPED.replace("on_timeout: page", "on_timeout: hold"))
        for n in range(2):  # another incident's deliveries make the intake look twice
            w.daemon.clock.advance(SETTLE_S)
            other = incident(incident_id="01OTHER", exhausted=False, severity="SEV3",
                             updated_at=f"2026-11-21T02:0{5 + n}:00Z")
            assert (await w.daemon.incident_io(other)).status == 202
            await w.daemon.settle()
        assert await policy_changes(w, row.id) == []  # not announced
        await held_at_the_timeout(w, row.id)
        [change] = await policy_changes(w, row.id)
        assert change["on_timeout"] == "hold"


async def held_at_the_timeout(w: World, esc_id: str) -> None:
    w.daemon.clock.advance(20 * 60)
    await w.daemon.settle()
    w.daemon.clock.advance(1)  # the reminder and the timeout raced: one is retried
    await w.daemon.settle()
    assert w.pagerduty.pages == []
    [timed_out] = [e.details for e in await w.daemon.store.timeline(esc_id)
                   if e.event == "approval_timed_out"]
    assert timed_out["fallback"] == "hold"
    assert await w.daemon.dead_jobs() == []


async def test_an_edit_never_downgrades_an_emergency_whose_smoc_was_asked(tmp_path: Path
                                                                         ) -> None:
    async with policy_world(tmp_path) as w:
        path = tmp_path / "policy.yaml"
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        await put_in_force(w, path, HALF)
        [change] = await policy_changes(w, row.id)
        assert (change["previous"], change["outcome"]) == ("emergency", "emergency")
        assert "downgrade to rfh refused" in change["reason"]
        assert await outcomes(w, row.id) == ["emergency"]
        w.daemon.clock.advance(20 * 60)
        await w.daemon.settle()
        w.daemon.clock.advance(1)
        await w.daemon.settle()
        assert len(w.pagerduty.pages) == 1  # the timings it was asked under still hold
