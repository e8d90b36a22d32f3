"""`tier2gate report` breaks every figure down by Tier 1 team, as JSON and as text."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.domain.events import EventKind
from daemon.domain.gate import Phase
from daemon.reporting import Report
from daemon.store import Changes, NewEvent, open_store
from tests.unit.test_report import PU, SEK, row


def _seed(database: Path) -> None:
    """An approved EMEA emergency and an AMER one declined, opened an hour ago, and an AMER
    request for help, stored the way the daemon stores them."""
    async def write() -> None:
        store = open_store(f"sqlite:///{database}")
        await store.open()
        opened = datetime.now(UTC) - timedelta(hours=1)
        at = opened.timestamp()
        for esc_id, team, phase, outcome, events in (
                ("esc-emea", "emea", Phase.PAGING, "emergency",
                 (("approval_requested", 60), ("approved", 360))),
                ("esc-amer", "amer", Phase.DECLINED, "emergency",
                 (("approval_requested", 60), ("declined", 660))),
                ("esc-amer2", "amer", Phase.RFH, "rfh", ())):
            stored = replace(row(esc_id, opened, phase, outcome, weekend=False,
                                 criteria=(PU, SEK) if outcome == "emergency" else ()),
                             team=team)
            await store.apply(Changes(escalation=stored, events=(
                NewEvent(esc_id, EventKind.RECEIVED, "incident_io", at),
                *(NewEvent(esc_id, EventKind(event), "U1", at + after, {"reason": "not ours"})
                  for event, after in events))))
        await store.close()

    asyncio.run(write())


def test_report_json_breaks_every_figure_down_by_team(
        configured: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(configured)
    assert main(["report", "--since", "2h", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["escalations"] == 3
    teams = data["teams"]
    assert sorted(teams) == ["amer", "emea"]
    emea, amer = teams["emea"], teams["amer"]
    assert (emea["escalations"], amer["escalations"]) == (1, 2)
    assert (emea["by_outcome"]["emergency"], amer["by_outcome"]["rfh"]) == (1, 1)
    assert emea["time_to_approve"] == {"samples": 1, "p50_minutes": 5.0, "p90_minutes": 5.0}
    assert amer["time_to_approve"]["samples"] == 0
    assert [d["escalation_id"] for d in amer["declines"]] == ["esc-amer"]
    assert emea["declines"] == []
    assert {c["criterion"] for c in emea["top_criteria"]} == {PU, SEK}
    assert emea["teams"] == {} and amer["teams"] == {}
    # Every figure of the report is there for each team.
    assert set(emea) == set(Report.model_fields) <= set(data)


def test_report_text_has_a_line_per_team(configured: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    _seed(configured)
    assert main(["report", "--since", "2h"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("By team (minutes p50: to approve, to acknowledge)")
    assert lines[start + 2].split() == ["amer", "2", "1", "0", "0.0%", "-", "-", "1", "0"]
    assert lines[start + 3].split() == ["emea", "1", "1", "0", "0.0%", "5.0", "-", "0", "0"]
