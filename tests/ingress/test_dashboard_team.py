"""The team of each escalation in `/api/escalations` and on the dashboard, and the `team`
filter, over escalations that arrived as signed incident.io webhooks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.harness import REPO, base_settings, running
from tests.ingress.test_dashboard import incident, section


async def test_every_escalation_carries_its_team_and_the_list_narrows_to_one(
        tmp_path: Path) -> None:
    async with running(tmp_path) as harness:
        now = datetime.fromtimestamp(harness.clock.now(), UTC)
        body = incident("01RFH000000009", "Slow reports", "Minor", now - timedelta(minutes=5))
        assert (await harness.incident_io(body)).status == 202
        await harness.settle()
        (row,) = await harness.escalations()
        assert row.team == "default"

        listed = await (await harness.admin.get("/api/escalations")).json()
        (view,) = listed["escalations"]
        assert view["team"] == "default"
        classified = next(e for e in view["timeline"] if e["event"] == "classified")
        assert classified["details"]["team"] == "default"

        same = await (await harness.admin.get("/api/escalations?team=default")).json()
        assert [v["id"] for v in same["escalations"]] == [row.id]
        other = await (await harness.admin.get("/api/escalations?team=emea")).json()
        assert other["escalations"] == []

        html = await (await harness.admin.get("/")).text()
        assert "<dt>Team</dt><dd>default</dd>" in html

        bad = await harness.admin.get("/api/escalations?team=%3Cscript%3E")
        assert bad.status == 400
        assert "team must be a team name" in await bad.text()


async def test_the_dashboard_breaks_the_period_down_by_team_and_filters_by_one(
        tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text((REPO / "config" / "policy.yaml").read_text() + (
        "teams:\n  - name: emea\n    recognised_by:\n"
        "      fields: {\"Tier 1 team\": [EMEA]}\n"))
    async with running(tmp_path, base_settings(policy_file=str(policy))) as harness:
        now = datetime.fromtimestamp(harness.clock.now(), UTC)
        for incident_id, fields in (("01EMEA00000001", {"Tier 1 team": "EMEA"}),
                                    ("01EMEA00000002", {"Tier 1 team": "EMEA"}),
                                    ("01OTHER0000003", {})):
            body = incident(incident_id, "Slow reports", "Minor", now - timedelta(minutes=5),
                            fields)
            assert (await harness.incident_io(body)).status == 202
        await harness.settle()
        html = await (await harness.admin.get("/?team=emea")).text()
        teams = section(html, "teams")
        assert re.search(r'team=emea#escalations">emea</a></td><td>2</td>', teams)
        assert re.search(r'team=default#escalations">default</a></td><td>1</td>', teams)
        listed = section(html, "escalations")
        assert listed.count('<article class="esc"') == 2
        assert '<option value="emea" selected>' in listed
        api = await (await harness.admin.get("/api/escalations")).json()
        assert {name: t["escalations"] for name, t in api["report"]["teams"].items()} == {
            "default": 1, "emea": 2}
