"""The runbooks are what an operator reads at 2 a.m.: every job kind `tier2gate jobs` can list
is named there, and the cheat sheet's commands take the arguments the runbooks give them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from daemon.jobs.registry import handlers
from daemon.metrics import Metrics
from daemon.store import Store
from daemon.store.sqlite import SqliteBackend
from daemon.wiring import build_parts
from tests.harness import base_settings

RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"


def job_kinds(tmp_path: Path) -> set[str]:
    """Every job kind the daemon has a handler for, wired the way `serve` wires itself."""
    store = Store(SqliteBackend(tmp_path / "kinds.db"))
    parts = build_parts(base_settings(), store, store.clock, Metrics())
    return set(handlers(parts.deps))


def test_every_job_kind_is_named_in_the_runbooks(tmp_path: Path) -> None:
    names = (RUNBOOKS / "README.md").read_text(encoding="utf-8")
    table = (RUNBOOKS / "job-dead-lettered.md").read_text(encoding="utf-8")
    kinds = job_kinds(tmp_path)
    assert len(kinds) > 15
    assert {k for k in kinds if f"`{k}`" not in names} == set()
    assert {k for k in kinds if f"`{k}`" not in table} == set()


def systemd_logs_function() -> str:
    text = (RUNBOOKS / "README.md").read_text(encoding="utf-8")
    [line] = [line for line in text.splitlines() if line.startswith("logs() { journalctl")]
    return line.split("#")[0].strip()


@pytest.mark.parametrize("runbook", sorted(p.name for p in RUNBOOKS.glob("*.md")))
def test_the_systemd_cheat_sheet_turns_every_runbook_duration_into_a_journalctl_time(
        runbook: str) -> None:
    """journalctl refuses an unsigned `24h` ("Failed to parse timestamp"): the cheat sheet's
    `logs` must make it relative, for every `logs <duration>` a runbook uses."""
    text = (RUNBOOKS / runbook).read_text(encoding="utf-8")
    function = systemd_logs_function()
    for duration in re.findall(r"\blogs (\d+[smhd])\b", text):
        since = subprocess.run(
            ["/bin/bash", "-c", f'{function.replace("journalctl", "echo")}; logs {duration}'],
            capture_output=True, text=True, check=True).stdout
        assert f"--since -{duration}" in since, (runbook, duration, since)
