"""Two `tier2gate serve` replicas on one PostgreSQL database: the promise does not change.

The same webhook lands on both at once, clicks land on either, and the replica holding the
retro job is killed with SIGKILL mid-call: still one approval request, one page, one retro, and
the survivor takes the dead replica's job over within the lease time.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from daemon.ingress.signatures import sign_slack, sign_standard_webhook
from daemon.sources.slack_ids import APPROVE_ACTION
from daemon.standins.faults import Fault
from daemon.standins.pagerduty import FakePagerDuty
from daemon.standins.slack import FakeSlack
from daemon.standins.trackers import FakeGitLab
from tests.harness import INC_SECRET, PD_SECRET, REPO, SLACK_SECRET
from tests.support import POSTGRES_URL
from tests.support_process import clean_env, free_port
from tests.world import (
    PD_TOKEN,
    SLACK_TOKEN,
    SMOC,
    SMOC_EMAIL,
    SMOC_SCHEDULE,
    TRACKER_TOKEN,
    button,
    incident,
    serve_env,
    stamp,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
LEASE_S = 3.0


@dataclass
class Replica:
    port: int
    proc: asyncio.subprocess.Process
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def start_replica(env: dict[str, str], folder: Path, name: str) -> Replica:
    port = free_port()
    log = folder / f"{name}.log"
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "daemon", "serve", cwd=REPO,
            env={**env, "TIER2GATE_HTTP__PORT": str(port),
                 "TIER2GATE_ADMIN__PORT": str(free_port())}, stdout=out, stderr=out)
    return Replica(port, proc, log)


async def wait_ready(session: aiohttp.ClientSession, replica: Replica) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if replica.proc.returncode is not None:
            pytest.fail(f"replica exited:\n{replica.log.read_text()}")
        try:
            async with session.get(replica.url + "/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    pytest.fail(f"replica not ready:\n{replica.log.read_text()}")


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.timeout(180)
async def test_two_replicas_one_approval_one_page_one_retro(tmp_path: Path, schema: str) -> None:
    async with AsyncExitStack() as stack:
        slack = await stack.enter_async_context(
            FakeSlack(token=SLACK_TOKEN, users_by_email={SMOC_EMAIL: SMOC}))
        pd = await stack.enter_async_context(
            FakePagerDuty(token=PD_TOKEN, ca_file=tmp_path / "ca.pem"))
        pd.set_oncall(SMOC_SCHEDULE, "PSMOCUSER", SMOC_EMAIL)
        gitlab = FakeGitLab(TRACKER_TOKEN, "ops/retros")
        await gitlab.start()
        stack.push_async_callback(gitlab.close)
        env = clean_env(
            **serve_env(slack, pd, gitlab),
            TIER2GATE_DATABASE_URL=f"{POSTGRES_URL}?search_path={schema}",
            TIER2GATE_HTTP__HOST="127.0.0.1",
            TIER2GATE_POLICY_FILE=str(REPO / "config" / "policy.yaml"),
            TIER2GATE_PAGERDUTY__WEBHOOK_SECRETS=PD_SECRET,
            TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET=INC_SECRET,
            TIER2GATE_SLACK__SIGNING_SECRET=SLACK_SECRET,
            TIER2GATE_JOBS__LEASE_S=str(LEASE_S), TIER2GATE_JOBS__POLL_INTERVAL_S="0.05",
            TIER2GATE_JOBS__BACKOFF_BASE_S="0.05", TIER2GATE_JOBS__BACKOFF_MAX_S="0.5",
        )
        # Both start at once: migrations must not race (advisory lock).
        a, b = await asyncio.gather(start_replica(env, tmp_path, "a"),
                                    start_replica(env, tmp_path, "b"))
        replicas = {a.proc.pid: a, b.proc.pid: b}
        session = await stack.enter_async_context(aiohttp.ClientSession())
        try:
            await asyncio.gather(wait_ready(session, a), wait_ready(session, b))

            # The same delivery lands on both replicas at the same moment.
            opened_at = time.time() - 60  # a real process runs on the real clock
            body = json.dumps(incident(opened_at=opened_at)).encode()
            headers = {**sign_standard_webhook(body, "msg_same", int(time.time()), INC_SECRET),
                       "Content-Type": "application/json"}
            statuses = await asyncio.gather(*(
                _post(session, r.url + "/webhooks/incident-io", body, headers) for r in (a, b)))
            assert sorted(statuses) == [200, 202]

            def approvals() -> list[object]:
                return [c for c in slack.calls_to("chat.postMessage")
                        if APPROVE_ACTION in str(c.args)]

            async def one_approval() -> bool:
                return len(approvals()) == 1

            await until(one_approval, 20, "the approval request")
            [(_channel, ts)] = [k for k, m in slack.messages.items() if not m.thread_ts]
            conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
            stack.push_async_callback(conn.close)
            esc_id = await conn.fetchval("SELECT id FROM escalations")

            # The SMOC's clicks land on either replica, all at once.
            clicks = [_slack(session, r.url, button(esc_id, SMOC, APPROVE_ACTION, ts, f"5.00{n}"))
                      for n, r in enumerate((a, b, a, b))]
            assert await asyncio.gather(*clicks) == [200, 200, 200, 200]

            async def paged() -> bool:
                return int(await conn.fetchval(
                    "SELECT count(*) FROM timeline WHERE event = 'paged'")) == 1

            await until(paged, 20, "the page")

            # The retro call hangs on whichever replica claims it; that replica is killed.
            gitlab.plan.add(Fault(delay_s=60))
            closed = json.dumps(incident(category="closed", opened_at=opened_at,
                                         updated_at=stamp(time.time())))
            closed_headers = {**sign_standard_webhook(closed.encode(), "msg_closed",
                                                      int(time.time()), INC_SECRET),
                              "Content-Type": "application/json"}
            assert await _post(session, a.url + "/webhooks/incident-io", closed.encode(),
                               closed_headers) == 202

            async def retro_leased() -> bool:
                return await conn.fetchval(
                    "SELECT lease_owner FROM jobs WHERE kind = 'retro' AND state = 'running'"
                ) is not None

            await until(retro_leased, 20, "a replica to claim the retro job")
            owner = await conn.fetchval("SELECT lease_owner FROM jobs WHERE kind = 'retro'")
            victim = replicas[int(owner.split("-")[-2])]
            survivor = b if victim is a else a
            victim.proc.send_signal(signal.SIGKILL)
            await victim.proc.wait()
            killed_at = time.monotonic()

            async def retro_opened() -> bool:
                return len(gitlab.issues) == 1 and await conn.fetchval(
                    "SELECT count(*) FROM timeline WHERE event = 'retro_opened'") == 1

            await until(retro_opened, 30, "the survivor to open the retro")
            assert time.monotonic() - killed_at < LEASE_S + 5
            assert await conn.fetchval(
                "SELECT count(*) FROM jobs WHERE kind = 'retro' AND state = 'done'") == 1

            assert len(approvals()) == 1
            assert len(pd.pages) == 1
            assert len(gitlab.issues) == 1
            assert await conn.fetchval("SELECT count(*) FROM deliveries WHERE source ="
                                       " 'incident_io'") == 2
            assert await conn.fetchval(
                "SELECT count(*) FROM timeline WHERE event IN ('approved', 'declined')") == 1
            survivor.proc.send_signal(signal.SIGTERM)
            assert await survivor.proc.wait() == 0
        finally:
            for replica in (a, b):
                if replica.proc.returncode is None:
                    replica.proc.kill()
                    await replica.proc.wait()


async def _post(session: aiohttp.ClientSession, url: str, body: bytes,
                headers: dict[str, str]) -> int:
    async with session.post(url, data=body, headers=headers) as response:
        return response.status


async def _slack(session: aiohttp.ClientSession, base: str, interaction: dict[str, object]
                 ) -> int:
    from urllib.parse import quote

    body = ("payload=" + quote(json.dumps(interaction))).encode()
    headers = {**sign_slack(body, SLACK_SECRET, int(time.time())),
               "Content-Type": "application/x-www-form-urlencoded"}
    return await _post(session, base + "/slack/interactions", body, headers)
