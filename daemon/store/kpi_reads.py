"""Read units of the escalation KPIs (`daemon.reporting.kpis`), in both dialects.

One row per emergency of the window with the first or last time of the events the KPIs need
(emergencies are the few: the program aims at 10% of escalations), and per-name counts of
customers and services over every escalation of the window, grouped by the database. Nothing
else travels back, so the cost follows the window, as for the report's own figures.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from daemon.store.units import Sql, Stmt, Unit


@dataclass(frozen=True)
class EmergencyRow:
    """One emergency as the KPIs see it. Times are epoch seconds, None when it never
    happened; `overdue_s` adds up the quiet spells that ended, `open_due_at` is when the one
    still going (if any) fell due."""

    escalation_id: str
    team: str  # the Tier 1 team (`Gate.team`)
    reference: str
    title: str
    severity: str  # canonical (the policy's); "" when the policy did not know it
    engaged_at: float | None  # first approved or paged
    received_at: float | None
    paged_at: float | None
    acknowledged_at: float | None
    resolved_at: float | None  # the latest resolve
    evidence_checked: bool
    evidence_complete: bool
    retro_opened_at: float | None
    retro_url: str
    retro_closed: bool
    retro_complete: bool
    overdue_s: float
    open_due_at: float | None


@dataclass(frozen=True)
class KpiFigures:
    emergencies: tuple[EmergencyRow, ...] = ()
    resolved: int = 0  # escalations of the window that resolved at least once
    reopened: int = 0  # ... and of those, reopened at least once
    customers: tuple[tuple[str, int], ...] = ()  # (customer, escalations), busiest first
    services: tuple[tuple[str, int], ...] = ()


# One range of the window over the escalations: everything an emergency's KPIs need is kept
# in its columns (migration 0011's first times, 0012's KPI columns; `units._count_event`), so
# neither its `data` nor its timeline is read. An escalation no longer called an emergency
# counts if the SMOC was asked; the filter is answered from `escalations_figures`, and only the
# emergencies' rows are fetched.
EMERGENCIES = Sql.of(
    "SELECT id, team, reference, title, severity, first_approved, first_paged, first_received,"
    " first_acknowledged, last_resolved, evidence_checked, evidence_complete,"
    " first_retro_opened, retro_url, retro_closed, retro_complete, spells, spells_ended,"
    " last_due_at, overdue_s FROM escalations"
    " WHERE opened_at >= ? AND opened_at < ? AND drill = 0"
    " AND (outcome = 'emergency' OR first_approval_requested IS NOT NULL)"
    " ORDER BY opened_at, id")
_IN_WINDOW = " FROM escalations e WHERE e.opened_at >= ? AND e.opened_at < ? AND e.drill = 0"
# A test or tutorial incident (outcome `ignore`) drives nothing: left out of the drivers, and
# of the reopen rate (people practise resolving and reopening them).
_DRIVING = " AND (e.outcome IS NULL OR e.outcome <> 'ignore')"
# Escalations that resolved, and that were reopened, at least once: from the first times each
# escalation keeps (migration 0011), an index-only range of `escalations_figures` (which holds
# the outcome too).
REOPENS = Sql.of(
    "SELECT count(first_resolved) AS resolved, count(first_reopened) AS reopened"
    " FROM escalations e WHERE opened_at >= ? AND opened_at < ? AND drill = 0" + _DRIVING)


@functools.cache
def _drivers_sql(fields: int) -> Sql:
    """Escalations of the window grouped by customer and the values of `fields` service
    fields, from the `escalations_drivers` index alone (migration 0012: the customer and the
    custom fields are kept beside each escalation, so no row's `data` is parsed). Each field
    is one column `s<n>`; its name is an argument, before the window's."""
    sqlite = ", ".join(["customer AS c", *(f"json_extract(custom_fields, ?) AS s{n}"
                                           for n in range(fields))])
    postgres = ", ".join(["customer AS c", *(f"(custom_fields::jsonb ->> ?) AS s{n}"
                                             for n in range(fields))])
    groups = ", ".join(str(n + 1) for n in range(fields + 1))
    return Sql.of(
        f"SELECT {sqlite}, count(*) AS n" + _IN_WINDOW + _DRIVING + f" GROUP BY {groups}",
        f"SELECT {postgres}, count(*) AS n" + _IN_WINDOW + _DRIVING + f" GROUP BY {groups}")


class _Tally:
    """Counts per name typed by hand: "Acme Corp", "ACME  corp" and "acme corp" are one
    (case and spacing ignored, as the policy's `customer` condition reads them), shown as
    most often written."""

    def __init__(self) -> None:
        self.spellings: dict[str, dict[str, int]] = {}

    def add(self, name: str, count: int) -> None:
        spellings = self.spellings.setdefault(" ".join(name.split()).casefold(), {})
        spellings[name] = spellings.get(name, 0) + count

    def counts(self) -> dict[str, int]:
        return {min(spellings, key=lambda name: (-spellings[name], name)):
                sum(spellings.values()) for spellings in self.spellings.values()}


def _drivers(rows: Sequence[Any], fields: int) -> tuple[dict[str, int], dict[str, int]]:
    """Escalations per customer and per service: an escalation counts once per service it
    names, however many of the fields name it."""
    customers, services = _Tally(), _Tally()
    for row in rows:
        values = [row["c"], *(row[f"s{n}"] for n in range(fields))]
        names = [str(value).strip() if value is not None else "" for value in values]
        if names[0]:
            customers.add(names[0], int(row["n"]))
        seen: dict[str, str] = {}
        for name in names[1:fields + 1]:
            if name:
                seen.setdefault(" ".join(name.split()).casefold(), name)
        for service in seen.values():
            services.add(service, int(row["n"]))
    return customers.counts(), services.counts()


def _ranked(counts: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _time(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]  # REAL or numeric


def kpi_figures(since: float, until: float, service_fields: Sequence[str], *,
                sqlite: bool) -> Unit[KpiFigures]:
    """The KPIs' figures for escalations opened in [since, until), in one snapshot."""
    window = (since, until)
    rows = yield Stmt(EMERGENCIES, window)
    emergencies = tuple(
        EmergencyRow(
            escalation_id=row["id"], team=row["team"], reference=row["reference"],
            title=row["title"], severity=row["severity"],
            engaged_at=min((at for at in (_time(row["first_approved"]),
                                          _time(row["first_paged"])) if at is not None),
                           default=None),
            received_at=_time(row["first_received"]), paged_at=_time(row["first_paged"]),
            acknowledged_at=_time(row["first_acknowledged"]),
            resolved_at=_time(row["last_resolved"]),
            evidence_checked=bool(row["evidence_checked"]),
            evidence_complete=bool(row["evidence_complete"]),
            retro_opened_at=_time(row["first_retro_opened"]), retro_url=row["retro_url"] or "",
            retro_closed=bool(row["retro_closed"]), retro_complete=bool(row["retro_complete"]),
            overdue_s=float(row["overdue_s"]),
            open_due_at=(_time(row["last_due_at"])
                         if int(row["spells"]) > int(row["spells_ended"]) else None))
        for row in rows)
    [counts] = yield Stmt(REOPENS, window)
    fields = len(service_fields)
    # SQLite reads a field by JSON path (the name quoted: it may hold spaces or dots),
    # PostgreSQL by key.
    args = [f"$.{json.dumps(name)}" if sqlite else name for name in service_fields]
    rows = yield Stmt(_drivers_sql(fields), (*args, *window))
    customers, services = _drivers(rows, fields)
    return KpiFigures(emergencies=emergencies, resolved=int(counts["resolved"]),
                      reopened=int(counts["reopened"]), customers=_ranked(customers),
                      services=_ranked(services))
