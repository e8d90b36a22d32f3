"""Tier 1 teams end to end over HTTP against the stand-ins: each team's emergency asks its own
Support Manager on Call (its own PagerDuty schedule, Slack user and approval channel), only
that team's approvers may decide, and an escalation no team recognises goes to the settings'
SMOC as before."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from daemon.demo.payloads import button_press
from daemon.sources.slack_ids import APPROVE_ACTION
from tests.harness import REPO, recent_pagerduty
from tests.scenarios.test_flow import escalation_form
from tests.scenarios.test_policy_edits import SETTLE_S, SHIPPED, edit, put_in_force
from tests.world import CHANNEL, SMOC, World, deliver, incident, world

EMEA_CHANNEL, AMER_CHANNEL, AMER_RFH = "C0EMEAAPPR", "C0AMERAPPR", "C0AMERRFH"
EMEA_SCHEDULE, AMER_SCHEDULE = "PSMOCEM", "PSMOCAM"
EMEA_SMOC, AMER_SMOC, EMEA_BACKUP = "UEMEASMOC", "UAMERSMOC", "UEMEABACKUP"
AMER_SERVICE = "PAMERSVC"

TEAMS = f"""
teams:
  - name: emea
    recognised_by:
      fields: {{"Tier 1 team": [EMEA, Europe]}}
    smoc_schedule_id: {EMEA_SCHEDULE}
    backup_user_ids: [{EMEA_BACKUP}]
    approval_channel: {EMEA_CHANNEL}
  - name: amer
    recognised_by:
      fields: {{"Tier 1 team": [AMER]}}
      pagerduty_services: [{AMER_SERVICE}]
    smoc_schedule_id: {AMER_SCHEDULE}
    backup_user_ids: []
    approval_channel: {AMER_CHANNEL}
    rfh_channel: {AMER_RFH}
