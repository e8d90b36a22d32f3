"""Reads that scale (both backends): pages by keyset cursor, filters in SQL, and the report's
aggregates, which must equal the report computed from every row and timeline in memory."""

from __future__ import annotations

import random
from dataclasses import replace

from daemon.reporting import build_report, load_report
from daemon.store import Changes, EscalationRow, NewEvent, Store
from daemon.store.reads import NO_OUTCOME, Cursor, EscalationFilter
from daemon.store.transfer import refresh_figures
from daemon.store.units import FIRST_EVENTS, Sql, Stmt, Unit
from tests.store.test_store_contract import escalation
from tests.support import START
from tests.unit.test_report import SINCE, UNTIL, month

EVERYTHING = EscalationFilter(since=0.0, until=START * 2)


def at(esc_id: str, opened_at: float, *, source: str = "incident_io", state: str = "received",
       outcome: str | None = None) -> EscalationRow:
    """The contract suite's escalation, opened at `opened_at` (epoch seconds)."""
    return replace(escalation(esc_id=esc_id, state=state), external_id=esc_id,
                   opened_at=opened_at, source=source, outcome=outcome)


async def walk(store: Store, flt: EscalationFilter, limit: int) -> list[str]:
    seen: list[str] = []
    cursor: Cursor | None = None
    while True:
        rows, cursor = await store.page_escalations(flt, cursor, limit)
        seen += [row.id for row in rows]
        if cursor is None:
            return seen


async def test_the_report_in_sql_equals_the_report_in_memory(store: Store) -> None:
    rows, timelines = month()
    for row in rows:
        events = tuple(NewEvent(row.id, entry.event, entry.actor, entry.at, entry.details)
                       for entry in timelines[row.id])
        await store.apply(Changes(escalation=row, events=events))
    in_sql = await load_report(store, SINCE, UNTIL)
    assert in_sql == build_report(rows, timelines, since=SINCE, until=UNTIL)
    assert in_sql.escalations == 9 and in_sql.top_criteria  # the hand-checked month


async def test_the_figure_columns_are_rebuilt_from_data_and_timelines(store: Store) -> None:
    """What migration 0011 fills in for existing escalations and `import` recomputes equals
    what the write path keeps: blanked, then rebuilt, the report is the same again."""
    rows, timelines = month()
    for row in rows:
        events = tuple(NewEvent(row.id, entry.event, entry.actor, entry.at, entry.details)
                       for entry in timelines[row.id])
        await store.apply(Changes(escalation=row, events=events))
    kept = await load_report(store, SINCE, UNTIL)
    blank = ", ".join(f"first_{event} = NULL" for event in FIRST_EVENTS)

    def blank_figures() -> Unit[None]:
        yield Stmt(Sql.of(
            f"UPDATE escalations SET {blank}, decided_weekend = NULL, ever_emergency = 0,"
            " dead_letters = 0, recorded_criteria = NULL, decision_criteria = '[]'"))

    await store.backend.run(blank_figures)
    assert await load_report(store, SINCE, UNTIL) != kept
    await store.backend.run(refresh_figures)
    assert await load_report(store, SINCE, UNTIL) == kept


async def test_the_report_of_one_team_counts_only_its_escalations(store: Store) -> None:
    rows, timelines = month()
    rows = [replace(row, team="payments") if n % 3 == 0 else row for n, row in enumerate(rows)]
    for row in rows:
        events = tuple(NewEvent(row.id, entry.event, entry.actor, entry.at, entry.details)
                       for entry in timelines[row.id])
        await store.apply(Changes(escalation=row, events=events))
    payments = await load_report(store, SINCE, UNTIL, team="payments")
    assert payments == build_report(rows, timelines, since=SINCE, until=UNTIL, team="payments")
    assert payments.escalations == 3
    rest = await load_report(store, SINCE, UNTIL, team="default")
    assert rest == build_report(rows, timelines, since=SINCE, until=UNTIL, team="default")
    assert rest.escalations == 6
    assert (await load_report(store, SINCE, UNTIL, team="nobody")).escalations == 0


async def test_an_empty_window_reports_nothing(store: Store) -> None:
    assert await load_report(store, SINCE, UNTIL) == build_report([], {}, since=SINCE,
                                                                   until=UNTIL)


async def test_pages_come_newest_first_and_ties_by_id(store: Store) -> None:
    for n, opened in enumerate((START, START + 60, START + 60, START + 120)):
        await store.apply(Changes(escalation=at(f"esc-{n}", opened)))
    assert await walk(store, EVERYTHING, 1) == ["esc-3", "esc-2", "esc-1", "esc-0"]
    rows, cursor = await store.page_escalations(EVERYTHING, None, 4)
    assert len(rows) == 4 and cursor is None  # a full last page says there is no next one


async def test_filters_narrow_in_sql(store: Store) -> None:
    for esc_id, source, state, outcome, opened in (
            ("a", "incident_io", "awaiting_approval", "emergency", START),
            ("b", "pagerduty", "rfh", "rfh", START + 10),
            ("c", "slack", "received", None, START + 20),
            ("d", "pagerduty", "paged", "emergency", START + 30)):
        await store.apply(Changes(escalation=at(esc_id, opened, source=source, state=state,
                                                outcome=outcome)))

    async def ids(*, since: float = EVERYTHING.since, until: float = EVERYTHING.until,
                  source: str | None = None, state: str | None = None,
                  outcome: str | None = None) -> list[str]:
        narrowed = EscalationFilter(since=since, until=until, source=source, state=state,
                                    outcome=outcome)
        return await walk(store, narrowed, 10)

    assert await ids(source="pagerduty") == ["d", "b"]
    assert await ids(state="awaiting_approval") == ["a"]
    assert await ids(outcome="emergency") == ["d", "a"]
    assert await ids(outcome=NO_OUTCOME) == ["c"]
    assert await ids(source="pagerduty", outcome="emergency", state="paged") == ["d"]
    assert await ids(since=START + 10, until=START + 30) == ["c", "b"]  # [since, until)


async def test_paging_returns_every_escalation_once_while_new_ones_arrive(store: Store) -> None:
    """Escalations keep arriving between pages, newer than the cursor (just opened) and older
    (a late delivery of an old incident, a clock a little behind): every escalation that
    existed before the first page comes exactly once, and nothing comes twice."""
    chance = random.Random(19)
    opened = [START + chance.randrange(0, 600) for _ in range(120)]  # many share a second
    for n, moment in enumerate(opened):
        await store.apply(Changes(escalation=at(f"old-{n:03}", moment)))
    before = {f"old-{n:03}" for n in range(len(opened))}
    seen: list[str] = []
    cursor: Cursor | None = None
    arrived = 0
    while True:
        rows, cursor = await store.page_escalations(EVERYTHING, cursor, 7)
        seen += [row.id for row in rows]
        for _ in range(3):
            moment = START + chance.choice((700, chance.randrange(0, 600)))
            await store.apply(Changes(escalation=at(f"new-{arrived:03}", moment)))
            arrived += 1
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert before <= set(seen)
    assert all(esc_id in before or esc_id.startswith("new-") for esc_id in seen)
