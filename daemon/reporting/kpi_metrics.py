"""The KPIs as Prometheus gauges, refreshed by a `/metrics` scrape at most once a minute.

`tier2gate_kpi{kpi,severity}` holds each figure over the last 30 days (minutes as the p90,
shares as 0-1) and `tier2gate_kpi_target_met{kpi,severity}` whether it meets its target; a
figure nothing was counted for is removed rather than shown as 0, so an alert on
`tier2gate_kpi_target_met == 0` fires only on a real miss.
"""

from __future__ import annotations

import contextlib
import time

from daemon.metrics import Metrics
from daemon.reporting.kpis import Kpis, load_kpis
from daemon.settings import Settings
from daemon.store import Store

KPI_WINDOW_S = 30 * 86400.0
REFRESH_S = 60.0  # a scrape every 15 s must not run the KPI queries every 15 s


def _figures(kpis: Kpis) -> list[tuple[str, str, float | None, bool | None]]:
    """(kpi, severity, value, meets) for every gauge."""
    found: list[tuple[str, str, float | None, bool | None]] = [
        ("ack_p90_minutes", a.severity, a.p90_minutes, a.meets) for a in kpis.time_to_acknowledge]
    found += [("retro_completion", r.severity, r.share, r.meets) for r in kpis.retro_completion]
    found += [
        ("engage_p90_minutes", "", kpis.time_to_engage.p90_minutes, None),
        ("reopen_rate", "", kpis.reopen_rate.share, kpis.reopen_rate.meets),
        ("update_cadence_adherence", "", kpis.update_cadence.share_within,
         kpis.update_cadence.meets),
        ("evidence_complete", "", kpis.evidence_complete.share, kpis.evidence_complete.meets),
        ("overdue_retros", "", float(len(kpis.overdue_retros)), None),
    ]
    return found


def publish(metrics: Metrics, kpis: Kpis) -> None:
    """Set (or remove) every KPI gauge from `kpis`; a severity no longer among the figures
    (none in the window, no target) loses its gauges too."""
    figures = _figures(kpis)
    current = {(kpi, severity) for kpi, severity, _value, _meets in figures}
    for gauge in (metrics.kpi, metrics.kpi_met):
        for labels in [tuple(sample.labels.values()) for family in gauge.collect()
                       for sample in family.samples]:
            if labels not in current:
                with contextlib.suppress(KeyError):
                    gauge.remove(*labels)
    for kpi, severity, value, meets in figures:
        for gauge, number in ((metrics.kpi, value),
                              (metrics.kpi_met, None if meets is None else float(meets))):
            if number is None:
                with contextlib.suppress(KeyError):  # never set: nothing to remove
                    gauge.remove(kpi, severity)
            else:
                gauge.labels(kpi, severity).set(number)


async def refresh(metrics: Metrics, store: Store, settings: Settings) -> None:
    """Recompute the gauges when the last refresh is older than `REFRESH_S`."""
    if metrics.kpi_refreshed_s and time.monotonic() - metrics.kpi_refreshed_s < REFRESH_S:
        return
    now_s = store.clock.now()
    publish(metrics, await load_kpis(store, now_s - KPI_WINDOW_S, now_s, kpi=settings.kpi,
                                     followthrough=settings.followthrough))
    metrics.kpi_refreshed_s = time.monotonic()
