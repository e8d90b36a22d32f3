"""The team of each escalation in `/api/escalations` and on the dashboard, and the `team`
filter, over escalations that arrived as signed incident.io webhooks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.harness import running
from tests.ingress.test_dashboard import incident


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
