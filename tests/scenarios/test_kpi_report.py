"""The hand-checked month of KPIs (`tests/kpi_month.py`) as operators read it: in `report
--format json` and `report` text, on the dashboard and in `/api/escalations`."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.store import open_store
from tests.harness import HARNESS_START, running
from tests.kpi_month import EXPECTED, NOW_S, seed


def _seed(database: Path, base: float) -> None:
    async def write() -> None:
        store = open_store(f"sqlite:///{database}")
        await store.open()
        await seed(store, base)
        await store.close()

    asyncio.run(write())


def test_report_json_carries_the_hand_checked_kpis(
        configured: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The month ends now by the real clock: the command measures "now" with it too.
    _seed(configured, time.time() - NOW_S)
    assert main(["report", "--since", "30d", "--format", "json"]) == 0
    kpis = json.loads(capsys.readouterr().out)["kpis"]
    # The one quiet spell still going grows by the seconds between seeding and reporting.
    cadence, expected_cadence = kpis.pop("update_cadence"), dict(EXPECTED["update_cadence"])
    assert cadence.pop("overdue_minutes") == pytest.approx(
        expected_cadence.pop("overdue_minutes"), abs=0.5)
    assert cadence.pop("active_minutes") == pytest.approx(
        expected_cadence.pop("active_minutes"), abs=0.5)
    assert cadence.pop("share_within") == pytest.approx(
        expected_cadence.pop("share_within"), abs=0.002)
    assert cadence == expected_cadence
    assert kpis == {key: value for key, value in EXPECTED.items() if key != "update_cadence"}

    assert main(["report", "--since", "30d"]) == 0
    text = capsys.readouterr().out
    for line in ("S1                           3     10.0     20.0   <= 15 min: MISSED",
                 "Reopen rate                    2 of 5      40.0%   target <= 5%: MISSED",
                 "K3  amer  INC-K3  S2  open 18 days  https://gitlab.example/ops/-/issues/3",
                 "Evidence pack complete         3 of 4      75.0%   target >= 90%: MISSED",
                 "    emea                         2 of 2     100.0%   target >= 90%: met",
                 "    amer S1                      0 of 1       0.0%   target >= 95%: MISSED",
                 "Repeat customers            Acme 3 . Globex 2",
                 "Top services                checkout 2 . billing 1"):
        assert line in text, text


async def test_the_dashboard_and_its_api_show_the_hand_checked_kpis(tmp_path: Path) -> None:
    async with running(tmp_path) as daemon:
        await seed(daemon.store, HARNESS_START - NOW_S)
        await daemon.settle()
        answer = await daemon.admin.get("/api/escalations", params={"since": "30d"})
        assert answer.status == 200
        assert (await answer.json())["report"]["kpis"] == EXPECTED

        page = await (await daemon.admin.get("/", params={"since": "30d"})).text()
        section = page[page.index('<section id="kpis">'):]
        section = section[:section.index("</section>")]
        for shown in ("S1 minutes to acknowledge (p50 / p90, n=3)", "10.0 / 20.0",
                      "Reopen rate (2 of 5)", "40.0%", "S2 retros complete (0 of 1, 0 closed)",
                      "91.7%", "28.0 of 339.0 min overdue", "Complete evidence pack (3 of 4)",
                      "emea retros complete, S1 (1 of 1, 1 closed)",
                      "amer complete evidence pack (1 of 2)",
                      "open 18.0 days", 'href="https://gitlab.example/ops/-/issues/3"',
                      "Acme 3 · Globex 2", "checkout 2 · billing 1"):
            assert shown in section, section


async def test_metrics_carry_the_kpis_against_their_targets(tmp_path: Path) -> None:
    async with running(tmp_path) as daemon:
        await seed(daemon.store, HARNESS_START - NOW_S)
        await daemon.settle()
        assert (await daemon.admin.get("/metrics")).status == 200
        sample = daemon.metrics.registry.get_sample_value
        assert sample("tier2gate_kpi", {"kpi": "ack_p90_minutes", "severity": "S1"}) == 20.0
        assert sample("tier2gate_kpi_target_met",
                      {"kpi": "ack_p90_minutes", "severity": "S1"}) == 0.0
        assert sample("tier2gate_kpi", {"kpi": "reopen_rate", "severity": ""}) == 0.4
        assert sample("tier2gate_kpi", {"kpi": "update_cadence_adherence",
                                        "severity": ""}) == 0.9174
        assert sample("tier2gate_kpi", {"kpi": "overdue_retros", "severity": ""}) == 1.0
        # S2 has no acknowledgement target: a value, but no verdict.
        assert sample("tier2gate_kpi", {"kpi": "ack_p90_minutes", "severity": "S2"}) == 4.0
        assert sample("tier2gate_kpi_target_met",
                      {"kpi": "ack_p90_minutes", "severity": "S2"}) is None