"""


def teams_policy(tmp_path: Path, extra: str = TEAMS) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text((REPO / "config" / "policy.yaml").read_text() + extra)
    return str(path)


def with_team(body: dict[str, Any], team: str, incident_id: str) -> dict[str, Any]:
    """The S1 of `tests.world.incident` with its "Tier 1 team" custom field set."""
    body = copy.deepcopy(body)
    inner = body[body["event_type"]]
    inner["id"] = incident_id
    entry = copy.deepcopy(inner["custom_field_entries"][0])
    entry["custom_field"].update(id="01TEAMF", name="Tier 1 team")
    entry["values"] = [{"value_option": {"id": "01TEAMO", "value": team,
                                         "custom_field_id": "01TEAMF", "sort_key": 1}}]
    inner["custom_field_entries"].append(entry)
    return body


def request_in(w: World, channel: str) -> tuple[str, str]:
    """The (ts, text) of the one approval request posted in `channel`."""
    [(ts, text)] = [(m.ts, str(m.blocks) + m.text) for (ch, _ts), m in w.slack.messages.items()
                    if ch == channel and not m.thread_ts]
    return ts, text


def oncall_schedules(w: World) -> list[str]:
    return [value for r in w.pagerduty.requests if r.path == "/oncalls"
            for key, value in r.query if key == "schedule_ids[]"]


async def test_each_teams_emergency_asks_its_own_manager_on_call(tmp_path: Path) -> None:
    async with world(tmp_path, policy_file=teams_policy(tmp_path)) as w:
        for schedule, user, email in ((EMEA_SCHEDULE, EMEA_SMOC, "emea-smoc@example.com"),
                                      (AMER_SCHEDULE, AMER_SMOC, "amer-smoc@example.com")):
            w.pagerduty.set_oncall(schedule, f"P{user}", email)
            w.slack.users_by_email[email] = user
        await deliver(w, with_team(incident(), "EMEA", "01EMEA"))
        await deliver(w, with_team(incident(), "amer", "01AMER"))  # case does not matter
        await deliver(w, incident(incident_id="01NOTEAM"))

        rows = {row.external_id: row for row in await w.daemon.escalations()}
        assert {k: (r.team, r.state) for k, r in rows.items()} == {
            "01EMEA": ("emea", "awaiting_approval"), "01AMER": ("amer", "awaiting_approval"),
            "01NOTEAM": ("default", "awaiting_approval")}
        _emea_ts, emea_text = request_in(w, EMEA_CHANNEL)
        amer_ts, amer_text = request_in(w, AMER_CHANNEL)
        _ts, default_text = request_in(w, CHANNEL)
        assert f"<@{EMEA_SMOC}>" in emea_text and f"<@{EMEA_BACKUP}>" in emea_text
        assert "team *emea*" in emea_text and "team *" not in default_text
        assert f"<@{AMER_SMOC}>" in amer_text and EMEA_SMOC not in amer_text
        assert f"<@{SMOC}>" in default_text and EMEA_SMOC not in default_text
        # Each team's schedule was asked in PagerDuty, and the settings' for the rest.
        assert set(oncall_schedules(w)) == {EMEA_SCHEDULE, AMER_SCHEDULE, "PSMOC01"}

        # The other team's manager may not decide; the team's own may.
        amer = rows["01AMER"]
        click = button_press(amer.id, EMEA_SMOC, "approve", AMER_CHANNEL, amer_ts, "9.001")
        assert (await w.daemon.slack_interaction(click)).status == 200
        await w.daemon.settle()
        assert w.pagerduty.pages == []
        assert "approval_refused" in await w.daemon.events(amer.id)
        click = button_press(amer.id, AMER_SMOC, "approve", AMER_CHANNEL, amer_ts, "9.002")
        assert (await w.daemon.slack_interaction(click)).status == 200
        await w.daemon.settle()
        assert len(w.pagerduty.pages) == 1
        timeline = await w.daemon.store.timeline(amer.id)
        requested = next(e for e in timeline if e.event == "approval_requested")
        assert requested.details["team"] == "amer"
        assert requested.details["to"] == [AMER_SMOC]
        assert [e.actor for e in timeline if e.event == "approved"] == [AMER_SMOC]

        listed = await (await w.daemon.admin.get("/api/escalations?team=emea")).json()
        assert [v["external_id"] for v in listed["escalations"]] == ["01EMEA"]
        assert APPROVE_ACTION in emea_text  # still waiting for EMEA's decision


async def test_a_teams_channel_that_refuses_the_bot_sends_the_request_to_its_approvers(
        tmp_path: Path) -> None:
    async with world(tmp_path, policy_file=teams_policy(tmp_path)) as w:
        w.pagerduty.set_oncall(EMEA_SCHEDULE, "PEMEA", "emea-smoc@example.com")
        w.slack.users_by_email["emea-smoc@example.com"] = EMEA_SMOC
        w.slack.refuse(EMEA_CHANNEL, "not_in_channel")
        await deliver(w, with_team(incident(), "Europe", "01EMEA"))
        [row] = await w.daemon.escalations()
        assert (row.team, row.state, row.attention) == ("emea", "awaiting_approval", True)
        direct = {m.channel for m in w.slack.messages.values() if "tier2gate_approve" in
                  str(m.blocks)}
        assert direct == {w.slack.dm_channel(EMEA_SMOC), w.slack.dm_channel(EMEA_BACKUP)}
        listed = await (await w.daemon.admin.get("/api/escalations")).json()
        [problem] = listed["needs_attention"][0]["problems"]
        assert "team 'emea' approval_channel in the policy" in problem["reason"]


async def test_a_pagerduty_service_recognises_its_team_and_its_rfh_goes_to_its_channel(
        tmp_path: Path) -> None:
    async with world(tmp_path, policy_file=teams_policy(tmp_path)) as w:
        sample = recent_pagerduty("pagerduty/zulip_triggered_v3.json")
        sample["event"]["data"]["service"]["id"] = AMER_SERVICE
        assert (await w.daemon.pagerduty(sample)).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        assert (row.team, row.state) == ("amer", "rfh")
        notices = [m for m in w.slack.messages.values() if "Request for help" in m.text]
        assert [m.channel for m in notices] == [AMER_RFH]


EMEA_SUPPORT = "C0EMEASUP"
WHO_TEAMS = TEAMS.replace("      fields: {\"Tier 1 team\": [EMEA, Europe]}\n",
                          "      fields: {\"Tier 1 team\": [EMEA, Europe]}\n"
                          f"      slack_channels: [{EMEA_SUPPORT}]\n")


async def test_tier2_who_names_the_teams_approver_backups_and_tier2_on_call(
        tmp_path: Path) -> None:
    async with world(tmp_path, policy_file=teams_policy(tmp_path, WHO_TEAMS),
                     pagerduty={"tier2_schedule_id": "PTIER2S"}) as w:
        w.pagerduty.set_oncall(EMEA_SCHEDULE, "PEMEA", "emea-smoc@example.com")
        w.slack.users_by_email["emea-smoc@example.com"] = EMEA_SMOC
        w.pagerduty.set_oncall("PTIER2S", "PTINA", "tina@example.com")
        w.slack.users_by_email["tina@example.com"] = "UTINA"

        # Anyone in Support, in their team's channel: an answer only they see.
        assert (await w.daemon.slack_command("who", user="UNEWHIRE",
                                             channel=EMEA_SUPPORT)).status == 200
        await w.daemon.settle()
        [answer] = [c.args for c in w.slack.ephemerals]
        assert (answer["channel"], answer["user"]) == (EMEA_SUPPORT, "UNEWHIRE")
        assert "(team emea)" in answer["text"]
        assert f"Approver (Support Manager on Call): <@{EMEA_SMOC}>" in answer["text"]
        assert f"Backup approvers: <@{EMEA_BACKUP}>" in answer["text"]
        assert "Tier 2 on call: <@UTINA>" in answer["text"]
        assert w.slack.views == []  # no form opened

        # Elsewhere: the default team's, as configured in the settings.
        await w.daemon.slack_command(" WHO ", user="UNEWHIRE", channel="C0RANDOM")
        await w.daemon.settle()
        text = w.slack.ephemerals[-1].args["text"]
        assert "(team default)" in text and f"<@{SMOC}>" in text and EMEA_SMOC not in text

        # A channel the bot may not post in: a direct message instead.
        w.slack.refuse("C0PRIVATE")
        await w.daemon.slack_command("who", user="UNEWHIRE", channel="C0PRIVATE")
        await w.daemon.settle()
        [direct] = [m for m in w.slack.messages.values()
                    if m.channel == w.slack.dm_channel("UNEWHIRE")]
        assert "Who is on call now" in direct.text


async def test_a_form_opened_in_a_teams_channel_belongs_to_that_team(tmp_path: Path) -> None:
    async with world(tmp_path, policy_file=teams_policy(tmp_path, WHO_TEAMS)) as w:
        w.pagerduty.set_oncall(EMEA_SCHEDULE, "PEMEA", "emea-smoc@example.com")
        w.slack.users_by_email["emea-smoc@example.com"] = EMEA_SMOC
        await w.daemon.slack_command("Payments API returns 500s", channel=EMEA_SUPPORT)
        await w.daemon.settle()
        [view] = w.slack.views
        form = escalation_form(view, "USUPPORT", "Payments API returns 500s", "S1",
                               ["support_exhausted_knowledge"])
        assert (await w.daemon.slack_interaction(form)).status == 200
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        assert (row.source, row.team, row.state) == ("slack", "emea", "awaiting_approval")
        _ts, text = request_in(w, EMEA_CHANNEL)
        assert f"<@{EMEA_SMOC}>" in text


async def test_a_team_added_to_the_policy_takes_its_open_escalations_but_not_asked_ones(
        tmp_path: Path) -> None:
    """A policy edit that adds teams judges the open escalations again: a request for help
    moves to the team that now recognises it (`team_changed`); an emergency whose SMOC was
    asked stays with the team that was asked."""
    path = tmp_path / "policy.yaml"
    edit(path, SHIPPED)
    async with world(tmp_path, policy_file=str(path), policy_settle_s=SETTLE_S,
                     clock={"check_interval_s": 0.02}) as w:
        await deliver(w, with_team(incident(severity="SEV3"), "EMEA", "01RFH"))
        await deliver(w, with_team(incident(), "EMEA", "01ASKED"))
        rows = {row.external_id: row for row in await w.daemon.escalations()}
        assert {k: (r.team, r.state) for k, r in rows.items()} == {
            "01RFH": ("default", "rfh"), "01ASKED": ("default", "awaiting_approval")}
        await put_in_force(w, path, SHIPPED + TEAMS)
        rows = {row.external_id: row for row in await w.daemon.escalations()}
        assert (rows["01RFH"].team, rows["01ASKED"].team) == ("emea", "default")
        moved = [e.details for e in await w.daemon.store.timeline(rows["01RFH"].id)
                 if e.event == "team_changed"]
        assert moved == [{"from": "default", "to": "emea"}]
        assert "team_changed" not in await w.daemon.events(rows["01ASKED"].id)


async def test_a_team_nobody_can_approve_for_is_told_in_its_own_channel(
        tmp_path: Path) -> None:
    """An on-call gap in a team's schedule and no backups: its emergency still asks, says
    nobody can approve, needs attention, and the team's channel hears what the timeout does."""
    async with world(tmp_path, policy_file=teams_policy(tmp_path)) as w:
        await deliver(w, with_team(incident(), "AMER", "01AMER"))  # nobody on PSMOCAM
        [row] = await w.daemon.escalations()
        assert (row.team, row.state, row.attention) == ("amer", "awaiting_approval", True)
        notices = [m.text for m in w.slack.messages.values()
                   if m.channel == AMER_CHANNEL and "Nobody can approve" in m.text]
        assert len(notices) == 1 and "pages Tier 2 after 20 minutes" in notices[0]
        assert not any("Nobody can approve" in m.text for m in w.slack.messages.values()
                       if m.channel == CHANNEL)
        for _ in range(2):  # the reminder, then the timeout
            w.daemon.clock.advance(10 * 60)
            await w.daemon.settle()
        assert (await w.daemon.events(row.id))[-2:] == ["approval_timed_out", "paged"], \
            await w.daemon.events(row.id)
        assert len(w.pagerduty.pages) == 1  # the timeout fallback, as the notice said


