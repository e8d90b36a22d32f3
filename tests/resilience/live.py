"""A real `python -m daemon serve` process wired to the HTTP fakes of the test process.

The fakes (FakeSlack, FakePagerDuty over TLS, FakeGitLab) run in the test's event loop; the
daemon is configured purely through `TIER2GATE_*` variables, as an operator would, and can be
SIGKILLed and started again on the same SQLite file and port. Deliveries are signed the way the
vendors sign them, and re-sent until the daemon acknowledges them, as vendors do.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from daemon.ingress.signatures import sign_pagerduty, sign_slack, sign_standard_webhook
from daemon.standins.pagerduty import FakePagerDuty
from daemon.standins.slack import FakeSlack
from daemon.standins.trackers import FakeGitLab
from tests.harness import INC_SECRET, PD_SECRET, REPO, SLACK_SECRET
from tests.support_process import clean_env, free_port, spawn, tier2gate
from tests.world import (
    BACKUP,
    FROM_EMAIL,
    PD_TOKEN,
    SLACK_TOKEN,
    SMOC_EMAIL,
    SMOC_SCHEDULE,
    TIER2_SERVICE,
    TRACKER_TOKEN,
    serve_env,
)

ALL_SECRETS = (PD_SECRET, INC_SECRET, SLACK_SECRET, SLACK_TOKEN, PD_TOKEN, TRACKER_TOKEN)


@dataclass
class Vendors:
    slack: FakeSlack
    pagerduty: FakePagerDuty
    gitlab: FakeGitLab

    def env(self) -> dict[str, str]:
        """What an operator would put in the daemon's environment to reach these vendors."""
        return {
            **serve_env(self.slack, self.pagerduty, self.gitlab),
            "TIER2GATE_SLACK__SIGNING_SECRET": SLACK_SECRET,
            "TIER2GATE_PAGERDUTY__WEBHOOK_SECRETS": PD_SECRET,
            "TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET": INC_SECRET,
            "TIER2GATE_APPROVAL__BACKUP_USER_IDS": BACKUP,
        }


@asynccontextmanager
async def vendors(tmp_path: Path, *, prepare: Callable[[Vendors], None] | None = None
                  ) -> AsyncIterator[Vendors]:
    """The three fakes, started. `prepare` runs before they start (to add middlewares)."""
    async with AsyncExitStack() as stack:
        slack = FakeSlack(token=SLACK_TOKEN, users_by_email={
            SMOC_EMAIL: "USMOC", "backup@example.com": BACKUP})
        pagerduty = FakePagerDuty(token=PD_TOKEN, ca_file=tmp_path / "pd-ca.pem")
        pagerduty.set_oncall(SMOC_SCHEDULE, "PSMOCUSER", SMOC_EMAIL)
        # what `tier2gate doctor` looks up: the Tier 2 service and the requester exist
        pagerduty.services[TIER2_SERVICE] = "Tier 2"
        pagerduty.requesters = {FROM_EMAIL}
        gitlab = FakeGitLab(TRACKER_TOKEN, "ops/retros")
        found = Vendors(slack, pagerduty, gitlab)
        if prepare is not None:
            prepare(found)
        await stack.enter_async_context(slack)
        await stack.enter_async_context(pagerduty)
        await gitlab.start()
        stack.push_async_callback(gitlab.close)
        yield found


def fast_jobs_env() -> dict[str, str]:
    return {
        "TIER2GATE_JOBS__POLL_INTERVAL_S": "0.05",
        "TIER2GATE_JOBS__BACKOFF_BASE_S": "0.05",
        "TIER2GATE_JOBS__BACKOFF_MAX_S": "0.5",
        "TIER2GATE_JOBS__MAX_ATTEMPTS": "200",
        "TIER2GATE_JOBS__LEASE_S": "10",
        "TIER2GATE_JOBS__DRAIN_TIMEOUT_S": "1",
        "TIER2GATE_HTTP__SHUTDOWN_TIMEOUT_S": "1",
    }


