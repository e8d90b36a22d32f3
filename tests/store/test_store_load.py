"""The Tier 2 load read from the store (both backends) equals the load computed in memory from
the same entries, and the report judges an undecided escalation's weekend in the business time
zone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.domain.calendar import BusinessHours
from daemon.domain.events import EventKind
from daemon.domain.gate import Phase
from daemon.reporting import build_report, load_report
from daemon.reporting.load import build_load, load_load
from daemon.store import Changes, NewEvent, Store, open_store
from daemon.store.load_reads import LoadEntry
from daemon.store.migrations import refresh_statement
from daemon.store.transfer import refresh_figures
from daemon.store.units import Sql, Stmt, Unit
from tests.store.test_store_contract import escalation
from tests.unit.test_fatigue import ANN, BO, CY, LONDON, NY, TEAMS, entry, fortnight, utc, who
from tests.unit.test_report import row as report_row

SINCE = datetime(2026, 10, 25, tzinfo=UTC)
UNTIL = datetime(2026, 11, 20, tzinfo=UTC)


async def _seed_fortnight(store: Store) -> None:
    entries = fortnight()
    for esc_id in TEAMS:
        row = replace(escalation(esc_id=esc_id), external_id=esc_id, team=TEAMS[esc_id],
                      data={"escalation": {"reference": f"#{esc_id[1:]}"}})
        events = tuple(NewEvent(e.escalation_id, e.event, e.actor, e.at, e.details)
                       for e in entries if e.escalation_id == esc_id)
        await store.apply(Changes(escalation=row, events=events))


# What an escalation stored before migration 0014 has of the load's facts: none.
_FORGET = ("DELETE FROM tier2_reaches", "UPDATE escalations SET approval_held = 0")


def _forget() -> Unit[None]:
    for statement in _FORGET:
        yield Stmt(Sql.of(statement))


def _mark_due() -> Unit[None]:
    """Migration 0014's own UPDATE over the forgotten rows."""
    yield Stmt(Sql(refresh_statement("sqlite", "0014_load_facts.sql"),
                   refresh_statement("postgres", "0014_load_facts.sql")))


async def test_the_load_in_sql_equals_the_load_in_memory(store: Store) -> None:
    entries = fortnight()
    await _seed_fortnight(store)
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


async def test_the_load_facts_are_rebuilt_from_the_timelines(store: Store) -> None:
    """What migration 0014 and `import` compute for escalations stored without the load's
    facts equals what the writes keep: forgotten, the engineers and a held page are gone;
    rebuilt, the load is the hand-checked one again."""
    await _seed_fortnight(store)
    kept = await load_load(store, SINCE, UNTIL, LONDON)
    await store.backend.run(_forget)
    forgotten = await load_load(store, SINCE, UNTIL, LONDON)
    # the declined one stays avoided (0011's first times), the one held after the timeout not
    assert (forgotten.engineers, forgotten.avoided.total, kept.avoided.total) == ((), 1, 2)
    await store.backend.run(refresh_figures)
    assert await load_load(store, SINCE, UNTIL, LONDON) == kept == build_load(fortnight(),
                                                                              LONDON)


async def test_a_store_computes_the_due_facts_when_it_opens(tmp_path: Path) -> None:
    """An upgraded store (migration 0014 marked its paged escalations due) fills who its
    pages reached before it serves anything."""
    url = f"sqlite:///{tmp_path / 'upgraded.db'}"
    store = open_store(url)
    await store.open()
    try:
        await _seed_fortnight(store)
        await store.backend.run(_forget)
        await store.backend.run(_mark_due)
        assert (await load_load(store, SINCE, UNTIL, LONDON)).engineers == ()
    finally:
        await store.close()
    reopened = open_store(url)
    await reopened.open()
    try:
        assert await load_load(reopened, SINCE, UNTIL, LONDON) == build_load(fortnight(),
                                                                             LONDON)
    finally:
        await reopened.close()


