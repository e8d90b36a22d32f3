"""`tier2gate report` judges an undecided escalation's weekend by the policy's business time
zone, and a broken policy does not hide the figures (UTC stands in, stderr says so)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.domain.events import EventKind
from daemon.domain.gate import Phase
from daemon.store import Changes, NewEvent, open_store
from tests.support_process import clean_env, tier2gate
from tests.unit.test_report import row

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "policy.yaml"


def last_friday_2000_utc() -> datetime:
    """A Friday 20:00 UTC within the last two weeks: Saturday 09:00 (or 08:00) in Auckland."""
    now = datetime.now(UTC)
    day = (now - timedelta(days=2)).replace(hour=20, minute=0, second=0, microsecond=0)
    while day.weekday() != 4:
        day -= timedelta(days=1)
    return day


async def seed(db: Path, opened: datetime) -> None:
    store = open_store(f"sqlite:///{db}")
    await store.open()
    try:
        await store.apply(Changes(escalation=row("esc-nz", opened, Phase.RECEIVED, None),
                                  events=(NewEvent("esc-nz", EventKind.RECEIVED, "tier2gate",
                                                   opened.timestamp(), {}),)))
    finally:
        await store.close()


def report(tmp_path: Path, policy: Path) -> subprocess.CompletedProcess[str]:
    env = clean_env(TIER2GATE_DATABASE_URL=f"sqlite:///{tmp_path / 't.db'}",
                    TIER2GATE_POLICY_FILE=str(policy))
    return subprocess.run(tier2gate("report", "--since", "30d", "--format", "json"),
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_the_weekend_of_an_undecided_escalation_is_the_business_time_zones(
        tmp_path: Path) -> None:
    asyncio.run(seed(tmp_path / "t.db", last_friday_2000_utc()))
    text = SHIPPED.read_text()
    assert "  timezone: UTC " in text
    auckland = tmp_path / "policy.yaml"
    auckland.write_text(text.replace("  timezone: UTC ", "  timezone: Pacific/Auckland "))
    done = report(tmp_path, auckland)
    assert done.returncode == 0, done.stderr
    days = json.loads(done.stdout)["escalations_by_day"]
    assert (days["weekend"], days["weekday"]) == (1, 0)

    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("  timezone: UTC ", "  timezone: Mars/Olympus "))
    done = report(tmp_path, broken)
    assert done.returncode == 0 and "invalid policy, the report uses UTC weekends" in done.stderr
    days = json.loads(done.stdout)["escalations_by_day"]
    assert (days["weekend"], days["weekday"]) == (0, 1)
