"""`tier2gate serve` with its two listeners as an operator runs it: the read side only on the
admin listener, a token off loopback, the startup line saying which, idle sockets closed."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support_process import clean_env, free_port, http_get, spawn, tier2gate, wait_http

pytestmark = pytest.mark.slow

TOKEN = "serve-admin-token-RECOGNISABLE-42"


def get_with(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - a local test URL
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        status: int = response.status
        return status


def test_serve_keeps_the_read_side_off_the_public_listener_and_behind_a_token(
        tmp_path: Path) -> None:
    public, admin = free_port(), free_port()
    env = clean_env(TIER2GATE_HTTP__HOST="127.0.0.1", TIER2GATE_HTTP__PORT=str(public),
                    TIER2GATE_ADMIN__HOST="0.0.0.0", TIER2GATE_ADMIN__PORT=str(admin),
                    TIER2GATE_ADMIN__TOKEN=TOKEN, TIER2GATE_HTTP__IDLE_TIMEOUT_S="1",
                    TIER2GATE_MODE="shadow")  # no vendors configured: live mode would refuse
    log = tmp_path / "serve.log"
    proc = spawn(tier2gate("serve"), tmp_path, env, log)
    try:
        assert wait_http(f"http://127.0.0.1:{public}/readyz", proc, log) == (
            200, b'{"status": "ready"}')
        for path in ("/", "/api/escalations", "/metrics"):
            assert http_get(f"http://127.0.0.1:{public}{path}")[0] == 404, path
            assert http_get(f"http://127.0.0.1:{admin}{path}")[0] == 401, path
            assert get_with(f"http://127.0.0.1:{admin}{path}",
                            {"Authorization": f"Bearer {TOKEN}"}) == 200, path

        for port in (public, admin):  # an idle socket is closed by the server, not kept
            with socket.create_connection(("127.0.0.1", port), timeout=5) as idle:
                started = time.monotonic()
                assert idle.recv(1) == b""
                assert time.monotonic() - started < 4
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert TOKEN not in text
    [listening] = [json.loads(line) for line in text.splitlines()
                   if '"serve.listening"' in line]
    assert listening["public"] == f"http://127.0.0.1:{public}"
    assert listening["admin"] == f"http://0.0.0.0:{admin}"
    assert listening["admin_access"] == "Authorization: Bearer <admin.token>"


def test_serve_refuses_to_start_when_the_admin_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = tmp_path / "serve.log"
        proc = spawn(tier2gate("serve"), tmp_path, clean_env(
            TIER2GATE_HTTP__PORT=str(free_port()), TIER2GATE_ADMIN__PORT=str(port),
            TIER2GATE_MODE="shadow"), log)
        assert proc.wait(timeout=20) == 1
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert events[-1]["event"] == "serve.cannot_listen"
    assert str(port) in events[-1]["error"]
    assert "store.closed" in [event["event"] for event in events]