async def test_the_load_follows_every_write(store: Store) -> None:
    """No figure lags a write: entry by entry, as the webhooks and jobs add them (a trigger,
    then the page job's own entry, then the acknowledgement), the load read from the store
    is the load of the entries written so far."""
    entries = sorted(fortnight(), key=lambda e: e.at)
    for esc_id in TEAMS:
        row = replace(escalation(esc_id=esc_id), external_id=esc_id, team=TEAMS[esc_id],
                      data={"escalation": {"reference": f"#{esc_id[1:]}"}})
        await store.apply(Changes(escalation=row))
    for count, e in enumerate(entries, start=1):
        await store.apply(Changes(events=(
            NewEvent(e.escalation_id, e.event, e.actor, e.at, e.details),)))
        assert await load_load(store, SINCE, UNTIL, LONDON) == build_load(entries[:count],
                                                                          LONDON), e


def _adversarial() -> list[LoadEntry]:
    """Timelines as PagerDuty's webhooks really arrive: a trigger recorded before the page
    job's own entry at the same second, a reassignment and an escalation dated out of order,
    a reopened emergency paged twice, responders without an id or a time zone, a name with
    a bidi override, acknowledgements naming nobody, and everything of one escalation at
    one time."""
    dee, eve = who("PD", "Dee\u202eevil", ""), {"name": "no id", "time_zone": NY}
    bare = {"id": "PE", "name": "Eve"}  # no time zone key at all
    t = utc(11, 7, 23, 0)
    return [
        entry("e1", "page_assigned", t, "pagerduty", responders=[ANN]),
        entry("e1", "paged", t),
        entry("e1", "page_reassigned", t + 600, responders=[BO]),
        entry("e1", "page_escalated", t + 300, responders=[CY, ANN]),
        entry("e1", "acknowledged", t + 900, "Bo", responders=[BO]),
        entry("e1", "acknowledged", t + 60, "Ann", responders=[ANN]),
        entry("e2", "paged", t + 3600),
        entry("e2", "page_assigned", t + 3600, responders=[ANN]),
        entry("e2", "acknowledged", t + 3700, "Ann", responders=[ANN]),
        entry("e2", "paged", t + 7200),  # reopened, paged again
        entry("e2", "page_assigned", t + 7200, responders=[ANN]),
        entry("e2", "acknowledged", t + 7300, "Ann", responders=[ANN]),
        entry("e3", "paged", t + 86400),
        entry("e3", "page_assigned", t + 86400, responders=[eve, dee, bare]),
        entry("e3", "acknowledged", t + 86500, "pagerduty"),
        entry("e3", "acknowledged", t + 86600, "Old Name"),
        entry("e4", "page_escalated", t, responders=[BO]),
        entry("e4", "acknowledged", t, "Bo", responders=[BO]),
        entry("e4", "paged", t),
        entry("e4", "page_assigned", t, responders=[BO, CY]),
    ]


async def test_adversarial_timelines_load_the_same_in_sql_and_in_memory(store: Store) -> None:
    """Entry by entry, in the order they were written, the load read from the store is the
    load computed in memory from the same entries (as `build_report` gets them: by id)."""
    entries = _adversarial()
    for esc_id in ("e1", "e2", "e3", "e4"):
        row = replace(escalation(esc_id=esc_id), external_id=esc_id, team=TEAMS[esc_id],
                      data={"escalation": {"reference": f"#{esc_id[1:]}"}})
        await store.apply(Changes(escalation=row))
    since, until = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)
    for count, e in enumerate(entries, start=1):
        await store.apply(Changes(events=(
            NewEvent(e.escalation_id, e.event, e.actor, e.at, e.details),)))
        assert await load_load(store, since, until, LONDON) == build_load(entries[:count],
                                                                          LONDON), e
    load = await load_load(store, since, until, LONDON)
    assert {e.responder_id for e in load.engineers} == {"PA", "PB", "PC", "PD", "PE",
                                                        "Old Name"}
    assert next(e for e in load.engineers if e.responder_id == "PA").interruptions == 3
