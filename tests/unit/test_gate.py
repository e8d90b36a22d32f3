"""The gate CI runs: the README Quickstart's second command, copied verbatim into `.ci/run`,
type-checks the tests as strictly as the daemon (`strict = true` in pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def readme_test_command() -> str:
    """The command under the Quickstart's `# 2.` comment (its first line that is not one)."""
    text = (REPO / "README.md").read_text()
    lines = text[text.index("## Quickstart"):].splitlines()
    step = next(n for n, line in enumerate(lines) if line.startswith("# 2."))
    return next(line for line in lines[step + 1:] if not line.startswith("#"))


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    assert readme_test_command() in (REPO / ".ci" / "run").read_text().splitlines()


def test_the_gate_type_checks_the_tests_as_well_as_the_daemon() -> None:
    steps = [step.strip() for step in readme_test_command().split("&&")]
    assert ".venv/bin/mypy daemon tests" in steps, steps
    assert steps.index(".venv/bin/mypy daemon tests") < steps.index(".venv/bin/python -m pytest")


def test_the_gate_checks_the_import_contracts_right_after_the_types() -> None:
    steps = [step.strip() for step in readme_test_command().split("&&")]
    assert steps.index(".venv/bin/lint-imports") == steps.index(".venv/bin/mypy daemon tests") + 1
    assert steps.index(".venv/bin/lint-imports") < steps.index(".venv/bin/python -m pytest")
