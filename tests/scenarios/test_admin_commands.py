"""Operator commands on real stores: migrate, export/import SQLite -> PostgreSQL losing
nothing, listing and requeueing dead-lettered jobs, check-config on a broken policy, prune."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from daemon.clock import ManualClock
from daemon.store import Changes, DeliveryState, JobState, NewJob, Store
from daemon.store.sqlite import SqliteBackend
from tests.support import POSTGRES_URL, postgres_or_skip
from tests.support_process import clean_env, free_port, tier2gate

pytestmark = pytest.mark.slow


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tier2gate(*args), cwd=cwd, env=clean_env(**env), capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = postgres_or_skip()
    schema = f"t2g_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(url)
        await conn.execute(sql)
        await conn.close()

    asyncio.run(admin(f'CREATE SCHEMA "{schema}"'))
    yield f"{POSTGRES_URL}?search_path={schema}"
    asyncio.run(admin(f'DROP SCHEMA "{schema}" CASCADE'))


def sorted_lines(path: Path) -> list[str]:
    return sorted(path.read_text().splitlines())


@pytest.mark.postgres
def test_sqlite_to_postgresql_loses_nothing(tmp_path: Path, pg_url: str) -> None:
    demo = run(["demo", "--auto-approve", "--port", str(free_port())], tmp_path)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    sqlite = "sqlite:///var/demo/tier2gate.db"
    exported = run(["export", "dump.jsonl"], tmp_path, TIER2GATE_DATABASE_URL=sqlite)
    assert exported.returncode == 0, exported.stderr
    assert "3 escalations" in exported.stderr  # the demo's S1, its RFH and its Zendesk ticket
    migrated = run(["migrate"], tmp_path, TIER2GATE_DATABASE_URL=pg_url)
    assert (migrated.returncode, migrated.stdout.strip()) == (0, "schema is up to date (postgres)")
    imported = run(["import", "dump.jsonl"], tmp_path, TIER2GATE_DATABASE_URL=pg_url)
    assert imported.returncode == 0, imported.stderr
    again = run(["export", "copy.jsonl"], tmp_path, TIER2GATE_DATABASE_URL=pg_url)
    assert again.returncode == 0, again.stderr
    assert sorted_lines(tmp_path / "dump.jsonl") == sorted_lines(tmp_path / "copy.jsonl")
    twice = run(["import", "dump.jsonl"], tmp_path, TIER2GATE_DATABASE_URL=pg_url)
    assert twice.returncode == 1
    assert "import needs an empty database" in twice.stderr

    def report(url: str) -> dict[str, object]:
        out = run(["report", "--format", "json"], tmp_path, TIER2GATE_DATABASE_URL=url)
        figures = json.loads(out.stdout)
        assert isinstance(figures, dict)
        for window in (figures, *figures["teams"].values()):  # each team's is the same window
            window.pop("since")
            window.pop("until")
        return figures

    assert report(sqlite) == report(pg_url)


def test_a_dead_lettered_job_is_listed_and_requeued(tmp_path: Path) -> None:
    db = tmp_path / "t.db"

    async def seed() -> int:
        store = Store(SqliteBackend(db))
        await store.open()
        await store.enqueue(NewJob("page", "page:esc-1", escalation_id="esc-1"))
        [job] = await store.claim_jobs("w", 30, 1)
        await store.dead_letter_job(job.id, "w", "gave up after 10 attempts: HTTP 503", None)
        await store.close()
        return job.id

    job_id = asyncio.run(seed())
    url = f"sqlite:///{db}"
    listed = run(["jobs", "--state", "dead"], tmp_path, TIER2GATE_DATABASE_URL=url)
    assert listed.returncode == 0
    assert "page" in listed.stdout
    assert "HTTP 503" in listed.stdout
    assert run(["jobs", "retry", str(job_id)], tmp_path,
               TIER2GATE_DATABASE_URL=url).returncode == 0
    again = run(["jobs", "retry", str(job_id)], tmp_path, TIER2GATE_DATABASE_URL=url)
    assert again.returncode == 1
    assert "is not dead-lettered" in again.stderr

    async def state() -> JobState:
        store = Store(SqliteBackend(db))
        await store.open()
        job = await store.get_job(job_id)
        await store.close()
        assert job is not None
        return job.state

    assert asyncio.run(state()) == JobState.QUEUED


def test_check_config_names_the_rule_and_line_of_a_bad_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    good = (Path(__file__).resolve().parents[2] / "config" / "policy.yaml").read_text()
    broken = good.replace("      test_mode: true\n", "      test_mood: true\n", 1)
    assert broken != good
    policy.write_text(broken)
    result = run(["check-config"], tmp_path, TIER2GATE_POLICY_FILE=str(policy))
    assert result.returncode == 1
    line = broken.splitlines().index("      test_mood: true") + 1
    assert f"{policy}:{line}: rule 'test incidents are ignored'" in result.stderr
    assert "test_mood" in result.stderr


def test_prune_dry_run_counts_and_prune_removes_old_bodies_and_finished_jobs(tmp_path: Path
                                                                              ) -> None:
    """Old rows are written at a fixed point long ago and fresh ones at the real now, so the
    outcome does not depend on the date the test runs."""
    db = tmp_path / "t.db"

    async def seed(at: float, name: str) -> None:
        store = Store(SqliteBackend(db), ManualClock(at))
        await store.open()
        row = await store.record_delivery("pagerduty", name, "service.updated", b"{}")
        assert row is not None
        await store.apply(Changes(delivery_done=(row, DeliveryState.IGNORED, "not ours")))
        await store.enqueue(NewJob("thread_note", f"note:{name}"))
        [job] = await store.claim_jobs("w", 30, 1)
        await store.complete_job(job.id, "w")
        await store.close()

    asyncio.run(seed(1_000_000_000.0, "old"))
    asyncio.run(seed(time.time(), "fresh"))
    url = f"sqlite:///{db}"
    dry = run(["prune", "--dry-run"], tmp_path, TIER2GATE_DATABASE_URL=url)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip() == ("would remove 1 deliveries, 1 jobs (escalations are kept: "
                                  "retention.escalations_days is 0)")
    done = run(["prune"], tmp_path, TIER2GATE_DATABASE_URL=url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("removed 1 deliveries, 1 jobs")
    again = run(["prune"], tmp_path, TIER2GATE_DATABASE_URL=url,
                TIER2GATE_RETENTION__ESCALATIONS_DAYS="365")
    assert again.stdout.strip() == "removed 0 deliveries, 0 jobs, 0 escalations"
