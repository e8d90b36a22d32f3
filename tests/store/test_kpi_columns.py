"""The KPIs' columns (migration 0012): rebuilt from data and timelines they give the same
KPIs as the write path keeps, and SQLite answers the window reads of the KPIs, the Tier 2
load (migration 0014's facts) and the criteria from index ranges, never from the
escalations' `data`."""

from __future__ import annotations

from pathlib import Path

from daemon.clock import ManualClock, to_datetime
from daemon.reporting import load_report
from daemon.settings import Settings
from daemon.store import Store, open_store
from daemon.store.kpi_reads import EMERGENCIES, _drivers_sql
from daemon.store.load_reads import AVOIDED, DECISIONS, REACHES
from daemon.store.reads import TEAM_CRITERIA
from daemon.store.transfer import refresh_figures
from daemon.store.units import Row, Sql, Stmt, Unit
from tests.kpi_month import EXPECTED, NOW_S, seed
from tests.support import START

_BLANK = (
    "UPDATE escalations SET customer = NULL, custom_fields = '{}', reference = '', title = '',"
    " severity = '', last_resolved = NULL, evidence_checked = 0, evidence_complete = 0,"
    " retro_url = NULL, retro_closed = 0, retro_complete = 0, spells = 0, spells_ended = 0,"
    " last_due_at = NULL, overdue_s = 0")


async def _kpis(store: Store) -> object:
    report = await load_report(store, to_datetime(START - 86400), to_datetime(START + NOW_S),
                               settings=Settings())
    assert report.kpis is not None
    return report.kpis.model_dump(mode="json")


async def test_the_kpi_columns_are_rebuilt_from_data_and_timelines(store: Store,
                                                                   clock: ManualClock) -> None:
    """What the migration fills in for existing escalations and `import` recomputes equals
    what the write path keeps: blanked, the hand-checked KPIs change; rebuilt, they are
    the hand-checked ones again."""
    await seed(store, START)
    clock.advance(NOW_S)
    assert await _kpis(store) == EXPECTED

    def blank() -> Unit[None]:
        yield Stmt(Sql.of(_BLANK))

    await store.backend.run(blank)
    assert await _kpis(store) != EXPECTED
    await store.backend.run(refresh_figures)
    assert await _kpis(store) == EXPECTED


async def test_sqlite_reads_the_windows_from_covering_indexes(tmp_path: Path,
                                                                  clock: ManualClock) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'plans.db'}", clock=clock)
    await store.open()
    try:
        await seed(store, START)

        def plans() -> Unit[list[list[str]]]:
            found = []
            for sql, args in ((EMERGENCIES, (0.0, START * 2)),
                              (_drivers_sql(2), ('$."Service"', '$."Affected service"', 0.0,
                                                 START * 2)),
                              (REACHES, (0.0, START * 2)),
                              (AVOIDED, (0.0, START * 2)),
                              (DECISIONS, (0.0, START * 2)),
                              (TEAM_CRITERIA, (0.0, START * 2, None, None))):
                rows: list[Row] = yield Stmt(Sql.of("EXPLAIN QUERY PLAN " + sql.sqlite), args)
                found.append([row["detail"] for row in rows])
            return found

        emergencies, drivers, reached, avoided, decided, criteria = await store.backend.run(
            plans)
    finally:
        await store.close()
    assert emergencies == ["SEARCH escalations USING COVERING INDEX escalations_emergencies"
                           " (opened_at>? AND opened_at<?)"]
    assert drivers[0] == (
        "SEARCH e USING COVERING INDEX escalations_drivers (opened_at>? AND opened_at<?)")
    # the load's facts (migration 0014): the reaches and avoided pages of the window from
    # their own indexes, the decisions from the load's entries, references from an index
    assert reached == ["SEARCH r USING INDEX tier2_reaches_at (at>? AND at<?)",
                       "SEARCH e USING COVERING INDEX escalations_refs (id=? AND drill=?)"]
    assert avoided == ["SEARCH escalations USING INDEX escalations_avoided"
                       " (first_approval_requested>? AND first_approval_requested<?)"]
    assert decided == ["SEARCH t USING COVERING INDEX timeline_load (at>? AND at<?)",
                       "SEARCH e USING COVERING INDEX escalations_refs (id=? AND drill=?)"]
    assert criteria[0] == (
        "SEARCH e USING COVERING INDEX escalations_figures (opened_at>? AND opened_at<?)")
