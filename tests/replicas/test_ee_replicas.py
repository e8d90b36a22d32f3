"""The Escalation Engineer step on two `tier2gate serve` replicas sharing PostgreSQL.

"Take it" pressed by two EEs at once, each click landing on another replica, makes exactly one
owner. A rotation change sends exactly one handoff message to the incoming EEs, however many
replicas start and restart, listing exactly the open escalations the outgoing EEs own.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from daemon.demo.payloads import ee_button_press
from daemon.ingress.signatures import sign_standard_webhook
from daemon.sources.slack_ids import TAKE_ACTION
from daemon.standins.pagerduty import FakePagerDuty
from daemon.standins.slack import FakeSlack
from daemon.standins.trackers import FakeGitLab
from tests.ee_support import EE_CHANNEL, engineer, policy_with_ee, roster_file, rotation
from tests.harness import INC_SECRET, PD_SECRET, SLACK_SECRET
from tests.replicas.test_two_replicas import (
    Replica,
    _post,
    _slack,
    start_replica,
    until,
    wait_ready,
)
from tests.support import POSTGRES_URL
from tests.support_process import clean_env
from tests.world import (
    PD_TOKEN,
    SLACK_TOKEN,
    SMOC,
    SMOC_EMAIL,
    SMOC_SCHEDULE,
    TRACKER_TOKEN,
    incident,
    serve_env,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
OLD, STAYS, NEW = "UEE0OUTGOING", "UEE0STAYS", "UEE0INCOMING"


def day(offset: int) -> str:
    """A UTC date relative to today: real processes run on the real clock."""
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


async def stop(*replicas: Replica) -> None:
    for replica in replicas:
        if replica.proc.returncode is None:
            replica.proc.send_signal(signal.SIGTERM)
    for replica in replicas:
        assert await replica.proc.wait() == 0


class Setup:
    def __init__(self, stack: AsyncExitStack, tmp_path: Path, schema: str) -> None:
        self.stack, self.tmp_path, self.schema = stack, tmp_path, schema
        self.roster = tmp_path / "ee-roster.yaml"

    async def start(self) -> tuple[FakeSlack, dict[str, str]]:
        slack = await self.stack.enter_async_context(
            FakeSlack(token=SLACK_TOKEN, users_by_email={SMOC_EMAIL: SMOC}))
        pd = await self.stack.enter_async_context(
            FakePagerDuty(token=PD_TOKEN, ca_file=self.tmp_path / "ca.pem"))
        pd.set_oncall(SMOC_SCHEDULE, "PSMOCUSER", SMOC_EMAIL)
        gitlab = FakeGitLab(TRACKER_TOKEN, "ops/retros")
        await gitlab.start()
        self.stack.push_async_callback(gitlab.close)
        policy = policy_with_ee(self.tmp_path / "policy.yaml", emergency_wait_minutes=None)
        env = clean_env(
            **serve_env(slack, pd, gitlab),
            TIER2GATE_DATABASE_URL=f"{POSTGRES_URL}?search_path={self.schema}",
            TIER2GATE_HTTP__HOST="127.0.0.1",
            TIER2GATE_POLICY_FILE=str(policy),
            TIER2GATE_PAGERDUTY__WEBHOOK_SECRETS=PD_SECRET,
            TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET=INC_SECRET,
            TIER2GATE_SLACK__SIGNING_SECRET=SLACK_SECRET,
            TIER2GATE_EE__ROSTER_FILE=str(self.roster),
            TIER2GATE_EE__CHANNEL=EE_CHANNEL,
            TIER2GATE_EE__CHECK_INTERVAL_S="10",
            TIER2GATE_JOBS__LEASE_S="3", TIER2GATE_JOBS__POLL_INTERVAL_S="0.05",
            TIER2GATE_JOBS__BACKOFF_BASE_S="0.05", TIER2GATE_JOBS__BACKOFF_MAX_S="0.5",
        )
        return slack, env

    async def replicas(self, env: dict[str, str], session: aiohttp.ClientSession, name: str
                       ) -> tuple[Replica, Replica]:
        a, b = await asyncio.gather(start_replica(env, self.tmp_path, f"{name}-a"),
                                    start_replica(env, self.tmp_path, f"{name}-b"))
        for replica in (a, b):
            self.stack.push_async_callback(_kill, replica)
        await asyncio.gather(wait_ready(session, a), wait_ready(session, b))
        return a, b


async def _kill(replica: Replica) -> None:
    if replica.proc.returncode is None:
        replica.proc.kill()
        await replica.proc.wait()


async def deliver_rfh(session: aiohttp.ClientSession, url: str, incident_id: str) -> None:
    body = json.dumps(incident(severity="SEV3", exhausted=False, incident_id=incident_id,
                               opened_at=time.time() - 60)).encode()
    headers = {**sign_standard_webhook(body, f"msg_{incident_id}", int(time.time()), INC_SECRET),
               "Content-Type": "application/json"}
    assert await _post(session, url + "/webhooks/incident-io", body, headers) == 202


def offer_ts(slack: FakeSlack, esc_id: str) -> str | None:
    return next((ts for (c, ts), m in slack.messages.items()
                 if c == EE_CHANNEL and TAKE_ACTION in str(m.blocks) and esc_id in str(m.blocks)),
                None)


async def press(session: aiohttp.ClientSession, replica: Replica, esc_id: str, user: str,
                action: str, ts: str, action_ts: str) -> int:
    payload: dict[str, Any] = ee_button_press(esc_id, user, action, EE_CHANNEL, ts, action_ts)
    return await _slack(session, replica.url, payload)


@pytest.mark.timeout(240)
async def test_one_owner_and_exactly_one_handoff_across_replicas_and_restarts(
        tmp_path: Path, schema: str) -> None:
    async with AsyncExitStack() as stack:
        setup = Setup(stack, tmp_path, schema)
        slack, env = await setup.start()
        roster_file(setup.roster, [rotation(day(-7), day(6), engineer(OLD, "Olga Outgoing"),
                                            engineer(STAYS, "Stan Stays"))], "00:00")
        session = await stack.enter_async_context(aiohttp.ClientSession())
        conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
        stack.push_async_callback(conn.close)
        a, b = await setup.replicas(env, session, "first")

        async def escalation(incident_id: str) -> tuple[str, str]:
            await deliver_rfh(session, a.url, incident_id)
            found: dict[str, str] = {}

            async def offered() -> bool:
                esc_id = await conn.fetchval(
                    "SELECT id FROM escalations WHERE external_id = $1", incident_id)
                ts = offer_ts(slack, esc_id) if esc_id else None
                if esc_id and ts:
                    found.update(id=esc_id, ts=ts)
                return bool(found)

            await until(offered, 20, f"the EE offer of {incident_id}")
            return found["id"], found["ts"]

        async def assigned(esc_id: str) -> bool:
            return int(await conn.fetchval("SELECT count(*) FROM timeline WHERE escalation_id"
                                           " = $1 AND event = 'ee_assigned'", esc_id)) == 1

        # Two EEs press "Take it" at once, each on another replica, twice each.
        kept, kept_ts = await escalation("01KEPT")
        clicks = [press(session, r, kept, user, "take", kept_ts, f"7.00{n}")
                  for n, (r, user) in enumerate(((a, OLD), (b, STAYS), (b, OLD), (a, STAYS)))]
        assert await asyncio.gather(*clicks) == [200] * 4
        await until(lambda: assigned(kept), 20, "one owner")

        async def told() -> bool:
            return any("has already taken" in str(c.args.get("text"))
                       for c in slack.calls_to("chat.postEphemeral"))

        await until(told, 20, "the later clicker to hear who has it")
        await asyncio.sleep(1.0)  # any second owner would be recorded by now
        owner = await conn.fetchval("SELECT owner FROM ee_work WHERE escalation_id = $1", kept)
        assert owner in (OLD, STAYS)
        assert await conn.fetchval("SELECT count(*) FROM timeline WHERE escalation_id = $1"
                                   " AND event = 'ee_assigned'", kept) == 1
        if owner == STAYS:  # the handoff lists only what the outgoing EE owns: make OLD own one
            kept, kept_ts = await escalation("01KEPT2")
            assert await press(session, a, kept, OLD, "take", kept_ts, "7.100") == 200
            await until(lambda: assigned(kept), 20, "OLD to own one")

        # OLD also owned one they resolved: not open, not handed over. STAYS owns one: STAYS
        # stays on rotation, so it is not handed over either.
        done, done_ts = await escalation("01DONE")
        assert await press(session, b, done, OLD, "take", done_ts, "8.001") == 200
        await until(lambda: assigned(done), 20, "OLD to own the second")
        assert await press(session, a, done, OLD, "resolved", done_ts, "8.002") == 200
        stays, stays_ts = await escalation("01STAYS")
        assert await press(session, a, stays, STAYS, "take", stays_ts, "9.001") == 200
        await until(lambda: assigned(stays), 20, "STAYS to own one")

        async def resolved() -> bool:
            return int(await conn.fetchval("SELECT count(*) FROM timeline WHERE event ="
                                           " 'ee_resolved'")) == 1

        await until(resolved, 20, "the EE's resolution")
        await stop(a, b)

        # The rotation changes while no replica runs: OLD goes, STAYS stays, NEW comes.
        incoming = rotation(day(0), day(6), engineer(STAYS, "Stan Stays"),
                            engineer(NEW, "Nina Incoming"))
        roster_file(setup.roster, [rotation(day(-7), day(-1), engineer(OLD, "Olga Outgoing"),
                                            engineer(STAYS, "Stan Stays")), incoming], "00:00")
        rotation_id = f"{day(0)}..{day(6)}"

        def handoffs() -> list[str]:
            return [str(c.args.get("text")) for c in slack.calls_to("chat.postMessage")
                    if c.args.get("channel") == EE_CHANNEL
                    and f"EE rotation {rotation_id} starts" in str(c.args.get("text"))]

        for attempt in ("second", "third"):  # both start at once, then restart: one message
            a, b = await setup.replicas(env, session, attempt)

            async def handed_over() -> bool:
                return int(await conn.fetchval("SELECT count(*) FROM jobs WHERE kind ="
                                               " 'ee_handoff' AND key = $1 AND state = 'done'",
                                               f"ee_handoff:{day(0)}")) == 1

            await until(handed_over, 30, "the handoff")
            await asyncio.sleep(2.0)  # a second message, if any, would be posted by now
            await stop(a, b)
        [text] = handoffs()
        assert f"<@{NEW}>" in text and f"<@{STAYS}>" in text
        assert kept in text
        assert done not in text and stays not in text
        assert await conn.fetchval("SELECT count(*) FROM timeline WHERE event ="
                                   " 'ee_handed_over'") == 1
