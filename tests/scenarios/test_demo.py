"""`tier2gate demo --auto-approve` as a newcomer runs it, and the report over its database."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support_process import clean_env, free_port, tier2gate

pytestmark = pytest.mark.slow


def test_the_demo_story_runs_unattended_and_the_report_counts_it(tmp_path: Path) -> None:
    demo = subprocess.run(
        tier2gate("demo", "--auto-approve", "--port", str(free_port())), cwd=tmp_path,
        env=clean_env(), capture_output=True, text=True, timeout=90, check=False)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    narration = demo.stdout
    for line in ("A forged incident.io webhook was refused: HTTP 401",
                 "EMERGENCY per rule", "support_exhausted_knowledge",
                 "approval requested from the SMOC <@U0SMOC> of team default in Slack "
                 "C0APPROVALS", "REQUEST FOR HELP", "Tier 2 paged",
                 "INC-5002: offered to the Escalation Engineers on rotation (<@U0EEDEMO>)",
                 "INC-5002: taken by Escalation Engineer Eve Engineer, now its DRI.",
                 "INC-5002: resolved by the EE without Engineering.",
                 "approval requested from the SMOC <@U0PLATSMOC> of team platform in Slack "
                 "C0PLATFORM",
                 "Zendesk ticket #4242 belongs to team platform",
                 "retro issue opened",
                 "Zendesk ticket #4242: the trigger's signed delivery was accepted (HTTP 202)",
                 'ZD-4242: Zendesk declared "Payments API returns 500 for Initech"',
                 "Zendesk ticket #4242 got 2 internal note(s) (classified emergency, "
                 "approval requested)",
                 "Customer events: Friday's heads-up reached Tier 2 in Slack C0TIER2",
                 "customer event in progress: migration, move to the new payment provider",
                 "Summary: 2 approval request(s) in Slack, 1 page(s) in PagerDuty, "
                 "1 issue(s) in GitLab."):
        assert line in narration
    report = subprocess.run(
        tier2gate("report", "--format", "json"), cwd=tmp_path, capture_output=True, text=True,
        env=clean_env(TIER2GATE_DATABASE_URL="sqlite:///var/demo/tier2gate.db"), timeout=30,
        check=True)
    figures = json.loads(report.stdout)
    # INC-5001 (approved, paged, retro), INC-5002 (RFH), and the Zendesk ticket, still asking
    assert figures["escalations"] == 3
    assert figures["by_outcome"] == {"emergency": 2, "rfh": 1, "ignored": 0, "none": 0}
    funnel = {step["step"]: step["count"] for step in figures["funnel"]}
    assert funnel == {"received": 3, "emergency": 2, "approval_requested": 2, "approved": 1,
                      "declined": 0, "timed_out": 0, "paged": 1, "acknowledged": 1,
                      "retro_opened": 1}
    assert figures["emergencies_by_day"]["weekend"] == 2
    # Tina acknowledged the page: Saturday 02:00 UTC is Friday evening in her Los Angeles
    [tina] = figures["load"]["engineers"]
    assert (tina["name"], tina["time_zone"], tina["by_bucket"]) == (
        "Tina (Tier 2)", "America/Los_Angeles",
        {"business_hours": 0, "off_hours": 1, "sleep_hours": 0})
    assert figures["engineering"]["paged"] == 1
    ee = figures["escalation_engineers"]  # INC-5002 went to the EE and stayed there
    assert (ee["offered"], ee["resolved_without_engineering"], ee["reached_engineering"]) == (
        1, 1, 0)
    assert [g["key"] for g in ee["by_ee"]] == ["U0EEDEMO"]
    # The second team's figures apart: the Zendesk ticket is Platform Support's.
    assert {name: team["escalations"] for name, team in figures["teams"].items()} == {
        "default": 2, "platform": 1}
    assert figures["teams"]["platform"]["funnel"][2] == {"step": "approval_requested",
                                                         "count": 1}
