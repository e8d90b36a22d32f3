"""runbooks/backup-restore-upgrade.md on SQLite: its `sh test` blocks, run as written, back up
a store while `tier2gate serve` writes to it, restore into a fresh path, and the data is there."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from daemon.ingress.signatures import sign_pagerduty
from tests.docs_blocks import blocks, command_shim, run
from tests.harness import PD_SECRET, REPO, recent_pagerduty
from tests.support import IN_CI
from tests.support_process import clean_env, free_port, http_get, spawn, tier2gate, wait_http

pytestmark = pytest.mark.slow

RUNBOOK = REPO / "runbooks" / "backup-restore-upgrade.md"


def post_signed(port: int, sample: dict[str, object]) -> int:
    body = json.dumps(sample).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/pagerduty", data=body, method="POST",
        headers={"Content-Type": "application/json",
                 "X-PagerDuty-Signature": sign_pagerduty(body, PD_SECRET)})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        status: int = response.status
        return status


def test_the_runbook_backs_up_while_serving_and_restores_into_a_fresh_path(
        tmp_path: Path) -> None:
    if shutil.which("sqlite3") is None:
        message = "the sqlite3 shell is not installed (Debian package `sqlite3`)"
        if IN_CI:
            pytest.fail(message + "; .ci/run installs it")
        pytest.skip(message)
    db, backup, restored = (tmp_path / "live.db", tmp_path / "backup.db",
                            tmp_path / "restored.db")
    port = free_port()
    env = clean_env(TIER2GATE_DATABASE_URL=f"sqlite:///{db}", TIER2GATE_HTTP__PORT=str(port),
                    TIER2GATE_HTTP__HOST="127.0.0.1", TIER2GATE_MODE="shadow",
                    TIER2GATE_PAGERDUTY__WEBHOOK_SECRETS=PD_SECRET,
                    TIER2GATE_POLICY_FILE=str(REPO / "config" / "policy.yaml"))
    shell_env = {**env, "DB": str(db), "BACKUP": str(backup), "RESTORED": str(restored),
                 "PATH": f"{command_shim(tmp_path)}:{env['PATH']}",
                 "PYTHONPATH": str(REPO)}
    [backup_copy, backup_export, restore, restore_export] = blocks(RUNBOOK)

    log = tmp_path / "serve.log"
    proc = spawn(tier2gate("serve"), tmp_path, env, log)
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", proc, log)
        sample = recent_pagerduty("pagerduty/zulip_triggered_v3.json", at=time.time())
        assert post_signed(port, sample) == 202
        admin = f"http://127.0.0.1:{env['TIER2GATE_ADMIN__PORT']}/api/escalations?since=1d"
        deadline = time.monotonic() + 20
        while b'"esc-' not in http_get(admin)[1]:  # intake is a job: wait for the escalation
            assert time.monotonic() < deadline, "the delivery never became an escalation"
            time.sleep(0.1)
        for block in (backup_copy, backup_export):  # while serving
            done = run(block, tmp_path, shell_env)
            assert done.returncode == 0, f"{block.name}\n{done.stdout}{done.stderr}"
        assert "ok" in run(backup_copy, tmp_path, shell_env).stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0

    for block in (restore, restore_export):  # stopped
        done = run(block, tmp_path, shell_env)
        assert done.returncode == 0, f"{block.name}\n{done.stdout}{done.stderr}"
    report = json.loads((tmp_path / "restored-report.json").read_text())
    assert report["escalations"] == 1, report

    def export(url: str, name: str) -> list[str]:
        done = subprocess.run(tier2gate("export", name), cwd=tmp_path, capture_output=True,
                              text=True, env={**env, "TIER2GATE_DATABASE_URL": url},
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return sorted((tmp_path / name).read_text().splitlines())

    restored_rows = export(f"sqlite:///{restored}", "restored.jsonl")
    assert restored_rows == export(f"sqlite:///{restored}.from-export", "from-export.jsonl")
    event_id = json.dumps(sample["event"]["id"])
    assert any('"table": "escalations"' in row for row in restored_rows)
    assert any(event_id in row for row in restored_rows if '"table": "deliveries"' in row)
