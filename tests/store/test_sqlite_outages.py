"""SQLite failure modes are readiness failures and 503s (issue 13, deliverable 5).

Seen: the SQLite disk full gave correct 503s but `/readyz` stayed ready; SQLite locked by
another process made a Slack click wait 10 s for a 503, past Slack's 3 s, so the click was
lost. The failures are produced the real way: `PRAGMA max_page_count` makes SQLite itself
answer SQLITE_FULL ("database or disk is full"), `PRAGMA query_only` SQLITE_READONLY, and a
second process holding `BEGIN EXCLUSIVE` SQLITE_BUSY ("database is locked")."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from daemon.demo.payloads import button_press, decline_submission
from daemon.ingress.slack import STORE_WAIT_S
from daemon.sources.slack_ids import REASON_BLOCK
from daemon.store import Store
from daemon.store.sqlite import BUSY_TIMEOUT_S
from daemon.store.units import Sql, Stmt, Unit, UnitFactory
from tests.harness import Harness, recent_pagerduty, running
from tests.support_process import clean_env, free_port, tier2gate

PD_TRIGGERED = "pagerduty/zulip_triggered_v3.json"
BIG = 64 * 1024  # a delivery that needs new pages, not just room in a page the file has
SLACK_DEADLINE_S = 3.0


def on_writer(sql: str) -> UnitFactory[list[Any]]:
    """A statement for the daemon's own writer connection (where the PRAGMAs must apply)."""

    def unit() -> Unit[list[Any]]:
        rows = yield Stmt(Sql(sql, sql))
        return list(rows)

    return unit


async def readiness(h: Harness) -> tuple[int, list[str]]:
    response = await h.admin.get("/readyz")
    return response.status, (await response.json()).get("problems", [])


def big_webhook() -> bytes:
    """A PagerDuty delivery with a long description: it cannot fit in free room of a page."""
    body = recent_pagerduty(PD_TRIGGERED)
    body["event"]["data"]["description"] = "stack trace line\n" * (BIG // 17)
    return json.dumps(body).encode()


async def reopen(store: Store) -> None:
    """A fresh writer connection, as after the operator fixed the file and restarted."""
    await store.backend.close()
    await store.backend.open()


def click(n: int) -> dict[str, Any]:
    return button_press("esc-outage", "USMOC", "approve", "C0APPROVALS", "1700000000.000100",
                        f"1700000000.{n:06d}")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running(tmp_path) as h:
        await h.settle()  # the start-up work (the retention run) is over before the outage
        yield h


@pytest.fixture
def locker(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding SQLite's write lock on the harness database until stopped."""
    code = ("import sqlite3, sys\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n")
    with subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "harness.db")],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
        if proc.poll() is None:
            proc.kill()


def release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()  # the other process reads EOF, exits, and its lock goes with it
    proc.wait(timeout=5)


async def test_disk_full_is_503_and_readiness_says_disk_full_until_space_returns(
        harness: Harness) -> None:
    store = harness.store
    await store.backend.run(on_writer("PRAGMA max_page_count = 1"))  # = the pages it has now

    response = await harness.pagerduty(big_webhook())
    assert response.status == 503
    assert await response.json() == {"error": "store unavailable (disk full), retry later"}
    status, problems = await readiness(harness)
    assert status == 503  # seen: 200 "ready" while every webhook was refused
    [problem] = problems
    assert problem.startswith("store: SQLite unavailable (disk full) at ")
    assert "database or disk is full" in problem and "free space" in problem
    assert "failing since" in problem

    await store.backend.run(on_writer("PRAGMA max_page_count = 1073741823"))
    assert await readiness(harness) == (200, [])
    assert (await harness.pagerduty(big_webhook())).status == 202
    assert store.trouble is None


async def test_a_read_only_database_is_503_and_red_readiness(harness: Harness) -> None:
    await harness.store.backend.run(on_writer("PRAGMA query_only = 1"))

    response = await harness.pagerduty(recent_pagerduty(PD_TRIGGERED))
    assert (response.status, await response.json()) == (
        503, {"error": "store unavailable (read-only), retry later"})
    status, [problem] = await readiness(harness)
    assert status == 503
    assert problem.startswith("store: SQLite unavailable (read-only) at ")
    assert "attempt to write a readonly database" in problem

    await reopen(harness.store)
    assert await readiness(harness) == (200, [])


