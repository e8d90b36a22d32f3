"""Every line `tier2gate serve` writes is one JSON object, including aiohttp's own errors and
its access log, and a client that gives up on its upload is not a server error."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemon.ingress.signatures import sign_pagerduty
from tests.harness import PD_SECRET, REPO, Harness, running
from tests.support import eventually
from tests.support_process import clean_env, free_port, spawn, tier2gate, wait_http

ABORTED_UPLOAD = (b"POST /webhooks/pagerduty HTTP/1.1\r\nHost: tier2gate\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                  + b'{"event": ' + b" " * 1000)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running(tmp_path) as h:
        yield h


def _counted(harness: Harness, status: str) -> float:
    return harness.metrics.registry.get_sample_value(
        "tier2gate_http_requests_total", {"route": "/webhooks/pagerduty", "status": status}
    ) or 0.0


async def test_a_client_that_aborts_its_upload_is_not_counted_as_a_5xx(harness: Harness
                                                                       ) -> None:
    server = harness.client.server
    _reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(ABORTED_UPLOAD)
    await writer.drain()
    writer.close()  # half a body, then gone
    await writer.wait_closed()

    async def counted() -> bool:
        return _counted(harness, "499") + _counted(harness, "500") > 0

    await eventually(counted)
    assert (_counted(harness, "499"), _counted(harness, "500")) == (1, 0)
    assert await harness.store.count_deliveries() == 0


def _send(port: int, raw: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            sock.recv(65536)  # what matters is what the daemon logged, not its answer


def _aborted(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(ABORTED_UPLOAD)


@pytest.mark.slow
def test_every_line_serve_writes_is_one_json_object(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(TIER2GATE_HTTP__PORT=str(port), TIER2GATE_HTTP__HOST="127.0.0.1",
                    TIER2GATE_PAGERDUTY__WEBHOOK_SECRETS=PD_SECRET,
                    TIER2GATE_POLICY_FILE=str(REPO / "config" / "policy.yaml"),
                    TIER2GATE_MODE="shadow")  # inbound only: live mode needs Slack and a pager
    log = tmp_path / "serve.log"
    proc = spawn(tier2gate("serve"), tmp_path, env, log)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)
        deep = b'{"event": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        signed = (b"POST /webhooks/pagerduty HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                  b"Content-Type: application/json\r\nX-PagerDuty-Signature: "
                  + sign_pagerduty(deep, PD_SECRET).encode()
                  + b"\r\nContent-Length: %d\r\n\r\n" % len(deep) + deep)
        _send(port, signed)
        _aborted(port)
        _send(port, b"NOT HTTP AT ALL\r\n\r\n")
        _send(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n")
        time.sleep(0.5)  # let the daemon notice the aborted upload before it stops
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = []
    for line in lines:
        record = json.loads(line)  # a traceback or a plain-text line fails here
        assert isinstance(record, dict), line
        records.append(record)
    access = [r for r in records if r["event"] == "http.access"]
    assert {"method": "GET", "path": "/healthz", "status": 200} in [
        {k: r.get(k) for k in ("method", "path", "status")} for r in access]
    assert any(r.get("path") == "/webhooks/pagerduty" and r.get("status") == 400
               for r in access)
    assert not any(r.get("status", 0) >= 500 for r in access), access
    assert "http.client_aborted" in [r["event"] for r in records]