class LiveDaemon:
    """One daemon *installation* (database, port, log); each `start()` is a new process."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.port = free_port()
        self.admin_port = free_port()
        self.db = folder / "tier2gate.db"
        self.log = folder / "serve.log"
        self.env = clean_env(
            TIER2GATE_HTTP__HOST="127.0.0.1", TIER2GATE_HTTP__PORT=str(self.port),
            TIER2GATE_ADMIN__PORT=str(self.admin_port),
            TIER2GATE_DATABASE_URL=f"sqlite:///{self.db}",
            TIER2GATE_POLICY_FILE=str(REPO / "config" / "policy.yaml"),
            **env,
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.lock = asyncio.Lock()  # one kill/restart at a time

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        """The read side (dashboard, API, metrics): loopback, so no credentials."""
        return f"http://127.0.0.1:{self.admin_port}"

    async def start(self, timeout_s: float = 20.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with self.log.open("ab") as out:
            out.write(f"\n=== start {self.starts + 1} ===\n".encode())
        self.proc = spawn(tier2gate("serve"), self.folder, self.env, self.log)
        self.starts += 1
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"serve exited with {self.proc.returncode}:\n"
                                         f"{self.log_tail()}")
                try:
                    async with session.get(self.url + "/healthz",
                                           timeout=aiohttp.ClientTimeout(total=1)) as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.02)
        raise AssertionError(f"serve did not answer within {timeout_s} s:\n{self.log_tail()}")

    async def kill(self) -> None:
        """SIGKILL: no drain, no cleanup, whatever was in flight stays in flight."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self._reap()
        self.kills += 1
        with self.log.open("ab") as out:
            out.write(b"\n=== SIGKILL ===\n")

    async def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM and wait: the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await self._reap(timeout_s)

    async def _reap(self, timeout_s: float = 20.0) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"serve did not exit within {timeout_s} s")
            await asyncio.sleep(0.01)
        return self.proc.returncode

    async def ensure_stopped(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            await self._reap()

    def rss_kb(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/<pid>/status")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_events(self) -> Counter[str]:
        """How often each structured event name appears in the log (JSON lines only)."""
        found: Counter[str] = Counter()
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    found[json.loads(line).get("event", "?")] += 1
                except json.JSONDecodeError:
                    found["<torn line>"] += 1
        return found

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read the store directly (after the daemon stopped, or alongside it: WAL)."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            return list(conn.execute(sql, args).fetchall())


# --- signed deliveries -------------------------------------------------------------------------


def incident_io_headers(body: bytes, msg_id: str) -> dict[str, str]:
    """Standard Webhooks headers, signed now (Svix re-signs every attempt of a message)."""
    return {**sign_standard_webhook(body, msg_id, int(time.time()), INC_SECRET),
            "Content-Type": "application/json"}


def pagerduty_headers(body: bytes, webhook_id: str) -> dict[str, str]:
    return {"X-PagerDuty-Signature": sign_pagerduty(body, PD_SECRET), "X-Webhook-Id": webhook_id,
            "Content-Type": "application/json"}


def slack_form(interaction: dict[str, Any]) -> bytes:
    return ("payload=" + quote(json.dumps(interaction))).encode()


def slack_headers(body: bytes) -> dict[str, str]:
    return {**sign_slack(body, SLACK_SECRET, int(time.time())),
            "Content-Type": "application/x-www-form-urlencoded"}


def slack_delivery_id(body: bytes) -> str:
    """How the daemon names a stored Slack interaction (a byte-identical replay is a duplicate)."""
    return hashlib.sha256(body).hexdigest()[:40]


@dataclass
class Courier:
    """Delivers like a vendor: re-sends a refused delivery (daemon down, 5xx) until a 2xx."""

    session: aiohttp.ClientSession
    daemon: LiveDaemon
    acknowledged: set[tuple[str, str]] = field(default_factory=set)
    refusals: Counter[str] = field(default_factory=Counter)

    async def deliver(self, path: str, body: bytes, headers: Callable[[], dict[str, str]],
                      key: tuple[str, str], pause: Callable[[], Awaitable[None]]) -> int:
        while True:
            try:
                async with self.session.post(self.daemon.url + path, data=body,
                                             headers=headers(),
                                             timeout=aiohttp.ClientTimeout(total=10)) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        self.acknowledged.add(key)
                        return response.status
                    self.refusals[f"HTTP {response.status}"] += 1
                    if response.status < 500:
                        raise AssertionError(f"{path} refused a valid delivery with "
                                             f"{response.status}")
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                self.refusals[type(exc).__name__] += 1
            await pause()
