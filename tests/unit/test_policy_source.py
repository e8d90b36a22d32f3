"""Policy edits take effect without a restart; a broken edit keeps the last good policy in
force and makes readiness say why."""

from __future__ import annotations

import os
from pathlib import Path

from daemon.domain.policy import Outcome
from daemon.policy_source import PolicySource

SHIPPED = (Path(__file__).resolve().parents[2] / "config" / "policy.yaml").read_text()


def write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))  # a distinct mtime even within one clock tick


def test_edits_are_picked_up_and_broken_ones_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    write(path, SHIPPED, 1_000_000_000)
    source = PolicySource(path)
    assert source.current().default_outcome is Outcome.RFH

    write(path, SHIPPED.replace("default_outcome: rfh", "default_outcome: ignore"),
          2_000_000_000)
    assert source.current().default_outcome is Outcome.IGNORE
    assert source.problem == ""

    write(path, SHIPPED.replace("outcome: emergency", "outcome: page-everyone", 1),
          3_000_000_000)
    assert source.current().default_outcome is Outcome.IGNORE  # the last good one
    assert "not reloaded, the previous one is in force" in source.problem
    assert "page-everyone" in source.problem

    write(path, SHIPPED, 4_000_000_000)
    assert source.current().default_outcome is Outcome.RFH
    assert source.problem == ""
