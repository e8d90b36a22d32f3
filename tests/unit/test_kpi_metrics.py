"""The KPI gauges follow the figures: a severity with no figure any more leaves no gauge
behind (an old value would read as today's)."""

from __future__ import annotations

from daemon.metrics import Metrics
from daemon.reporting.kpi_metrics import publish
from daemon.reporting.kpis import Kpis, build_kpis
from daemon.settings import FollowthroughSettings, KpiSettings
from daemon.store.kpi_reads import EmergencyRow, KpiFigures

DAY = 86400.0


def paged(severity: str, acknowledged_after_s: float) -> EmergencyRow:
    return EmergencyRow(
        escalation_id=f"esc-{severity}", team="default", reference="INC-1", title="t",
        severity=severity, engaged_at=DAY, received_at=DAY, paged_at=DAY,
        acknowledged_at=DAY + acknowledged_after_s, resolved_at=DAY + 3600,
        evidence_checked=False, evidence_complete=False, retro_opened_at=None, retro_url="",
        retro_closed=False, retro_complete=False, overdue_s=0.0, open_due_at=None)


def test_a_severity_gone_from_the_window_leaves_no_gauge() -> None:
    metrics = Metrics()
    sample = metrics.registry.get_sample_value

    def kpis(figures: KpiFigures) -> Kpis:
        return build_kpis(figures, now_s=2 * DAY, until_s=2 * DAY, kpi=KpiSettings(),
                          followthrough=FollowthroughSettings())

    publish(metrics, kpis(KpiFigures(emergencies=(paged("S1", 300), paged("S3", 600)))))
    assert sample("tier2gate_kpi", {"kpi": "ack_p90_minutes", "severity": "S3"}) == 10.0
    publish(metrics, kpis(KpiFigures(emergencies=(paged("S1", 300),))))
    assert sample("tier2gate_kpi", {"kpi": "ack_p90_minutes", "severity": "S3"}) is None
    assert sample("tier2gate_kpi", {"kpi": "ack_p90_minutes", "severity": "S1"}) == 5.0