async def test_a_click_while_another_process_locks_the_database_is_answered_in_time(
        harness: Harness, locker: subprocess.Popen[str]) -> None:
    started = time.monotonic()
    response = await harness.slack_interaction(click(1))
    elapsed = time.monotonic() - started
    assert elapsed < SLACK_DEADLINE_S  # seen: 10 s, so Slack had dropped the click already
    assert response.status == 503  # Slack marks the click failed: the approver presses again
    text = await response.text()
    assert "database is unavailable (locked)" in text and "page them in PagerDuty" in text

    # A burst of clicks behind a locked writer: every one is answered within Slack's 3 s.
    started = time.monotonic()
    answers = await asyncio.gather(*(harness.slack_interaction(click(n)) for n in range(2, 6)))
    assert time.monotonic() - started < SLACK_DEADLINE_S
    assert {answer.status for answer in answers} == {503}

    webhook = await harness.pagerduty(recent_pagerduty(PD_TRIGGERED))
    assert (webhook.status, await webhook.json()) == (
        503, {"error": "store unavailable (locked), retry later"})
    status, [problem] = await readiness(harness)
    assert status == 503
    assert problem.startswith("store: SQLite unavailable (locked) at ")
    assert "database is locked" in problem

    release(locker)
    assert await readiness(harness) == (200, [])
    # Nothing answered 503 was written afterwards behind the person's back.
    assert await harness.store.count_deliveries() == 0
    assert (await harness.slack_interaction(click(7))).status == 200
    assert await harness.store.count_deliveries() == 1


async def test_a_form_or_command_while_locked_tells_the_person_in_slack(
        harness: Harness, locker: subprocess.Popen[str]) -> None:
    started = time.monotonic()
    command = await harness.slack_command("checkout is down for Acme")
    assert time.monotonic() - started < SLACK_DEADLINE_S
    assert command.status == 200  # Slack shows a command's error only from a 200
    answer = await command.json()
    assert answer["response_type"] == "ephemeral"
    assert "database is unavailable (locked)" in answer["text"]

    form = decline_submission("esc-outage", "USMOC", "C0APPROVALS", "1700000000.000100",
                              "Customer can wait for Monday")
    started = time.monotonic()
    response = await harness.slack_interaction(form)
    assert time.monotonic() - started < SLACK_DEADLINE_S
    assert response.status == 200  # the modal stays open, with what was typed
    answer = await response.json()
    assert answer["response_action"] == "errors"
    [(block, message)] = answer["errors"].items()
    assert block == REASON_BLOCK and "(locked)" in message


def test_the_busy_timeout_leaves_room_inside_slacks_deadline() -> None:
    # The writer is one thread: a request can wait out the batch ahead of it and its own.
    assert 2 * BUSY_TIMEOUT_S <= STORE_WAIT_S < SLACK_DEADLINE_S


async def test_one_log_line_per_outage_not_one_per_request(harness: Harness) -> None:
    store: Store = harness.store
    with capture_logs() as logs:
        await store.backend.run(on_writer("PRAGMA query_only = 1"))
        for _ in range(3):
            assert (await harness.pagerduty(recent_pagerduty(PD_TRIGGERED))).status == 503
        await reopen(store)
        assert (await harness.pagerduty(recent_pagerduty(PD_TRIGGERED))).status == 202
    events = [line["event"] for line in logs if line["event"].startswith("store.")]
    assert events == ["store.unavailable", "store.recovered"]
    assert not any("exc_info" in line or "exception" in line for line in logs)


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in: a read-only one, or (as root, whom file
    modes do not stop) one under sysfs, which refuses new entries to everyone."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except PermissionError:
        return folder
    folder = Path("/sys/tier2gate-test")
    try:
        folder.mkdir()
    except OSError:
        return folder
    folder.rmdir()
    pytest.skip("no folder here refuses writes to this user")


@pytest.mark.slow
def test_serve_in_an_unwritable_folder_names_the_database_not_the_listener(
        tmp_path: Path) -> None:
    db = unwritable_folder(tmp_path) / "tier2gate.db"
    env = clean_env(TIER2GATE_DATABASE_URL=f"sqlite:///{db}",
                    TIER2GATE_HTTP__PORT=str(free_port()), TIER2GATE_LOG__FORMAT="json",
                    TIER2GATE_MODE="shadow")  # no vendors configured: live mode would refuse
    done = subprocess.run(tier2gate("serve"), cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    [failure] = [line for line in lines if line["level"] == "error"]
    assert failure["event"] == "serve.store_unavailable"  # seen: serve.cannot_listen
    assert failure["error"].startswith(f"SQLite unavailable (read-only) at {db}: cannot create")
