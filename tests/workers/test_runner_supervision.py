"""What the runner does with surprises: a handler's bug is logged with its traceback as one
JSON line (scrubbed), and a heartbeat that dies is logged and started again."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import structlog

from daemon.clock import SystemClock
from daemon.logging import configure
from daemon.metrics import Metrics
from daemon.store import Job, JobState, NewJob, Store
from daemon.store.sqlite import SqliteBackend
from daemon.workers.runner import JobRunner
from tests.support import eventually
from tests.workers.test_runner import FAST, _is, only_job, running

SECRET = "xoxb-0000-secret-token"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The daemon's real log pipeline (JSON renderer, exception formatter, scrubber)."""
    stream = io.StringIO()
    configure(level="INFO", fmt="json", secrets=[SECRET], stream=stream)
    yield stream
    structlog.reset_defaults()


def events(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_handler_bug_is_logged_with_its_traceback_as_one_scrubbed_json_line(
        tmp_path: Path, log_lines: io.StringIO) -> None:
    store = Store(SqliteBackend(tmp_path / "t.db"), SystemClock())
    await store.open()

    async def buggy(_job: Job) -> None:
        nothing: dict[str, str] = {}
        print(nothing["missing"])  # the bug under test: a KeyError nobody named

    async def leaky(_job: Job) -> None:
        raise ValueError(f"token {SECRET} in a surprise")

    await store.enqueue(NewJob("buggy", "buggy:1"), NewJob("leaky", "leaky:1"))
    settings = FAST.model_copy(update={"max_attempts": 1})
    async with running(JobRunner(store, {"buggy": buggy, "leaky": leaky}, settings, Metrics())):
        for key in ("buggy", "leaky"):
            await eventually(partial(_dead, store, key))
    await store.close()

    crashed = [e for e in events(log_lines) if e["event"] == "job.crashed"]
    assert {e["job_kind"] for e in crashed} == {"buggy", "leaky"}
    for event in crashed:
        trace = str(event["exception"])
        assert trace.startswith("Traceback (most recent call last)"), trace
        assert "in buggy" in trace or "in leaky" in trace
    assert all("\n" not in line for line in log_lines.getvalue().splitlines())
    assert SECRET not in log_lines.getvalue()
    assert "[redacted]" in log_lines.getvalue()


async def _dead(store: Store, kind: str) -> bool:
    return any(job.kind == kind for job in await store.list_jobs(JobState.DEAD))


class FlakyLeaseStore(Store):
    """A real store whose lease extension fails once with an error nobody expects: the kind
    of surprise that used to end the heartbeat task without a word."""

    def __init__(self, path: Path) -> None:
        super().__init__(SqliteBackend(path), SystemClock())
        self.extensions = 0

    async def extend_lease(self, job_id: int, owner: str, lease_s: float) -> bool:
        self.extensions += 1
        if self.extensions == 1:
            raise RuntimeError("lease table surprise")
        return await super().extend_lease(job_id, owner, lease_s)


async def test_a_heartbeat_that_dies_is_logged_and_restarted(
        tmp_path: Path, log_lines: io.StringIO) -> None:
    store = FlakyLeaseStore(tmp_path / "t.db")
    await store.open()
    release = asyncio.Event()

    async def long(_job: Job) -> None:
        await release.wait()

    settings = FAST.model_copy(update={"lease_s": 0.3})  # a beat every 0.1 s
    await store.enqueue(NewJob("long", "long:1"))
    job = await only_job(store)

    async def beaten_again() -> bool:
        return store.extensions >= 3

    async with running(JobRunner(store, {"long": long}, settings, Metrics())):
        await eventually(beaten_again)
        release.set()
        await eventually(lambda: _is(store, job.id, JobState.DONE))
    await store.close()

    [restarted] = [e for e in events(log_lines) if e["event"] == "jobs.heartbeat_restarted"]
    assert "RuntimeError: lease table surprise" in str(restarted["exception"])
