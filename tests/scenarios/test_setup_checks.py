"""`serve` refuses what `check-config` refuses: a live daemon that could not work must not
answer /readyz 200 and wait for the first emergency to find out."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support_process import clean_env, free_port, tier2gate

pytestmark = pytest.mark.slow


def test_serve_in_live_mode_with_nothing_configured_refuses_naming_what_is_missing(
        tmp_path: Path) -> None:
    done = subprocess.run(tier2gate("serve"), cwd=tmp_path, capture_output=True, text=True,
                          env=clean_env(TIER2GATE_HTTP__PORT=str(free_port())), timeout=30,
                          check=False)
    assert done.returncode == 1
    [line] = [json.loads(text) for text in done.stdout.splitlines() if text.startswith("{")]
    assert (line["event"], line["level"], line["mode"]) == (
        "serve.config_incomplete", "error", "live")
    assert [problem.split(":")[0] for problem in line["problems"]] == [
        "live mode has no webhook source", "live mode cannot ask the SMOC in Slack",
        "live mode has no way to page Tier 2"]
    assert not (tmp_path / "var").exists()  # refused before opening (creating) the store


def test_serve_refuses_a_malformed_incident_io_secret_in_any_mode(tmp_path: Path) -> None:
    env = clean_env(TIER2GATE_HTTP__PORT=str(free_port()), TIER2GATE_MODE="shadow",
                    TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET="whsec_not base64!")
    done = subprocess.run(tier2gate("serve"), cwd=tmp_path, capture_output=True, text=True,
                          env=env, timeout=30, check=False)
    assert done.returncode == 1
    assert "TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET is not valid base64" in done.stdout
    assert "not base64!" not in done.stdout + done.stderr
