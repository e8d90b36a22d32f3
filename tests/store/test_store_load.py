"""The Tier 2 load read from the store (both backends) equals the load computed in memory from
the same entries, and the report judges an undecided escalation's weekend in the business time
zone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from daemon.domain.calendar import BusinessHours
from daemon.domain.events import EventKind
from daemon.domain.gate import Phase
from daemon.reporting import build_report, load_report
from daemon.reporting.load import build_load, load_load
from daemon.store import Changes, NewEvent, Store
from tests.store.test_store_contract import escalation
from tests.unit.test_fatigue import LONDON, TEAMS, fortnight
from tests.unit.test_report import row as report_row

SINCE = datetime(2026, 10, 25, tzinfo=UTC)
UNTIL = datetime(2026, 11, 20, tzinfo=UTC)


async def test_the_load_in_sql_equals_the_load_in_memory(store: Store) -> None:
    entries = fortnight()
    for esc_id in TEAMS:
        row = replace(escalation(esc_id=esc_id), external_id=esc_id, team=TEAMS[esc_id],
                      data={"escalation": {"reference": f"#{esc_id[1:]}"}})
        events = tuple(NewEvent(e.escalation_id, e.event, e.actor, e.at, e.details)
                       for e in entries if e.escalation_id == esc_id)
        await store.apply(Changes(escalation=row, events=events))
    from_store = await load_load(store, SINCE, UNTIL, LONDON)
    assert from_store == build_load(entries, LONDON)
    assert [e.interruptions for e in from_store.engineers] == [4, 2, 1]  # the hand count
    # the page entries alone (the approval request's read): the same engineers, no decisions
    pages = await load_load(store, SINCE, UNTIL, LONDON, pages_only=True)
    assert pages.engineers == from_store.engineers
    assert (pages.approvers, pages.avoided.total) == ((), 0)
    # a window that ends before the DST weekend's second page leaves it out
    early = await load_load(store, SINCE, datetime(2026, 11, 1, 12, 0, tzinfo=UTC), LONDON)
    assert [e.interruptions for e in early.engineers] == [1]


async def test_an_undecided_escalation_is_on_the_business_time_zones_weekend(
        store: Store) -> None:
    # Friday 2026-11-06 20:00Z is Saturday 09:00 in Auckland: a weekend there, a weekday in UTC.
    opened = datetime(2026, 11, 6, 20, 0, tzinfo=UTC).timestamp()
    row = report_row("esc-nz", datetime(2026, 11, 6, 20, 0, tzinfo=UTC), Phase.RECEIVED, None)
    await store.apply(Changes(escalation=row, events=(
        NewEvent("esc-nz", EventKind.RECEIVED, "tier2gate", opened, {}),)))
    auckland = BusinessHours(timezone="Pacific/Auckland")
    since, until = SINCE, SINCE + timedelta(days=30)
    in_sql = await load_report(store, since, until, auckland)
    assert (in_sql.escalations_by_day.weekend, in_sql.escalations_by_day.weekday) == (1, 0)
    assert in_sql == build_report([row], {"esc-nz": await store.timeline("esc-nz")},
                                  since=since, until=until, hours=auckland)
    in_utc = await load_report(store, since, until)
    assert (in_utc.escalations_by_day.weekend, in_utc.escalations_by_day.weekday) == (0, 1)
