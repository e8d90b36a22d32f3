"""docs/setup/: every `sh test` block runs as written against a configuration that points at
the local stand-ins (the demo's vendors), from a fresh folder, with `tier2gate` on PATH.

`tier2gate drill` waits for a person's click on the real vendors, so its block is an example;
tests/scenarios/test_drill.py runs it with `--auto-approve` against a running daemon.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.docs_blocks import Block, blocks, command_shim, run
from tests.harness import REPO
from tests.resilience.live import vendors
from tests.support_process import clean_env

pytestmark = pytest.mark.slow

SETUP = REPO / "docs" / "setup"
PAGES = sorted(SETUP.glob("*.md"))
ALL = [block for page in PAGES for block in blocks(page)]


def test_the_guide_has_every_page_and_the_readme_links_it() -> None:
    assert {page.name for page in PAGES} == {
        "README.md", "https.md", "slack.md", "pagerduty.md", "incident-io.md", "trackers.md",
        "zendesk.md", "jsm.md"}
    index = (SETUP / "README.md").read_text()
    for page in PAGES[1:]:
        assert f"]({page.name})" in index, page.name
    assert "](docs/setup/README.md)" in (REPO / "README.md").read_text()
    order = [index.index(f"**{step}**") for step in
             ("check-config", "doctor", "drill", "Shadow mode")]
    assert order == sorted(order)


@pytest.mark.parametrize("block", ALL, ids=[block.name for block in ALL])
async def test_every_command_in_the_setup_guide_runs_against_the_stand_ins(
        block: Block, tmp_path: Path) -> None:
    async with vendors(tmp_path) as stand_ins:
        env = clean_env(**{
            **stand_ins.env(), "TIER2GATE_POLICY_FILE": str(REPO / "config" / "policy.yaml"),
            # doctor checks its shape: Slack's signing secrets are 32 hex digits
            "TIER2GATE_SLACK__SIGNING_SECRET": "0123456789abcdef" * 2})
        env["PATH"] = f"{command_shim(tmp_path)}:{env['PATH']}"
        done = await asyncio.to_thread(run, block, tmp_path, env)
    assert done.returncode == 0, f"{block.name}:\n{block.script}\n{done.stdout}{done.stderr}"
