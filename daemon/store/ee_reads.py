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
class EEGroupRow:
    """The window's EE-offered escalations of one rotation and owner ("" : nobody took them)."""

    rotation: str
    owner: str
    offered: int
    taken: int
    resolved: int  # resolved without Engineering
    engineering: int  # reached Engineering
    open: int


@dataclass(frozen=True)
class EEWindow:
    groups: tuple[EEGroupRow, ...]
    # (rotation, owner, seconds from the offer to "Take it") of each taken escalation
    engagements: tuple[tuple[str, str, float], ...]


_WHERE = " FROM ee_work WHERE opened_at >= ? AND opened_at < ? AND drill = 0"
_GROUPS = Sql.of(
    "SELECT rotation, owner, count(*) AS offered, count(assigned_at) AS taken,"
    # Resolved without Engineering and reached Engineering exclude each other: an EE's word
    # after the SMOC was asked does not undo that Engineering was engaged.
    " sum(CASE WHEN outcome = 'resolved' AND engineering = 0 THEN 1 ELSE 0 END) AS resolved,"
    " sum(engineering) AS engineering, sum(is_open) AS still_open" + _WHERE
    + " GROUP BY rotation, owner"
)
_ENGAGEMENTS = Sql.of(
    "SELECT rotation, owner, assigned_at - offered_at AS seconds" + _WHERE
    + " AND assigned_at IS NOT NULL"
)
_OPEN_PER_OWNER = Sql.of(
    "SELECT owner, count(*) AS n FROM ee_work WHERE is_open = 1 AND drill = 0 GROUP BY owner"
)
_OPEN_OF = Sql.of(
    f"SELECT {', '.join('e.' + c.strip() for c in _ESC_COLUMNS.split(','))}, w.owner AS ee_owner"
    " FROM ee_work w JOIN escalations e ON e.id = w.escalation_id"
    " WHERE w.is_open = 1 AND w.owner = ? ORDER BY e.opened_at"
)


def ee_window(since: float, until: float) -> Unit[EEWindow]:
    """Counts per (rotation, owner) aggregated by the database, and one number per taken
    escalation (its percentiles need the samples), in one snapshot."""
    rows = yield Stmt(_GROUPS, (since, until))
    groups = tuple(EEGroupRow(rotation=row["rotation"], owner=row["owner"],
                              offered=int(row["offered"]), taken=int(row["taken"]),
                              resolved=int(row["resolved"] or 0),
                              engineering=int(row["engineering"] or 0),
                              open=int(row["still_open"] or 0)) for row in rows)
    rows = yield Stmt(_ENGAGEMENTS, (since, until))
    engagements = tuple((row[0], row[1], max(0.0, float(row[2]))) for row in rows)
    return EEWindow(groups, engagements)


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