DEDICATED_CHANNEL, DEDICATED_SMOC, SUPPORT_MANAGERS = "C0DEDAPPR", "UDEDSMOC", "S0SUPMGRS"


async def test_a_team_that_names_its_backups_leaves_out_the_settings_group(tmp_path: Path) -> None:
    """Dedicated approves its own pages: `backup_user_ids: []` says "no backups" (a team that
    names its backups replaces the settings' users and group alike, as its SMOC replaces the
    settings' schedule and user), so the settings' group of Support managers may not decide
    for it."""
    dedicated = TEAMS + f"""\
  - name: dedicated
    recognised_by:
      fields: {{"Tier 1 team": [Dedicated]}}
    smoc_user_id: {DEDICATED_SMOC}
    backup_user_ids: []
    approval_channel: {DEDICATED_CHANNEL}
"""
    async with world(tmp_path, policy_file=teams_policy(tmp_path, dedicated),
                     approval={"backup_group_id": SUPPORT_MANAGERS}) as w:
        w.slack.groups[SUPPORT_MANAGERS] = ("USUPMGR",)
        await deliver(w, with_team(incident(), "Dedicated", "01DED"))
        [row] = await w.daemon.escalations()
        assert (row.team, row.state) == ("dedicated", "awaiting_approval")
        ts, text = request_in(w, DEDICATED_CHANNEL)
        assert f"<@{DEDICATED_SMOC}>" in text and "USUPMGR" not in text
        click = button_press(row.id, "USUPMGR", "approve", DEDICATED_CHANNEL, ts, "9.001")
        assert (await w.daemon.slack_interaction(click)).status == 200
        await w.daemon.settle()
        assert w.pagerduty.pages == []
        assert "approval_refused" in await w.daemon.events(row.id)
