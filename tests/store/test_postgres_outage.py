"""PostgreSQL refusing connections ("database does not allow connections", SQLSTATE 55000):
readiness says 503 with the reason, and the job runner survives to run jobs afterwards."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest

from daemon.app import build_app
from daemon.settings import JobSettings, Settings
from daemon.store import Job, JobState, NewJob, Store
from daemon.store.postgres import PostgresBackend
from tests.harness import both_listeners
from tests.support import eventually, postgres_or_skip

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database() -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    url = postgres_or_skip()
    name = f"t2g_outage_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(url)._replace(path=f"/{name}").geturl(), admin
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_refused_connections_mean_503_and_the_runner_survives(
    database: tuple[str, asyncpg.Connection],
) -> None:
    url, admin = database
    name = urlsplit(url).path.lstrip("/")
    store = Store(PostgresBackend(url, connect_timeout_s=1.0, pool_size=2))
    ran: list[str] = []

    async def work(job: Job) -> None:
        ran.append(job.key)

    settings = Settings(jobs=JobSettings(poll_interval_s=0.05))
    app = build_app(settings, store, handlers={"work": work})
    async with both_listeners(app) as (client, read_side):
        assert (await client.get("/readyz")).status == 200
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = $1 AND pid <> pg_backend_pid()", name)
        response = await read_side.get("/readyz")
        assert response.status == 503
        [problem] = (await response.json())["problems"]
        assert problem.startswith("store: PostgreSQL unavailable")
        await asyncio.sleep(0.3)  # the runner polls against the refusing server meanwhile
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

        async def ready() -> bool:
            return (await client.get("/readyz")).status == 200

        await eventually(ready)
        await store.enqueue(NewJob("work", "work:after-outage"))

        async def done() -> bool:
            # The handler has run before the runner records the job done: wait for both.
            return ran == ["work:after-outage"] and bool(await store.list_jobs(JobState.DONE))

        await eventually(done)
        [job] = await store.list_jobs(JobState.DONE)
        assert job.key == "work:after-outage"
