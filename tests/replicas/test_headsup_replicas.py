"""Two `tier2gate serve` replicas on one PostgreSQL database, then a restart: the weekend
heads-up of customer events is posted once.

Real processes run on the real clock, so the heads-up slot is set a minute before now: every
replica that starts within a day after a slot enqueues it, under one key.
"""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from daemon.standins.pagerduty import FakePagerDuty
from daemon.standins.slack import FakeSlack
from tests.harness import INC_SECRET, PD_SECRET, REPO, SLACK_SECRET
from tests.replicas.test_two_replicas import start_replica, until, wait_ready
from tests.support import POSTGRES_URL
from tests.support_process import clean_env
from tests.world import PD_TOKEN, SLACK_TOKEN, SMOC, SMOC_EMAIL, SMOC_SCHEDULE, serve_env

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
TIER2_CHANNEL, TIER2_SCHEDULE = "C0TIER2", "PT2SCHED"
TINA_EMAIL, TINA = "tina@example.com", "UTINA"


@pytest.mark.timeout(180)
async def test_two_replicas_and_a_restart_post_one_headsup(tmp_path: Path, schema: str) -> None:
    now = datetime.now(UTC)
    if now.weekday() == 0 and now.hour == 0 and now.minute < 2:
        # A slot a minute before Monday 00:00 belongs to a weekend that just ended.
        await asyncio.sleep(120)
        now = datetime.now(UTC)
    slot = now - timedelta(minutes=1)
    events = tmp_path / "events.yaml"
    events.write_text(
        "events:\n  - customer: Acme Corp\n    kind: upgrade\n    summary: v5\n"
        f"    start: {now.isoformat()}\n    end: {(now + timedelta(hours=2)).isoformat()}\n")
    async with AsyncExitStack() as stack:
        slack = await stack.enter_async_context(FakeSlack(
            token=SLACK_TOKEN, users_by_email={SMOC_EMAIL: SMOC, TINA_EMAIL: TINA}))
        pd = await stack.enter_async_context(
            FakePagerDuty(token=PD_TOKEN, ca_file=tmp_path / "ca.pem"))
        pd.set_oncall(SMOC_SCHEDULE, "PSMOCUSER", SMOC_EMAIL)
        pd.set_oncall(TIER2_SCHEDULE, "PTINA", TINA_EMAIL)
        env = clean_env(
            **serve_env(slack, pd),
            TIER2GATE_DATABASE_URL=f"{POSTGRES_URL}?search_path={schema}",
            TIER2GATE_HTTP__HOST="127.0.0.1",
            TIER2GATE_POLICY_FILE=str(REPO / "config" / "policy.yaml"),  # business hours: UTC
            TIER2GATE_PAGERDUTY__WEBHOOK_SECRETS=PD_SECRET,
            TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET=INC_SECRET,
            TIER2GATE_SLACK__SIGNING_SECRET=SLACK_SECRET,
            TIER2GATE_SLACK__TIER2_CHANNEL=TIER2_CHANNEL,
            TIER2GATE_PAGERDUTY__TIER2_SCHEDULE_ID=TIER2_SCHEDULE,
            TIER2GATE_CUSTOMER_EVENTS__FILES=str(events),
            TIER2GATE_CUSTOMER_EVENTS__HEADSUP_DAY=slot.strftime("%a").lower(),
            TIER2GATE_CUSTOMER_EVENTS__HEADSUP_TIME=slot.strftime("%H:%M"),
            TIER2GATE_JOBS__POLL_INTERVAL_S="0.05",
        )
        a, b = await asyncio.gather(start_replica(env, tmp_path, "a"),
                                    start_replica(env, tmp_path, "b"))
        replicas = [a, b]
        session = await stack.enter_async_context(aiohttp.ClientSession())
        try:
            await asyncio.gather(wait_ready(session, a), wait_ready(session, b))

            def headsups() -> list[str]:
                return [c.args.get("text", "") for c in slack.calls_to("chat.postMessage")
                        if c.args.get("channel") == TIER2_CHANNEL]

            async def posted() -> bool:
                return len(headsups()) >= 1

            await until(posted, 30, "the heads-up")
            conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
            stack.push_async_callback(conn.close)

            async def done() -> bool:
                return int(await conn.fetchval("SELECT count(*) FROM jobs WHERE kind ="
                                               " 'events_headsup' AND state = 'done'")) == 1

            await until(done, 10, "the heads-up job to finish")
            # Both replicas enqueued this slot (and the next): one job per key.
            keys = await conn.fetch("SELECT key, state FROM jobs WHERE kind = 'events_headsup'"
                                    " ORDER BY run_at")
            assert [r["key"] for r in keys] == [
                f"events_headsup:{slot.date().isoformat()}",
                f"events_headsup:{(slot + timedelta(days=7)).date().isoformat()}"]

            # A replica restarts: it enqueues the same slot again, which exists.
            a.proc.send_signal(signal.SIGTERM)
            assert await a.proc.wait() == 0
            c = await start_replica(env, tmp_path, "c")
            replicas.append(c)
            await wait_ready(session, c)
            await asyncio.sleep(3)  # time to claim and run a second heads-up, if there were one
            [text] = headsups()
            assert "*Acme Corp*" in text and "upgrade: v5" in text and f"<@{TINA}>" in text
            assert await conn.fetchval(
                "SELECT count(*) FROM jobs WHERE kind = 'events_headsup'") == 2
        finally:
            for replica in replicas:
                if replica.proc.returncode is None:
                    replica.proc.kill()
                    await replica.proc.wait()
