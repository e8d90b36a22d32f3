"""The EE roster in `check-config` and `doctor`: a broken roster names its line and key, and
doctor checks that someone is on rotation and that every EE is an active Slack user."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from daemon.cli import main
from tests.ee_support import EE_CHANNEL, engineer, policy_with_ee, roster_file, rotation
from tests.scenarios.test_doctor import Vendors
from tests.scenarios.test_doctor import vendors as vendors  # the shared fixture, by name

EE1, EE2 = "UEE0ADA", "UEE0GRACE"


def day(offset: int) -> str:
    """A UTC date relative to today: doctor reads the real clock."""
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


def with_roster(v: Vendors, path: Path) -> None:
    config = yaml.safe_load(v.config.read_text())
    config["ee"] = {"roster_file": str(path), "channel": EE_CHANNEL}
    v.config.write_text(yaml.safe_dump(config))


async def doctor_checks(capsys: pytest.CaptureFixture[str]
                        ) -> tuple[int, dict[str, dict[str, str]]]:
    code = await asyncio.to_thread(main, ["doctor", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    return code, {check["name"]: check for check in report["checks"]}


async def test_doctor_names_the_ees_on_rotation_and_refuses_a_deactivated_one(
        vendors: Vendors, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    vendors.slack.users_by_email.update({"ada@example.com": EE1, "grace@example.com": EE2})
    path = roster_file(tmp_path / "ee-roster.yaml", [
        rotation(day(-3), day(10), engineer(EE1, "Ada Lovelace"), engineer(EE2, "Grace Hopper"))],
        "00:00")
    with_roster(vendors, path)
    code, checks = await doctor_checks(capsys)
    assert checks["ee_roster"]["status"] == "ok", checks["ee_roster"]
    assert f"rotation {day(-3)}..{day(10)}: Ada Lovelace ({EE1}), Grace Hopper ({EE2})" \
        == checks["ee_roster"]["reason"]
    assert code == 0

    vendors.slack.deactivated.add(EE2)
    code, checks = await doctor_checks(capsys)
    assert code == 1
    assert checks["ee_roster"]["status"] == "fail"
    assert f"not active Slack users: {EE2}" in checks["ee_roster"]["reason"]


def test_check_config_refuses_a_broken_roster_naming_line_and_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIER2GATE_MODE", "shadow")
    path = roster_file(tmp_path / "ee-roster.yaml", [
        rotation("2026-11-16", "2026-11-29", engineer(EE1, "Ada Lovelace"))])
    monkeypatch.setenv("TIER2GATE_EE__ROSTER_FILE", str(path))
    assert main(["check-config"]) == 0
    out = capsys.readouterr()
    assert "# EE roster" in out.out and f"Ada Lovelace ({EE1})" in out.out
    assert "no channel takes the EE offers" in out.err  # a warning: offers would go nowhere

    path.write_text(path.read_text().replace(EE1, "ada"))
    assert main(["check-config"]) == 1
    err = capsys.readouterr().err
    line = path.read_text().splitlines().index("    slack_user_id: ada") + 1
    assert f"invalid EE roster:\n{path}:{line}: rotations[0].engineers[0].slack_user_id" in err


def test_check_config_warns_of_a_roster_that_no_policy_rule_offers_to(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A policy copied before the EE step (no rule with `ee:`) beside a new roster: nothing
    would ever be offered to the EEs, and check-config says so."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIER2GATE_MODE", "shadow")
    monkeypatch.setenv("TIER2GATE_SLACK__APPROVAL_CHANNEL", "C0APPROVALS")
    roster = roster_file(tmp_path / "ee-roster.yaml", [
        rotation("2026-11-16", "2026-11-29", engineer(EE1, "Ada Lovelace"))])
    monkeypatch.setenv("TIER2GATE_EE__ROSTER_FILE", str(roster))
    policy = policy_with_ee(tmp_path / "policy.yaml", emergency_wait_minutes=None)
    monkeypatch.setenv("TIER2GATE_POLICY_FILE", str(policy))
    assert main(["check-config"]) == 0
    assert "no rule of the policy" not in capsys.readouterr().err
    text = policy.read_text(encoding="utf-8")
    policy.write_text(text.replace("  ee: {}\n", ""), encoding="utf-8")
    assert "ee:" not in policy.read_text(encoding="utf-8")
    assert main(["check-config"]) == 0
    err = capsys.readouterr().err
    assert "warning: ee.roster_file is set but no rule of the policy" in err
