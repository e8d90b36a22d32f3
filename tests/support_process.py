"""Running tier2gate (or a test worker) as a real process: start, wait for HTTP, signal."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def clean_env(**extra: str) -> dict[str, str]:
    """The parent's environment without any TIER2GATE_* setting, plus a free admin port (two
    `serve` processes on this machine, this suite's or another run's, would otherwise both
    want 127.0.0.1:8081), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIER2GATE_")}
    env["TIER2GATE_ADMIN__PORT"] = str(free_port())
    env.update(extra)
    return env


def spawn(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


def tier2gate(*args: str) -> list[str]:
    return [sys.executable, "-m", "daemon", *args]


def http_get(url: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 20.0
              ) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"process exited with {proc.returncode}:\n{log.read_text()}")
        try:
            return http_get(url, timeout_s=1.0)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)
    pytest.fail(f"{url} did not answer within {timeout_s} s:\n{log.read_text()}")
