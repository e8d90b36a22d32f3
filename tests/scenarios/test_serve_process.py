"""`tier2gate serve` as an operator runs it: no settings, SQLite, health, clean SIGTERM."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.support_process import (
    clean_env,
    free_port,
    port_is_free,
    spawn,
    tier2gate,
    wait_http,
)

pytestmark = pytest.mark.slow


def test_serve_in_shadow_mode_with_no_other_settings_starts_on_sqlite_and_stops_cleanly(
        tmp_path: Path) -> None:
    # "No other settings" means port 8080; fall back to a free port only if 8080 is taken.
    # Live mode with nothing configured refuses to start (tests/scenarios/test_setup_checks.py);
    # shadow mode pages nobody, so it starts with warnings.
    env = clean_env(TIER2GATE_MODE="shadow")
    port = 8080
    if not port_is_free(port):
        port = free_port()
        env["TIER2GATE_HTTP__PORT"] = str(port)
    log = tmp_path / "serve.log"
    proc = spawn(tier2gate("serve"), tmp_path, env, log)
    try:
        status, body = wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        status, body = wait_http(f"http://127.0.0.1:{port}/readyz", proc, log)
        assert (status, json.loads(body)) == (200, {"status": "ready"})
        assert (tmp_path / "var" / "tier2gate.db").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert events[0] == "serve.starting"
    assert events[-2:] == ["store.closed", "serve.stopped"]


def test_a_second_serve_on_the_same_sqlite_file_is_refused(tmp_path: Path) -> None:
    first_port, second_port = free_port(), free_port()
    log = tmp_path / "serve.log"
    first = spawn(tier2gate("serve"), tmp_path,
                  clean_env(TIER2GATE_HTTP__PORT=str(first_port), TIER2GATE_MODE="shadow"), log)
    try:
        wait_http(f"http://127.0.0.1:{first_port}/readyz", first, log)
        second_log = tmp_path / "second.log"
        second = spawn(tier2gate("serve"), tmp_path,
                       clean_env(TIER2GATE_HTTP__PORT=str(second_port), TIER2GATE_MODE="shadow"),
                       second_log)
        assert second.wait(timeout=15) == 1
        assert "use PostgreSQL" in second_log.read_text()
    finally:
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=15) == 0


@pytest.mark.parametrize("role", ["web", "worker"])
def test_a_split_role_on_sqlite_is_refused_with_the_reason(tmp_path: Path, role: str) -> None:
    log = tmp_path / "serve.log"
    proc = spawn(tier2gate("serve", "--role", role), tmp_path,
                 clean_env(TIER2GATE_HTTP__PORT=str(free_port())), log)
    assert proc.wait(timeout=15) == 2
    said = log.read_text()
    assert f"serve --role {role} needs PostgreSQL" in said
    assert "--role all" in said
    assert not (tmp_path / "var").exists()  # refused before anything was created
