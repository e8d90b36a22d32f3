"""Who declared an escalation, and who may approve it, end to end over real HTTP (issue 13,
"who decided, and who asked")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from daemon.sources.slack_ids import APPROVE_ACTION
from daemon.standins.slack import Message
from tests.harness import HARNESS_START, REPO, recent_pagerduty
from tests.scenarios.test_flow import escalation_form
from tests.world import BACKUP, CHANNEL, SMOC, World, button, emergency, incident, world

NOBODY_ON_CALL = {"oncalls": [], "limit": 25, "offset": 0, "more": False, "total": None}
"""PagerDuty's answer for a schedule with a gap: nobody is on call now."""


def top_level(w: World) -> list[Message]:
    return [m for (c, _ts), m in w.slack.messages.items() if c == CHANNEL and not m.thread_ts]


async def declare_in_slack(w: World, user: str) -> tuple[str, str]:
    """`user` declares an S1 emergency with `/tier2`: (escalation id, approval message ts)."""
    assert (await w.daemon.slack_command("Payments API returns 500s", user=user)).status == 200
    await w.daemon.settle()
    [view] = w.slack.views
    form = escalation_form(view, user, "Payments API returns 500s", "S1",
                           ["support_exhausted_knowledge"])
    assert (await w.daemon.slack_interaction(form)).status == 200
    await w.daemon.settle()
    [row] = await w.daemon.escalations()
    [message] = [m for m in top_level(w) if "tier2gate_approve" in str(m.blocks)]
    return row.id, message.ts


async def details(w: World, escalation_id: str, event: str) -> list[dict[str, Any]]:
    return [e.details for e in await w.daemon.store.timeline(escalation_id) if e.event == event]


def forbidding_policy(tmp_path: Path) -> str:
    """The shipped policy with `approval.forbid_self_approval: true`."""
    text = (REPO / "config" / "policy.yaml").read_text(encoding="utf-8")
    assert "  forbid_self_approval: false\n" in text
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace("  forbid_self_approval: false\n",
                                 "  forbid_self_approval: true\n"), encoding="utf-8")
    return str(path)


async def test_the_smoc_who_declares_with_tier2_and_approves_is_recorded_and_flagged(
        tmp_path: Path) -> None:
    """Seen: the SMOC declared an escalation with `/tier2` and approved it; nothing recorded
    who declared it."""
    async with world(tmp_path) as w:
        esc_id, ts = await declare_in_slack(w, SMOC)
        [received] = await details(w, esc_id, "received")
        assert received["declared_by"]["chat_id"] == SMOC
        [request] = [m for m in top_level(w) if m.ts == ts]
        assert f"*Declared by:* <@{SMOC}>" in str(request.blocks)

        await w.daemon.slack_interaction(button(esc_id, SMOC, APPROVE_ACTION, ts, "7.001"))
        await w.daemon.settle()
        assert len(w.pagerduty.pages) == 1  # the shipped policy allows it...
        [approved] = await details(w, esc_id, "approved")
        assert approved["self_approved"] is True  # ...and says so, on the timeline
        [flagged] = await details(w, esc_id, "self_approved")
        assert flagged["declared_by"]["chat_id"] == SMOC
        [request] = [m for m in top_level(w) if m.ts == ts]
        assert "self-approved" in str(request.blocks)  # and in the message
        api = await (await w.daemon.admin.get("/api/escalations")).json()
        [shown] = api["escalations"]
        assert shown["declared_by"] == f"{SMOC.lower()} ({SMOC})"  # name (chat id)
        assert shown["self_approved"] is True


async def test_a_policy_that_forbids_self_approval_refuses_the_declarer_and_lets_a_backup_decide(
        tmp_path: Path) -> None:
    async with world(tmp_path, policy_file=forbidding_policy(tmp_path)) as w:
        esc_id, ts = await declare_in_slack(w, SMOC)
        await w.daemon.slack_interaction(button(esc_id, SMOC, APPROVE_ACTION, ts, "7.001"))
        await w.daemon.settle()
        assert w.pagerduty.pages == []
        refusal = w.slack.ephemerals[-1].args
        assert refusal["user"] == SMOC
        assert "someone else to approve" in refusal["text"] and f"<@{BACKUP}>" in refusal["text"]
        [refused] = await details(w, esc_id, "approval_refused")
        assert refused["why"] == "self_approval_forbidden"

        await w.daemon.slack_interaction(button(esc_id, BACKUP, APPROVE_ACTION, ts, "8.001"))
        await w.daemon.settle()
        assert len(w.pagerduty.pages) == 1
        [approved] = await details(w, esc_id, "approved")
        assert "self_approved" not in approved


