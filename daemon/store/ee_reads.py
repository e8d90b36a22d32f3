"""Read units for the Escalation Engineer figures and the rotation handoff, in both dialects.

Everything comes from `ee_work` (one row per escalation offered to the EEs, written with the
escalation): the report streams the window's rows once (one row per EE-offered escalation, a
few numbers each); the open work per EE is an aggregate over a partial index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from daemon.store.records import EscalationRow
from daemon.store.units import _ESC_COLUMNS, Sql, Stmt, Unit, escalation_from


@dataclass(frozen=True)
class EERow:
    """One EE-offered escalation in the report's window."""

    rotation: str
    owner: str
    offered_at: float
    assigned_at: float | None
    outcome: str
    engineering: bool
    open: bool


_WINDOW = Sql.of(
    "SELECT rotation, owner, offered_at, assigned_at, outcome, engineering, is_open FROM ee_work"
    " WHERE opened_at >= ? AND opened_at < ? AND drill = 0"
)
_OPEN_PER_OWNER = Sql.of(
    "SELECT owner, count(*) AS n FROM ee_work WHERE is_open = 1 AND drill = 0 GROUP BY owner"
)
_OPEN_OF = Sql.of(
    f"SELECT {', '.join('e.' + c.strip() for c in _ESC_COLUMNS.split(','))}, w.owner AS ee_owner"
    " FROM ee_work w JOIN escalations e ON e.id = w.escalation_id"
    " WHERE w.is_open = 1 AND w.owner = ? ORDER BY e.opened_at"
)


def ee_window(since: float, until: float) -> Unit[list[EERow]]:
    rows = yield Stmt(_WINDOW, (since, until))
    return [EERow(rotation=row["rotation"], owner=row["owner"], offered_at=row["offered_at"],
                  assigned_at=row["assigned_at"], outcome=row["outcome"],
                  engineering=bool(row["engineering"]), open=bool(row["is_open"]))
            for row in rows]


def open_per_owner() -> Unit[dict[str, int]]:
    rows = yield Stmt(_OPEN_PER_OWNER)
    return {str(row["owner"]): int(row["n"]) for row in rows}


def open_owned_by(owners: Sequence[str]) -> Unit[list[tuple[str, EscalationRow]]]:
    """(owner, escalation) of every open escalation those EEs own, oldest first per owner."""
    found: list[tuple[str, EscalationRow]] = []
    for owner in owners:  # one fixed indexed statement per owner (a rotation has a handful)
        rows = yield Stmt(_OPEN_OF, (owner,))
        found += [(owner, escalation_from(row)) for row in rows]
    return found
