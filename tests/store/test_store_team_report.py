"""The report broken down by Tier 1 team (both backends): computed in SQL with the team as a
grouping key, each team's figures equal to the report of that team's escalations alone."""

from __future__ import annotations

from dataclasses import replace

from daemon.reporting import build_report, load_report
from daemon.store import Changes, NewEvent, Store
from tests.unit.test_report import SINCE, UNTIL, month

EMEA = {"A", "C", "E", "G"}  # two emergencies (one approved and resolved, one declined), 2 RFH


async def test_every_figure_is_broken_down_by_team(store: Store) -> None:
    rows, timelines = month()
    rows = [replace(row, team="emea" if row.id in EMEA else "amer") for row in rows]
    for row in rows:
        events = tuple(NewEvent(row.id, entry.event, entry.actor, entry.at, entry.details)
                       for entry in timelines[row.id])
        await store.apply(Changes(escalation=row, events=events))
    report = await load_report(store, SINCE, UNTIL)
    assert report == build_report(rows, timelines, since=SINCE, until=UNTIL)
    assert list(report.teams) == ["amer", "emea"]
    for team, in_emea in (("emea", True), ("amer", False)):
        alone = build_report([r for r in rows if (r.id in EMEA) == in_emea], timelines,
                             since=SINCE, until=UNTIL)
        assert report.teams[team] == alone.model_copy(update={"teams": {}, "load": None})
    emea, amer = report.teams["emea"], report.teams["amer"]
    assert emea.escalations + amer.escalations == report.escalations == 9
    assert (emea.escalations, emea.by_outcome["emergency"], emea.by_outcome["rfh"]) == (4, 2, 2)
    assert [d.escalation_id for d in emea.declines] == ["C"]
    assert amer.declines == () and emea.timeouts == ()
    assert emea.time_to_approve.samples == 1 and amer.time_to_approve.samples == 2
    assert emea.engineering.paged + amer.engineering.paged == report.engineering.paged
    assert sum(c.count for c in emea.top_criteria) + sum(c.count for c in amer.top_criteria) \
        == sum(c.count for c in report.top_criteria)


async def test_without_teams_the_one_team_is_the_whole_report(store: Store) -> None:
    rows, timelines = month()
    for row in rows:
        events = tuple(NewEvent(row.id, entry.event, entry.actor, entry.at, entry.details)
                       for entry in timelines[row.id])
        await store.apply(Changes(escalation=row, events=events))
    report = await load_report(store, SINCE, UNTIL)
    assert list(report.teams) == ["default"]
    assert report.teams["default"] == report.model_copy(update={"teams": {}, "load": None})
