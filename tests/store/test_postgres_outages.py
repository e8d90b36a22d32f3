"""PostgreSQL failure modes are 503s and readiness failures (issue 13, deliverable 5).

Seen: PostgreSQL back after a failover as read-only gave 93 HTTP 500s with tracebacks while
`/readyz` said ready. The failover is reproduced on a database of its own: every connection is
dropped and the new ones are read-only (`default_transaction_read_only`), so each write gets
the real SQLSTATE 25006 "cannot execute INSERT in a read-only transaction"."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from structlog.testing import capture_logs

from daemon.app import build_app
from daemon.clock import ManualClock
from daemon.metrics import Metrics
from daemon.store import Store
from daemon.store.postgres import PostgresBackend
from tests.fakes.tcp_proxy import CuttableProxy
from tests.harness import Harness, base_settings, both_listeners, recent_pagerduty
from tests.support import START, eventually, postgres_or_skip
from tests.support_process import clean_env, free_port, tier2gate

pytestmark = pytest.mark.postgres
PD_TRIGGERED = "pagerduty/zulip_triggered_v3.json"


@pytest.fixture
async def database() -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    url = postgres_or_skip()
    name = f"t2g_ro_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(url)._replace(path=f"/{name}").geturl(), admin
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def fail_over(admin: asyncpg.Connection, name: str, *, read_only: bool) -> None:
    """Drop every connection; the ones made next are read-only (or writable again)."""
    if read_only:
        await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    else:
        await admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
    await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = $1 AND pid <> pg_backend_pid()", name)


@asynccontextmanager
async def harness_on(store: Store) -> AsyncIterator[Harness]:
    settings = base_settings()
    clock = ManualClock(START)
    metrics = Metrics()
    async with both_listeners(build_app(settings, store, metrics=metrics)) as (client, admin):
        yield Harness(client, store, clock, settings, metrics, admin)


async def readiness(h: Harness) -> tuple[int, list[str]]:
    response = await h.admin.get("/readyz")
    return response.status, (await response.json()).get("problems", [])


async def test_read_only_after_failover_is_503_not_500_and_red_readiness(
        database: tuple[str, asyncpg.Connection]) -> None:
    url, admin = database
    name = urlsplit(url).path.lstrip("/")
    store = Store(PostgresBackend(url, connect_timeout_s=2.0, pool_size=2))
    async with harness_on(store) as h:
        assert await readiness(h) == (200, [])
        await fail_over(admin, name, read_only=True)

        async def refused_as_read_only() -> bool:
            response = await h.pagerduty(recent_pagerduty(PD_TRIGGERED, store.clock.now()))
            assert response.status == 503  # seen: 500 with a traceback
            return bool(await response.json() == {
                "error": "store unavailable (read-only), retry later"})

        with capture_logs() as logs:
            await eventually(refused_as_read_only)  # the first may meet a dropped connection
            trigger = recent_pagerduty(PD_TRIGGERED, store.clock.now())
            statuses = [(await h.pagerduty(trigger)).status for _ in range(5)]
        assert statuses == [503] * 5
        assert not any(line.get("exc_info") for line in logs)

        status, [problem] = await readiness(h)
        assert status == 503  # seen: "ready"
        assert problem.startswith(
            f"store: PostgreSQL unavailable (read-only) at 127.0.0.1:5432/{name}: ")
        assert "read-only transaction" in problem and "writable primary" in problem

        await fail_over(admin, name, read_only=False)

        async def ready() -> bool:
            return (await readiness(h))[0] == 200

        await eventually(ready)
        fresh = recent_pagerduty(PD_TRIGGERED, store.clock.now())
        fresh["event"]["id"] = "ev-after-failover"  # the ones before may have been stored
        assert (await h.pagerduty(fresh)).status == 202


async def test_refused_connections_are_503_with_the_reason() -> None:
    target = urlsplit(postgres_or_skip())
    proxy = CuttableProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    dsn = target._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
    store = Store(PostgresBackend(dsn, connect_timeout_s=1.0, pool_size=1))
    try:
        async with harness_on(store) as h:
            assert await readiness(h) == (200, [])
            proxy.cut()
            response = await h.pagerduty(recent_pagerduty(PD_TRIGGERED, store.clock.now()))
            assert (response.status, await response.json()) == (
                503, {"error": "store unavailable (unreachable), retry later"})
            status, [problem] = await readiness(h)
            assert status == 503
            assert problem.startswith(
                f"store: PostgreSQL unavailable (unreachable) at 127.0.0.1:{proxy.port}")
    finally:
        await proxy.close()


@pytest.mark.slow
async def test_serve_on_a_read_only_database_names_the_store(
        database: tuple[str, asyncpg.Connection], tmp_path: Path) -> None:
    url, admin = database
    name = urlsplit(url).path.lstrip("/")
    await fail_over(admin, name, read_only=True)
    env = clean_env(TIER2GATE_DATABASE_URL=url, TIER2GATE_HTTP__PORT=str(free_port()),
                    TIER2GATE_LOG__FORMAT="json",
                    TIER2GATE_MODE="shadow")  # no vendors configured: live mode would refuse
    proc = await asyncio.create_subprocess_exec(
        *tier2gate("serve"), cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    lines = [json.loads(line) for line in output.decode().splitlines() if line.startswith("{")]
    [failure] = [line for line in lines if line["level"] == "error"]
    assert failure["event"] == "serve.store_unavailable"  # not cannot_listen, not a traceback
    assert failure["error"].startswith(
        f"PostgreSQL unavailable (read-only) at 127.0.0.1:5432/{name}: ")
    assert "Traceback" not in output.decode()
