"""SIGKILL mid-job: after restart the job runs again and its effect, keyed, happens once."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from daemon.store import JobState, NewJob, Store
from daemon.store.sqlite import SqliteBackend
from tests.support import eventually
from tests.support_process import clean_env, free_port

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


class EffectSink:
    """A vendor that de-duplicates on Idempotency-Key, as PagerDuty does on incident_key."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.effects: set[str] = set()

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers["Idempotency-Key"]
        self.requests.append(key)
        self.effects.add(key)
        return web.json_response({"ok": True}, status=201)


async def start_worker(db: Path, effect_url: str, log: Path, hang: bool
                       ) -> asyncio.subprocess.Process:
    env = clean_env(HANG_AFTER_EFFECT="1" if hang else "0")
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.scenarios.crash_worker", str(db), str(free_port()),
            effect_url, cwd=REPO, env=env, stdout=out,
            stderr=out,
        )


async def test_a_job_killed_mid_flight_is_rerun_and_its_effect_happens_once(tmp_path: Path
                                                                           ) -> None:
    sink = EffectSink()
    app = web.Application()
    app.router.add_post("/effect", sink.handle)
    db = tmp_path / "t.db"
    log = tmp_path / "worker.log"
    async with TestServer(app) as server:
        store = Store(SqliteBackend(db))
        await store.open()
        await store.enqueue(NewJob("effect", "effect:esc-1"))
        [job] = await store.list_jobs(JobState.QUEUED)

        first = await start_worker(db, str(server.make_url("/effect")), log, hang=True)
        await eventually(lambda: _true_if(len(sink.requests) == 1), timeout_s=20)
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        interrupted = await store.get_job(job.id)
        assert interrupted is not None
        assert interrupted.state == JobState.RUNNING

        second = await start_worker(db, str(server.make_url("/effect")), log, hang=False)
        await eventually(lambda: _job_done(store, job.id), timeout_s=20)
        second.send_signal(signal.SIGTERM)
        assert await second.wait() == 0
        await store.close()
    assert sink.requests == ["effect:esc-1", "effect:esc-1"], log.read_text()
    assert sink.effects == {"effect:esc-1"}
    assert "jobs.recovered_after_crash" in log.read_text()


async def _true_if(value: bool) -> bool:
    return value


async def _job_done(store: Store, job_id: int) -> bool:
    job = await store.get_job(job_id)
    return job is not None and job.state == JobState.DONE
