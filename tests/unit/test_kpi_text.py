"""The KPIs in `tier2gate report` text: names that came from incidents (customers, services,
references) stay one printable ASCII line each, whatever they hold, like the rest of it."""

from __future__ import annotations

import pytest

from daemon.reporting.kpi_text import render_kpis
from daemon.reporting.kpis import build_kpis
from daemon.settings import FollowthroughSettings, KpiSettings
from daemon.store.kpi_reads import EmergencyRow, KpiFigures
from tests.hostile import HOSTILE

DAY = 86400.0


def lines_for(name: str) -> list[str]:
    overdue = EmergencyRow(
        escalation_id="esc-1", team="default", reference=name, title=name, severity="S1",
        engaged_at=None, received_at=0.0, paged_at=None, acknowledged_at=None,
        resolved_at=None, evidence_checked=False, evidence_complete=False,
        retro_opened_at=DAY, retro_url=f"https://git.example.com/{name}", retro_closed=False,
        retro_complete=False, overdue_s=0.0, open_due_at=None)
    figures = KpiFigures(emergencies=(overdue,), customers=((name, 3), ("Globex", 2)),
                         services=((name, 2),))
    return render_kpis(build_kpis(figures, now_s=30 * DAY, until_s=30 * DAY, kpi=KpiSettings(),
                                  followthrough=FollowthroughSettings()))


@pytest.mark.parametrize("name", [*HOSTILE, "Acme\x1b[2J\x1b[31m all targets met",
                                  "Müller GmbH \u202eevil", "Acme\tCorp"])
def test_names_from_incidents_stay_on_their_line(name: str) -> None:
    lines = lines_for(name)
    assert len(lines) == len(lines_for("Acme"))  # no line added, none taken away
    for line in lines:
        assert line.isascii() and line.isprintable(), repr(line)
