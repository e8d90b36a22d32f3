"""The domain coverage gate: `.ci/run` measures the pure domain's branch coverage under its own
unit tests and fails below 100% (issue 16's quality gates)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.unit.test_gate import readme_test_command

REPO = Path(__file__).resolve().parents[2]


def test_coverage_is_branch_coverage_of_the_domain_and_fails_below_100() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["coverage"]
    assert config["run"]["branch"] is True
    assert config["run"]["source"] == ["daemon/domain"]
    assert config["report"]["fail_under"] == 100


def test_ci_runs_the_coverage_gate_after_the_readme_command() -> None:
    steps = (REPO / ".ci" / "run").read_text().splitlines()
    measure = next(n for n, line in enumerate(steps) if line.startswith(".venv/bin/coverage run"))
    assert steps.index(readme_test_command()) < measure
    assert "daemon\\.domain" in "".join(steps[measure - 3:measure])  # the tests that import it
    assert steps[measure + 1] == ".venv/bin/coverage report"  # exits non-zero below fail_under
