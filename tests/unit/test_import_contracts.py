"""The import contracts (`lint-imports`, in the gate) hold today and catch a new wall breach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the `daemon` package under `root`, with `root`'s pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_an_inbound_parser_reaching_settings_and_ingress_reaching_jobs_break_the_gate(
        tmp_path: Path) -> None:
    shutil.copytree(REPO / "daemon", tmp_path / "daemon",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    assert lint_imports(tmp_path).returncode == 0

    for module, line in (("sources/desks.py", "import daemon.settings\n"),
                         ("ingress/slack.py", "import daemon.jobs.intake\n")):
        path = tmp_path / "daemon" / module
        path.write_text(path.read_text() + line)
    found = lint_imports(tmp_path)

    assert found.returncode != 0, found.stdout
    assert "sources (inbound vendor data) import nothing of ours but domain BROKEN" in found.stdout
    assert "ingress never imports the outbound adapters or the jobs BROKEN" in found.stdout
    assert "daemon.sources.desks -> daemon.settings" in found.stdout