async def test_a_pagerduty_incident_remembers_who_triggered_it_not_who_acknowledged_it(
        tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        triggered = recent_pagerduty("pagerduty/zulip_triggered_v3.json")
        acknowledged = recent_pagerduty("pagerduty/zulip_triggered_v3.json", HARNESS_START + 60)
        acknowledged["event"].update(id="ev-ack", event_type="incident.acknowledged")
        acknowledged["event"]["agent"] = {"id": "PACKER", "type": "user_reference",
                                          "summary": "Someone Else"}
        for body in (triggered, acknowledged):
            assert (await w.daemon.pagerduty(body)).status == 202
            await w.daemon.settle()
        [row] = await w.daemon.escalations()
        declarer = row.data["escalation"]["declared_by"]
        assert declarer["name"] == triggered["event"]["agent"]["summary"]
        assert declarer["source_id"] == triggered["event"]["agent"]["id"]


async def test_an_on_call_gap_with_no_backups_says_nobody_can_approve_and_needs_attention(
        tmp_path: Path) -> None:
    """Seen: nobody could be resolved as an approver (an on-call gap, no backups), and the
    message said "backup approvers decide"."""
    async with world(tmp_path, approval={"backup_user_ids": []}) as w:
        w.pagerduty.set_oncalls_body(NOBODY_ON_CALL)
        with capture_logs() as logs:
            assert (await w.daemon.incident_io(incident())).status == 202
            await w.daemon.settle()
        [row] = await w.daemon.escalations()
        esc_id = row.id
        [ts] = [m.ts for m in top_level(w) if "tier2gate_approve" in str(m.blocks)]
        request = w.slack.messages[(CHANNEL, ts)]
        shown = str(request.blocks)
        assert "nobody can approve this request" in shown
        assert "backup approvers decide" not in shown.lower()
        assert "Needs attention" in shown  # the message was brought up to date
        [row] = await w.daemon.escalations()
        assert row.attention
        [logged] = [e for e in logs if e["event"] == "approval.nobody_can_approve"]
        assert logged["log_level"] == "error" and logged["escalation_id"] == esc_id
        [notice] = [m for m in top_level(w) if m.ts != ts]
        assert "Nobody can approve" in notice.text and esc_id in notice.text
        assert "pages Tier 2 after 20 minutes" in notice.text
        api = await (await w.daemon.admin.get("/api/escalations")).json()
        [stuck] = api["needs_attention"]
        assert stuck["id"] == esc_id and "Nobody can approve" in stuck["problems"][0]["reason"]

        # The timeout fallback still pages, and then nothing is stuck any more.
        for n in range(3):  # the reminder falls due too; a retry after a conflict waits 1 s
            w.daemon.clock.advance(20 * 60 if n == 0 else 1)
            await w.daemon.settle()
        assert len(w.pagerduty.pages) == 1
        [row] = await w.daemon.escalations()
        assert not row.attention


async def test_a_backup_is_never_labelled_smoc_when_the_smoc_is_not_resolved(
        tmp_path: Path) -> None:
    """Seen: with the SMOC unresolved, the first backup was shown as "(SMOC)"."""
    async with world(tmp_path) as w:
        w.pagerduty.set_oncalls_body(NOBODY_ON_CALL)
        esc_id, ts = await emergency(w)
        shown = str(w.slack.messages[(CHANNEL, ts)].blocks)
        assert "(SMOC)" not in shown
        assert f"no SMOC · backups <@{BACKUP}>" in shown
        assert "Backup approvers decide." in shown
        [row] = await w.daemon.escalations()
        assert not row.attention  # a backup can decide: nothing is stuck
        await w.daemon.slack_interaction(button(esc_id, BACKUP, APPROVE_ACTION, ts, "7.001"))
        await w.daemon.settle()
        assert len(w.pagerduty.pages) == 1
