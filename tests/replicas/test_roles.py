"""`tier2gate serve --role web|worker` on PostgreSQL: intake and jobs in separate processes.

A `web` process verifies, stores and acknowledges but runs no job (and its readiness does not
miss a job runner); a `worker` process listens only on the admin listener and runs the jobs
the web process stored.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from daemon.ingress.signatures import sign_standard_webhook
from daemon.sources.slack_ids import APPROVE_ACTION
from daemon.standins.pagerduty import FakePagerDuty
from daemon.standins.slack import FakeSlack
from tests.harness import INC_SECRET, PD_SECRET, REPO, SLACK_SECRET
from tests.support import POSTGRES_URL
from tests.support_process import clean_env, free_port
from tests.world import PD_TOKEN, SLACK_TOKEN, SMOC, SMOC_EMAIL, SMOC_SCHEDULE, incident, serve_env

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@dataclass
class Process:
    port: int
    admin_port: int
    proc: asyncio.subprocess.Process
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"


async def start(env: dict[str, str], folder: Path, role: str) -> Process:
    port, admin_port = free_port(), free_port()
    log = folder / f"{role}.log"
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "daemon", "serve", "--role", role, cwd=REPO,
            env={**env, "TIER2GATE_HTTP__PORT": str(port),
                 "TIER2GATE_ADMIN__PORT": str(admin_port)}, stdout=out, stderr=out)
    return Process(port, admin_port, proc, log)


async def ready(session: aiohttp.ClientSession, process: Process, url: str) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.proc.returncode is not None:
            pytest.fail(f"process exited:\n{process.log.read_text()}")
        try:
            async with session.get(url + "/readyz") as response:
                if response.status == 200:
                    answer: dict[str, object] = await response.json()
                    return answer
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    pytest.fail(f"not ready:\n{process.log.read_text()}")


@pytest.mark.timeout(120)
async def test_a_web_process_stores_and_acknowledges_a_worker_process_processes(
        tmp_path: Path, schema: str) -> None:
    async with AsyncExitStack() as stack:
        slack = await stack.enter_async_context(
            FakeSlack(token=SLACK_TOKEN, users_by_email={SMOC_EMAIL: SMOC}))
        pd = await stack.enter_async_context(
            FakePagerDuty(token=PD_TOKEN, ca_file=tmp_path / "ca.pem"))
        pd.set_oncall(SMOC_SCHEDULE, "PSMOCUSER", SMOC_EMAIL)
        env = clean_env(
            **serve_env(slack, pd),
            TIER2GATE_DATABASE_URL=f"{POSTGRES_URL}?search_path={schema}",
            TIER2GATE_HTTP__HOST="127.0.0.1",
            TIER2GATE_POLICY_FILE=str(REPO / "config" / "policy.yaml"),
            TIER2GATE_PAGERDUTY__WEBHOOK_SECRETS=PD_SECRET,
            TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET=INC_SECRET,
            TIER2GATE_SLACK__SIGNING_SECRET=SLACK_SECRET,
            TIER2GATE_JOBS__POLL_INTERVAL_S="0.05",
        )
        session = await stack.enter_async_context(aiohttp.ClientSession())
        web = await start(env, tmp_path, "web")
        worker: Process | None = None
        try:
            await ready(session, web, web.url)
            # Detailed readiness on the admin listener: no job runner here, none missed.
            detailed = await ready(session, web, web.admin_url)
            assert "problems" not in detailed, detailed

            body = json.dumps(incident(opened_at=time.time() - 60)).encode()
            headers = {**sign_standard_webhook(body, "msg_roles", int(time.time()), INC_SECRET),
                       "Content-Type": "application/json"}
            async with session.post(web.url + "/webhooks/incident-io", data=body,
                                    headers=headers) as response:
                assert response.status == 202
            conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
            stack.push_async_callback(conn.close)
            assert await conn.fetchval("SELECT count(*) FROM deliveries") == 1
            # The web process runs no job, however long it is given (its poll would be 50 ms).
            await asyncio.sleep(1.0)
            assert await conn.fetchval(
                "SELECT state FROM jobs WHERE kind = 'intake_incident_io'") == "queued"
            assert await conn.fetchval("SELECT count(*) FROM escalations") == 0

            worker = await start(env, tmp_path, "worker")
            await ready(session, worker, worker.admin_url)
            with pytest.raises(aiohttp.ClientConnectionError):  # no public listener
                async with session.get(worker.url + "/healthz"):
                    pass

            deadline = time.monotonic() + 20
            while not [c for c in slack.calls_to("chat.postMessage")
                       if APPROVE_ACTION in str(c.args)]:
                assert time.monotonic() < deadline, "the worker never asked for approval"
                await asyncio.sleep(0.05)
            assert await conn.fetchval(
                "SELECT state FROM jobs WHERE kind = 'intake_incident_io'") == "done"
            assert await conn.fetchval("SELECT count(*) FROM escalations") == 1
            owner = await conn.fetchval(
                "SELECT lease_owner FROM jobs WHERE kind = 'intake_incident_io'")
            assert owner is None or f"-{worker.proc.pid}-" in owner

            for process in (web, worker):
                process.proc.send_signal(signal.SIGTERM)
                assert await process.proc.wait() == 0
            for process, role in ((web, "web"), (worker, "worker")):
                lines = [json.loads(line) for line in process.log.read_text().splitlines()
                         if line.startswith("{")]
                assert {line.get("role") for line in lines
                        if line["event"] == "serve.starting"} == {role}
        finally:
            for started in (web, worker):
                if started is not None and started.proc.returncode is None:
                    started.proc.kill()
                    await process.proc.wait()
