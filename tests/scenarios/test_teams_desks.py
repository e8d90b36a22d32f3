"""Support desk tickets recognise their Tier 1 team like the other sources: a Zendesk ticket
by its group or brand, a JSM request by its project or its request type (a field named in
`jsm.field_names`), over the signed desk webhooks, and the team's own SMOC is asked."""

from __future__ import annotations

from pathlib import Path

from daemon.standins.desks import FakeJsm, FakeZendesk
from tests.harness import REPO, running
from tests.scenarios.test_desk_flow import (
    desks,
    jsm_issue,
    post_jira,
    post_zendesk,
    zendesk_ticket,
)

TEAMS = """
teams:
  - name: platform
    recognised_by:
      desk_groups: ["Platform Support"]
    smoc_user_id: U0PLATSMOC
    approval_channel: C0PLATFORM
  - name: brands
    recognised_by:
      desk_brands: ["Globex"]
      jsm_projects: [GX]
    smoc_user_id: U0GLOBEXSMOC
    approval_channel: C0GLOBEX
  - name: outages
    recognised_by:
      fields: {"Request type": ["Report an outage"]}
    smoc_user_id: U0OUTAGESMOC
    approval_channel: C0OUTAGES
"""


async def test_desk_tickets_recognise_their_team(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text((REPO / "config" / "policy.yaml").read_text() + TEAMS)
    async with desks(tmp_path) as w:
        assert isinstance(w.zendesk, FakeZendesk) and isinstance(w.jsm, FakeJsm)
        settings = w.settings.model_copy(update={
            "policy_file": policy,
            "jsm": w.settings.jsm.model_copy(update={"field_names": {
                **w.settings.jsm.field_names, "customfield_10010": "Request type"}})})
        for ticket in ("4242", "4243"):
            w.zendesk.add_ticket(ticket)
        for key in ("GX-1", "SD-9", "SD-10"):
            w.jsm.add_ticket(key)
        async with running(tmp_path, settings) as d:
            by_group = zendesk_ticket("4242")  # group Platform Support, brand Acme
            by_brand = {**zendesk_ticket("4243"), "group": "Billing", "brand": "Globex"}
            for n, body in enumerate((by_group, by_brand)):
                assert (await post_zendesk(d, w.zendesk, body, f"inv-{n}")).status == 202
            by_project = jsm_issue(d.clock.now(), key="GX-1")
            by_project["issue"]["fields"]["project"] = {"key": "GX"}
            by_type = jsm_issue(d.clock.now(), key="SD-9")
            by_type["issue"]["fields"]["customfield_10010"] = {
                "_links": {}, "requestType": {"id": "17", "name": "Report an outage"},
                "currentStatus": {"status": "Waiting for support"}}
            nothing = jsm_issue(d.clock.now(), key="SD-10")
            for n, payload in enumerate((by_project, by_type, nothing)):
                assert (await post_jira(d, w.jsm, payload, f"wh-{n}")).status == 202
            await d.settle()
            rows = {row.external_id: row for row in await d.escalations()}
            assert {key: row.team for key, row in rows.items()} == {
                "4242": "platform", "4243": "brands", "GX-1": "brands", "SD-9": "outages",
                "SD-10": "default"}
            asked = sorted((m.channel, next(u for u in ("U0PLATSMOC", "U0GLOBEXSMOC",
                                                         "U0OUTAGESMOC", "USMOC")
                                            if f"<@{u}>" in str(m.blocks)))
                           for m in w.slack.messages.values()
                           if "tier2gate_approve" in str(m.blocks))
            assert asked == [("C0APPROVALS", "USMOC"), ("C0GLOBEX", "U0GLOBEXSMOC"),
                             ("C0GLOBEX", "U0GLOBEXSMOC"), ("C0OUTAGES", "U0OUTAGESMOC"),
                             ("C0PLATFORM", "U0PLATSMOC")]


async def test_a_tag_or_label_cannot_pose_as_the_group_brand_or_project(tmp_path: Path
                                                                         ) -> None:
    """A Zendesk tag `brand:globex` or a Jira label `project:GX` is text anyone editing the
    ticket types, not where the ticket is: it must not send the request to another team's
    approver. The group, brand and project come from the ticket's own fields alone."""
    policy = tmp_path / "policy.yaml"
    policy.write_text((REPO / "config" / "policy.yaml").read_text() + TEAMS)
    async with desks(tmp_path) as w:
        assert isinstance(w.zendesk, FakeZendesk) and isinstance(w.jsm, FakeJsm)
        settings = w.settings.model_copy(update={"policy_file": policy})
        w.zendesk.add_ticket("4244")
        w.jsm.add_ticket("SD-11")
        async with running(tmp_path, settings) as d:
            posing = {**zendesk_ticket("4244"), "group": "Billing", "brand": "Acme",
                      "tags": "tier2 brand:globex group:platform_support"}
            assert (await post_zendesk(d, w.zendesk, posing, "inv-pose")).status == 202
            labelled = jsm_issue(d.clock.now(), key="SD-11")
            labelled["issue"]["fields"]["labels"] = ["tier2", "project:GX"]
            assert (await post_jira(d, w.jsm, labelled, "wh-pose")).status == 202
            await d.settle()
            rows = {row.external_id: row for row in await d.escalations()}
            assert {key: row.team for key, row in rows.items()} == {
                "4244": "default", "SD-11": "default"}
            asked = {m.channel for m in w.slack.messages.values()
                     if "tier2gate_approve" in str(m.blocks)}
            assert asked == {"C0APPROVALS"}
