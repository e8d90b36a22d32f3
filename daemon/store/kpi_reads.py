"""Read units of the escalation KPIs (`daemon.reporting.kpis`), in both dialects.

One row per emergency of the window with the first or last time of the events the KPIs need
(emergencies are the few: the program aims at 10% of escalations), and per-name counts of
customers and services over every escalation of the window, grouped by the database. Nothing
else travels back, so the cost follows the window, as for the report's own figures.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from daemon.store.units import Sql, Stmt, Unit

_EVENTS = ("received", "approved", "paged", "acknowledged", "resolved", "reopened",
           "approval_requested", "retro_opened", "retro_closed", "update_overdue",
           "update_resumed")


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


def _emergencies(text: Callable[[str, str], str], number: Callable[[str], str],
                 flag: Callable[[str], str], has: Callable[[str], str], no_index: str) -> str:
    """`text(alias, path)`, `number(path)`, `flag(path)`, `has(key)`: the dialect's JSON reads
    of `e.data` or `t.details` (comma-separated path) as text, of `t.details` as a number or a
    boolean, and whether `t.details` has a key. The evidence pack is what the approval
    request showed (`approval_requested` details, `evidence`). `no_index` ("+" on SQLite)
    makes each emergency's timeline one range of its (escalation_id, id) index rather than
    one seek per event name, as the report's own figures do."""
    events = ", ".join(f"'{event}'" for event in _EVENTS)
    return (
        "SELECT e.id, e.team,"
        f" COALESCE({text('e', 'escalation,reference')}, '') AS reference,"
        f" COALESCE({text('e', 'escalation,title')}, '') AS title,"
        # The policy's canonical severity only: a vendor's own name is free text, and the
        # severity is a metric label. "" when the policy did not know it.
        f" COALESCE({text('e', 'gate,decision,facts,severity')}, '') AS severity,"
        " min(CASE WHEN t.event IN ('approved', 'paged') THEN t.at END) AS engaged_at,"
        " min(CASE WHEN t.event = 'received' THEN t.at END) AS received_at,"
        " min(CASE WHEN t.event = 'paged' THEN t.at END) AS paged_at,"
        " min(CASE WHEN t.event = 'acknowledged' THEN t.at END) AS acknowledged_at,"
        " max(CASE WHEN t.event = 'resolved' THEN t.at END) AS resolved_at,"
        f" max(CASE WHEN t.event = 'approval_requested' AND {has('evidence')} THEN 1 ELSE 0 END)"
        " AS evidence_checked,"
        " max(CASE WHEN t.event = 'approval_requested'"
        f" AND {flag('evidence,complete')} THEN 1 ELSE 0 END) AS evidence_complete,"
        " min(CASE WHEN t.event = 'retro_opened' THEN t.at END) AS retro_opened_at,"
        f" max(CASE WHEN t.event = 'retro_opened' THEN {text('t', 'url')} END) AS retro_url,"
        " max(CASE WHEN t.event = 'retro_closed' THEN 1 ELSE 0 END) AS retro_closed,"
        f" max(CASE WHEN t.event = 'retro_closed' AND {flag('complete')} THEN 1 ELSE 0 END)"
        " AS retro_complete,"
        " sum(CASE WHEN t.event = 'update_overdue' THEN 1 ELSE 0 END) AS spells,"
        " sum(CASE WHEN t.event = 'update_resumed' THEN 1 ELSE 0 END) AS spells_ended,"
        f" max(CASE WHEN t.event = 'update_overdue' THEN {number('due_at')} END) AS last_due_at,"
        f" sum(CASE WHEN t.event = 'update_resumed' THEN {number('overdue_s')} ELSE 0 END)"
        " AS overdue_s"
        " FROM escalations e LEFT JOIN timeline t ON t.escalation_id = e.id"
        f" AND {no_index}t.event IN ({events})"
        " WHERE e.opened_at >= ? AND e.opened_at < ? AND e.drill = 0"
        # Driven by the window's range on (opened_at, id), in that order (no sort to group);
        # an escalation no longer called an emergency counts if the SMOC was asked.
        " AND (e.outcome = 'emergency' OR e.first_approval_requested IS NOT NULL)"
        " GROUP BY e.opened_at, e.id"
    )


def _sqlite_text(alias: str, path: str) -> str:
    column = "e.data" if alias == "e" else "t.details"
    return f"json_extract({column}, '$.{path.replace(',', '.')}')"


def _postgres_text(alias: str, path: str) -> str:
    column = "e.data" if alias == "e" else "t.details"
    return f"({column}::jsonb #>> '{{{path}}}')"


EMERGENCIES = Sql.of(
    _emergencies(_sqlite_text, lambda key: f"json_extract(t.details, '$.{key}')",
                 lambda path: f"json_extract(t.details, '$.{path.replace(',', '.')}') = 1",
                 lambda key: f"json_type(t.details, '$.{key}') IS NOT NULL", "+"),
    _emergencies(_postgres_text, lambda key: f"(t.details::jsonb ->> '{key}')::float8",
                 lambda path: f"(t.details::jsonb #>> '{{{path}}}') = 'true'",
                 lambda key: f"(t.details::jsonb -> '{key}') IS NOT NULL", ""),
)
# Escalations that resolved, and that were reopened, at least once: from the first times each
# escalation keeps (migration 0011), an index-only range of `escalations_figures`.
REOPENS = Sql.of(
    "SELECT count(first_resolved) AS resolved, count(first_reopened) AS reopened"
    " FROM escalations WHERE opened_at >= ? AND opened_at < ? AND drill = 0")
_IN_WINDOW = " FROM escalations e WHERE e.opened_at >= ? AND e.opened_at < ? AND e.drill = 0"
# A test or tutorial incident (outcome `ignore`) drives nothing: left out of the drivers.
_DRIVING = " AND (e.outcome IS NULL OR e.outcome <> 'ignore')"


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


def _drivers(rows: Sequence[Any], fields: int) -> tuple[dict[str, int], dict[str, int]]:
    """Escalations per customer and per service: an escalation counts once per service it
    names, however many of the fields name it."""
    customers: dict[str, int] = {}
    services: dict[str, int] = {}
    for row in rows:
        values = [row["c"], *(row[f"s{n}"] for n in range(fields))]
        names = [str(value).strip() if value is not None else "" for value in values]
        if names[0]:
            customers[names[0]] = customers.get(names[0], 0) + int(row["n"])
        for service in {name for name in names[1:fields + 1] if name}:
            services[service] = services.get(service, 0) + int(row["n"])
    return customers, services


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
            title=row["title"],
            severity=str(row["severity"]), engaged_at=_time(row["engaged_at"]),
            received_at=_time(row["received_at"]), paged_at=_time(row["paged_at"]),
            acknowledged_at=_time(row["acknowledged_at"]), resolved_at=_time(row["resolved_at"]),
            evidence_checked=bool(row["evidence_checked"]),
            evidence_complete=bool(row["evidence_complete"]),
            retro_opened_at=_time(row["retro_opened_at"]), retro_url=row["retro_url"] or "",
            retro_closed=bool(row["retro_closed"]), retro_complete=bool(row["retro_complete"]),
            overdue_s=float(row["overdue_s"] or 0.0),
            open_due_at=(_time(row["last_due_at"])
                         if int(row["spells"] or 0) > int(row["spells_ended"] or 0) else None))
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
