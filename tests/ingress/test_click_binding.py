"""A button click is honoured only when it comes from a message recorded for the escalation its
button names (or, after a crash, one that can be nothing else); anything else is refused,
audited on that escalation's timeline, and the clicker is told.

Seen: a click carrying escalation B's id on escalation A's message approved B and rewrote A's
message.
"""

from __future__ import annotations

from pathlib import Path

from daemon.demo.payloads import button_press
from daemon.sources.slack_ids import APPROVE_ACTION
from tests.world import CHANNEL, SMOC, World, button, decline_form, incident, world


async def two_escalations(w: World, *, b_posted: bool = True) -> tuple[str, str, str]:
    """A and B, both waiting for the SMOC: (A's id, A's message ts, B's id). Unless
    `b_posted`, B's request cannot be posted (Slack keeps failing) and it has no message."""
    assert (await w.daemon.incident_io(incident(incident_id="01ESCA"))).status == 202
    await w.daemon.settle()
    [ts_a] = [key[1] for key, m in w.slack.messages.items()
              if key[0] == CHANNEL and not m.thread_ts]
    if not b_posted:
        w.slack.fail_post_to(CHANNEL, "internal_error", times=1000)
    assert (await w.daemon.incident_io(incident(incident_id="01ESCB"))).status == 202
    await w.daemon.settle()
    rows = {row.external_id: row for row in await w.daemon.escalations()}
    assert (rows["01ESCB"].data["gate"]["approval"] is None) is not b_posted
    return rows["01ESCA"].id, ts_a, rows["01ESCB"].id


async def assert_refused(w: World, esc_a: str, ts_a: str, esc_b: str) -> None:
    await w.daemon.settle()
    rows = {row.id: row for row in await w.daemon.escalations()}
    assert rows[esc_b].state == "awaiting_approval"
    assert rows[esc_a].state == "awaiting_approval"
    assert w.pagerduty.pages == []
    assert w.slack.messages[(CHANNEL, ts_a)].updates == 0  # A's message is untouched
    assert "click_mismatch" in await w.daemon.events(esc_b)
    assert "approved" not in await w.daemon.events(esc_b)
    [told] = w.slack.calls_to("chat.postEphemeral")
    assert told.args["user"] == SMOC and told.args["channel"] == CHANNEL
    assert "do not belong to this message" in told.args["text"]


async def test_a_click_carrying_another_escalations_id_on_a_message_decides_nothing(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        esc_a, ts_a, esc_b = await two_escalations(w)
        await w.daemon.slack_interaction(button(esc_b, SMOC, APPROVE_ACTION, ts_a, "9.1"))
        await assert_refused(w, esc_a, ts_a, esc_b)
        [mismatch] = [e for e in await w.daemon.store.timeline(esc_b)
                      if e.event == "click_mismatch"]
        assert (mismatch.actor, mismatch.details) == (
            SMOC, {"verdict": "approved", "channel": CHANNEL, "ts": ts_a})


async def test_a_foreign_click_is_not_adopted_by_an_escalation_without_a_message(
    tmp_path: Path,
) -> None:
    """B's request was never recorded (the crash-recovery path): A's message is A's, so it
    cannot be B's lost post, and it is neither adopted nor rewritten."""
    async with world(tmp_path) as w:
        esc_a, ts_a, esc_b = await two_escalations(w, b_posted=False)
        await w.daemon.slack_interaction(button(esc_b, SMOC, APPROVE_ACTION, ts_a, "9.2"))
        await assert_refused(w, esc_a, ts_a, esc_b)
        [row_b] = [r for r in await w.daemon.escalations() if r.id == esc_b]
        assert row_b.data["gate"]["approval"] is None


async def test_a_decline_form_from_another_message_decides_nothing(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        esc_a, ts_a, esc_b = await two_escalations(w)
        await w.daemon.slack_interaction(decline_form(esc_b, SMOC, ts_a, "not ours"))
        await assert_refused(w, esc_a, ts_a, esc_b)


async def test_a_click_from_outside_the_approval_channel_is_not_adopted(tmp_path: Path
                                                                        ) -> None:
    async with world(tmp_path) as w:
        _esc_a, _ts_a, esc_b = await two_escalations(w, b_posted=False)
        elsewhere = button_press(esc_b, SMOC, "approve", "C0RANDOM", "1700000000.999900", "9.3")
        await w.daemon.slack_interaction(elsewhere)
        await w.daemon.settle()
        assert "click_mismatch" in await w.daemon.events(esc_b)
        assert w.pagerduty.pages == []


async def test_a_click_on_an_unrecorded_request_is_still_adopted_after_a_crash(
    tmp_path: Path,
) -> None:
    """The lost post: a message in the approval channel that no escalation records."""
    async with world(tmp_path) as w:
        _esc_a, _ts_a, esc_b = await two_escalations(w, b_posted=False)
        lost = "1700000000.777700"
        await w.daemon.slack_interaction(button(esc_b, SMOC, APPROVE_ACTION, lost, "9.4"))
        await w.daemon.settle()
        events = await w.daemon.events(esc_b)
        assert "approved" in events and "click_mismatch" not in events
        [row_b] = [r for r in await w.daemon.escalations() if r.id == esc_b]
        assert row_b.data["gate"]["approval"]["message_id"] == lost
        assert len(w.pagerduty.pages) == 1


async def test_clicks_on_its_own_message_still_decide(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        esc_a, ts_a, esc_b = await two_escalations(w)
        await w.daemon.slack_interaction(button(esc_a, SMOC, APPROVE_ACTION, ts_a, "9.5"))
        await w.daemon.settle()
        assert "approved" in await w.daemon.events(esc_a)
        assert "click_mismatch" not in await w.daemon.events(esc_a)
        assert "approved" not in await w.daemon.events(esc_b)
