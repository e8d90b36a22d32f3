"""`tier2gate doctor` checks what each Tier 1 team of the policy names of its own: its channels
(the bot must be a member) and the SMOC on call on its schedule, against the stand-ins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness import REPO
from tests.scenarios.test_doctor import Vendors, doctor, vendors

__all__ = ["vendors"]  # the fixture, shared with the doctor's own tests

EMEA_SCHEDULE, EMEA_CHANNEL = "PSMOCEM", "C0EMEA"


@pytest.fixture
def teams(vendors: Vendors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Vendors:
    policy = tmp_path / "policy.yaml"
    policy.write_text((REPO / "config" / "policy.yaml").read_text() + (
        f"teams:\n  - name: emea\n    recognised_by:\n      fields: {{\"Tier 1 team\": EMEA}}\n"
        f"    smoc_schedule_id: {EMEA_SCHEDULE}\n    approval_channel: {EMEA_CHANNEL}\n"))
    monkeypatch.setenv("TIER2GATE_POLICY_FILE", str(policy))
    vendors.pagerduty.set_oncall(EMEA_SCHEDULE, "PEMEA", "emea-smoc@acme.example")
    vendors.slack.users_by_email["emea-smoc@acme.example"] = "U0EMEASMOC"
    return vendors


async def test_a_teams_channel_and_schedule_are_checked(
        teams: Vendors, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = await doctor(capsys, "--format", "json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code == 0, out
    assert checks["team_emea_approval_channel"]["status"] == "ok"
    assert "U0EMEASMOC" in checks["team_emea_smoc"]["reason"]

    teams.slack.refuse(EMEA_CHANNEL, "not_in_channel")
    code, out = await doctor(capsys, "--format", "json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code == 1
    assert checks["approval_channel"]["status"] == "ok"  # the settings' channel is fine
    failed = checks["team_emea_approval_channel"]
    assert failed["status"] == "fail" and "team 'emea' approval_channel" in failed["fix"]

    teams.pagerduty.set_oncalls_body({"oncalls": [], "limit": 25, "offset": 0, "more": False})
    code, out = await doctor(capsys, "--format", "json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert checks["team_emea_smoc"]["status"] == "fail"
    assert "team 'emea'" in checks["team_emea_smoc"]["reason"]
