"""Shared bench plumbing: free ports, temp dirs, spawning servers, RSS, stats, signed bodies.

Every process a bench starts is a child of the bench, gets its own temp dir and port on
127.0.0.1, and is stopped (SIGTERM, then SIGKILL) by `Proc.stop()`, which `bench/run` also calls
from a `finally`. Nothing here talks to any address but the loopback.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PYTHON = sys.executable
HOST = "127.0.0.1"

# The test suite's recognisable secrets: the bench signs exactly like the tests do.
PD_SECRET = "pd-webhook-secret-RECOGNISABLE"  # noqa: S105
INC_SECRET = "whsec_" + "UkVDT0dOSVNBQkxFLWluY2lkZW50LWlvLXNlY3JldA=="
SLACK_SECRET = "slack-signing-secret-RECOGNISABLE"  # noqa: S105


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set since it started, in MB (10^6 bytes)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process (all its threads) has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def http_status(url: str, timeout_s: float = 1.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@dataclass
class Proc:
    """A child process with its log file; `stop()` is idempotent and always reaps it."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_http(self, path: str, want: int = 200, timeout_s: float = 30.0) -> float:
        """Poll until `path` answers `want`; returns the seconds it took."""
        started = time.monotonic()
        url = f"http://{HOST}:{self.port}{path}"
        while time.monotonic() - started < timeout_s:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n"
                                   f"{self.tail()}")
            try:
                if http_status(url) == want:
                    return time.monotonic() - started
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.005)
        raise RuntimeError(f"{self.name}: {url} did not answer {want} within {timeout_s} s:\n"
                           f"{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 15.0) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


_RUNNING: list[Proc] = []


def spawn(name: str, args: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None,
          port: int = 0) -> Proc:
    with log.open("ab") as out:
        popen = subprocess.Popen(  # noqa: S603 - fixed argv built by the bench itself
            args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    proc = Proc(name, popen, log, port)
    _RUNNING.append(proc)
    return proc


def stop_all() -> None:
    """Stop every child this bench process started that is still running."""
    while _RUNNING:
        _RUNNING.pop().stop(timeout_s=10.0)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any TIER2GATE_* setting; `BENCH_DAEMON_PATH` (a directory that
    holds another `daemon/` package) lets an A/B comparison run two versions of the code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIER2GATE_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (os.environ.get("BENCH_DAEMON_PATH"), str(REPO)) if p)
    env.update(extra)
    return env


def serve_env(tmp: Path, port: int, **extra: str) -> dict[str, str]:
    """`tier2gate serve` on 127.0.0.1:port with its store in `tmp` and the tests' secrets.

    Shadow mode unless `extra` says otherwise: with no Slack token and no pager, live mode
    refuses to start (these benches measure intake, not paging)."""
    return clean_env(**{
        "TIER2GATE_MODE": "shadow",
        "TIER2GATE_DATABASE_URL": f"sqlite:///{tmp / 'tier2gate.db'}",
        "TIER2GATE_HTTP__HOST": HOST,
        "TIER2GATE_HTTP__PORT": str(port),
        "TIER2GATE_ADMIN__PORT": str(free_port()),  # the default 8081 would collide
        "TIER2GATE_POLICY_FILE": str(REPO / "config" / "policy.yaml"),
        "TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET": INC_SECRET,
        "TIER2GATE_PAGERDUTY__WEBHOOK_SECRETS": PD_SECRET,
        "TIER2GATE_SLACK__SIGNING_SECRET": SLACK_SECRET,
        **extra,
    })


def start_serve(tmp: Path, name: str = "tier2gate", timeout_s: float = 30.0,
                **extra: str) -> Proc:
    port = free_port()
    proc = spawn(name, [PYTHON, "-m", "daemon", "serve"], tmp, tmp / f"{name}.log",
                 serve_env(tmp, port, **extra), port)
    proc.extra["db"] = str(tmp / "tier2gate.db")
    proc.wait_http("/readyz", timeout_s=timeout_s)
    return proc


def run_loadgen(spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """Run bench/loadgen.py in its own process (its CPU is not the server's) and read its JSON."""
    spec_file = tmp / f"loadgen-{time.monotonic_ns()}.json"
    spec_file.write_text(json.dumps(spec))
    done = subprocess.run(  # noqa: S603
        [PYTHON, str(REPO / "bench" / "loadgen.py"), str(spec_file)],
        cwd=REPO, env=clean_env(), capture_output=True, check=False,
        timeout=spec.get("duration_s", 30) + 120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed ({done.returncode}):\n{done.stderr.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result
