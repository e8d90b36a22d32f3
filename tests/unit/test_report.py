"""The report's numbers, checked against a month of escalations whose answers are worked out by
hand below, plus percentiles, `--since` parsing, the text table and the `report` command."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.cli import main
from daemon.domain.events import EventKind
from daemon.domain.gate import Gate, Phase
from daemon.domain.models import Criterion, Escalation, Source, Status
from daemon.domain.policy import Decision, Facts, Outcome
from daemon.reporting import Report, build_report, parse_since, percentile, render_text
from daemon.store import Changes, EscalationRow, NewEvent, TimelineEntry, open_store

SINCE = datetime(2026, 11, 1, tzinfo=UTC)  # a Sunday
UNTIL = datetime(2026, 12, 1, tzinfo=UTC)
PU, SEK, RD = "production_unstable", "support_exhausted_knowledge", "recovery_deadline"
_ids = iter(range(1, 10_000))


def nov(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


def decision(outcome: str, weekend: bool, criteria: tuple[str, ...]) -> Decision:
    held = {c: c.value in criteria for c in Criterion}
    facts = Facts(source=Source.INCIDENT_IO, status=Status.OPEN, severity="S1",
                  reported_severity="SEV1", criteria=held, customer="ACME", labels=(),
                  age_minutes=0.0, weekend=weekend, off_hours=weekend, test_mode=False)
    return Decision(outcome=Outcome(outcome), rule=None, reason="test", matched={}, facts=facts)


def row(esc_id: str, opened: datetime, phase: Phase, outcome: str | None, *,
        weekend: bool | None = None, criteria: tuple[str, ...] = ()) -> EscalationRow:
    """An escalation as stored; `weekend=None` stores no policy decision at all."""
    escalation = Escalation(source=Source.INCIDENT_IO, external_id=esc_id,
                            reference=f"INC-{esc_id}", title=f"title {esc_id}",
                            created_at=opened, updated_at=opened)
    gate = Gate(phase=phase, decision=None if weekend is None or outcome is None
                else decision(outcome, weekend, criteria))
    at = opened.timestamp()
    return EscalationRow(id=esc_id, source="incident_io", external_id=esc_id, state=phase.value,
                         outcome=outcome, data={"escalation": escalation.model_dump(mode="json"),
                                                "gate": gate.model_dump(mode="json")},
                         version=1, opened_at=at, created_at=at, updated_at=at)


def ev(event: str, when: datetime, actor: str = "tier2gate", **details: Any
       ) -> tuple[str, datetime, str, dict[str, Any]]:
    return event, when, actor, details


def timeline(esc_id: str, *events: tuple[str, datetime, str, dict[str, Any]]
             ) -> list[TimelineEntry]:
    return [TimelineEntry(id=next(_ids), escalation_id=esc_id, at=when.timestamp(),
                          event=EventKind(event),
                          actor=actor, details=details) for event, when, actor, details in events]


def classified(when: datetime, outcome: str, *criteria: str
               ) -> tuple[str, datetime, str, dict[str, Any]]:
    return ev("classified", when, "policy", outcome=outcome, criteria=list(criteria))


def month() -> tuple[list[EscalationRow], dict[str, list[TimelineEntry]]]:
    """Nine escalations in November 2026 and two just outside it."""
    rows = [
        # A: weekday emergency, the whole happy path: approve 4 min, ack 12 min, resolve 126 min
        row("A", nov(18, 10), Phase.CLOSED, "emergency", weekend=False, criteria=(PU, SEK)),
        # B: weekend emergency, first an RFH: approve 10 min, ack 2 min, not resolved
        row("B", nov(21, 2), Phase.ACKNOWLEDGED, "emergency", weekend=True, criteria=(PU,)),
        # C: weekday emergency the SMOC declined
        row("C", nov(23, 9), Phase.DECLINED, "emergency", weekend=False, criteria=(RD,)),
        # D: weekday emergency whose approval timed out and paged anyway; a job died
        row("D", nov(24, 20), Phase.PAGED, "emergency", weekend=False, criteria=(PU,)),
        # E: RFH opened exactly at `since` (a Sunday), resolved after 30 min
        row("E", SINCE, Phase.RFH, "rfh", weekend=True),
        # F: never classified, opened on a Sunday (UTC weekday decides)
        row("F", nov(22, 12), Phase.RECEIVED, None),
        # G: RFH on Sunday 23:30 UTC, Monday where business hours are: the policy decides
        row("G", nov(29, 23, 30), Phase.RFH, "rfh", weekend=False, criteria=(PU,)),
        # H: an ignored test incident
        row("H", nov(19, 15), Phase.IGNORED, "ignore", weekend=False),
        # J: weekday emergency in shadow mode: approved after 20 min, would have paged
        row("J", nov(26, 14), Phase.PAGED, "emergency", weekend=False, criteria=(SEK,)),
        # outside the window: one second early, and exactly at `until` (exclusive)
        row("early", SINCE - timedelta(seconds=1), Phase.DECLINED, "emergency", weekend=True),
        row("late", UNTIL, Phase.PAGED, "emergency", weekend=False),
    ]
    timelines = {
        "A": list(reversed(timeline(  # stored order must not matter
            "A", ev("received", nov(18, 10)), classified(nov(18, 10), "emergency", PU, SEK),
            ev("approval_requested", nov(18, 10, 1)), ev("approved", nov(18, 10, 5), "U1"),
            ev("paged", nov(18, 10, 6)), ev("acknowledged", nov(18, 10, 18), "tier2-alice"),
            ev("acknowledged", nov(18, 11), "tier2-carol"),  # the first one counts
            ev("resolved", nov(18, 12, 6)), ev("retro_opened", nov(18, 12, 7))))),
        "B": timeline(
            "B", ev("received", nov(21, 2)), classified(nov(21, 2), "rfh", PU),
            classified(nov(21, 2), "emergency", PU), ev("approval_requested", nov(21, 2, 1)),
            ev("approval_reminded", nov(21, 2, 6)), ev("approved", nov(21, 2, 11), "U1"),
            ev("paged", nov(21, 2, 12)), ev("acknowledged", nov(21, 2, 14), "tier2-bob")),
        "C": timeline(
            "C", ev("received", nov(23, 9)), classified(nov(23, 9), "emergency", RD),
            ev("approval_requested", nov(23, 9, 1)),
            ev("declined", nov(23, 9, 3), "U2", reason="not an emergency: workaround exists")),
        "D": timeline(
            "D", ev("received", nov(24, 20)), classified(nov(24, 20), "emergency", PU),
            ev("approval_requested", nov(24, 20, 1)),
            ev("approval_timed_out", nov(24, 20, 31), after_minutes=30, fallback="page"),
            ev("paged", nov(24, 20, 32)), ev("job.dead_lettered", nov(24, 20, 40), kind="x")),
        "E": timeline("E", ev("received", SINCE), classified(SINCE, "rfh"),
                      ev("resolved", SINCE + timedelta(minutes=30))),
        "F": timeline("F", ev("received", nov(22, 12))),
        "G": timeline("G", ev("received", nov(29, 23, 30))),  # criteria from the gate
        "H": timeline("H", ev("received", nov(19, 15)), classified(nov(19, 15), "ignore")),
        "J": timeline(
            "J", ev("received", nov(26, 14)), classified(nov(26, 14), "emergency", SEK),
            ev("approval_requested", nov(26, 14)), ev("approved", nov(26, 14, 20), "U3"),
            ev("would_have_paged", nov(26, 14, 21))),
        "early": timeline(
            "early", ev("received", SINCE - timedelta(seconds=1)),
            ev("approval_requested", SINCE), ev("declined", SINCE, "U2", reason="outside"),
            ev("job.dead_lettered", SINCE, kind="x")),
        "late": timeline("late", ev("received", UNTIL), ev("paged", UNTIL)),
    }
    return rows, timelines


@pytest.fixture
def report() -> Report:
    rows, timelines = month()
    return build_report(rows, timelines, since=SINCE, until=UNTIL)


def test_counts_by_outcome_and_phase(report: Report) -> None:
    assert report.escalations == 9
    assert report.by_outcome == {"emergency": 5, "rfh": 2, "ignored": 1, "none": 1}
    assert report.by_phase == {"received": 1, "ignored": 1, "rfh": 2, "awaiting_approval": 0,
                               "declined": 1, "paging": 0, "paged": 2, "acknowledged": 1,
                               "closed": 1}


def test_the_emergency_funnel(report: Report) -> None:
    assert [(step.step, step.count) for step in report.funnel] == [
        ("received", 9), ("emergency", 5), ("approval_requested", 5), ("approved", 3),
        ("declined", 1), ("timed_out", 1), ("paged", 3), ("acknowledged", 2),
        ("retro_opened", 1)]


def test_weekend_comes_from_the_policy_and_else_from_the_utc_weekday(report: Report) -> None:
    # emergencies: B on the weekend; A, C, D, J on weekdays
    assert report.emergencies_by_day.model_dump() == {"weekend": 1, "weekday": 4, "ratio": 0.25}
    # all: B, E (policy), F (Sunday UTC) on the weekend; G is Monday for the policy
    assert report.escalations_by_day.model_dump() == {"weekend": 3, "weekday": 6, "ratio": 0.5}


def test_share_that_reached_engineering(report: Report) -> None:
    assert report.engineering.model_dump() == {
        "escalations": 9, "paged": 3, "shadow_paged": 1, "share": 0.3333,
        "shadow_share": 0.1111, "goal": 0.1, "goal_met": False, "shadow_goal_met": False}


@pytest.mark.parametrize(("paged", "met"), [(0, True), (1, True), (2, False)])
def test_the_goal_is_ten_percent_or_less(paged: int, met: bool) -> None:
    rows = [row(f"r{n}", nov(10, 10, n), Phase.RFH, "rfh", weekend=False) for n in range(10)]
    timelines = {f"r{n}": timeline(f"r{n}", ev("paged", nov(10, 11))) for n in range(paged)}
    engineering = build_report(rows, timelines, since=SINCE, until=UNTIL).engineering
    assert (engineering.share, engineering.goal_met) == (paged / 10, met)


def test_no_escalations_is_no_share_and_no_ratio() -> None:
    empty = build_report([], {}, since=SINCE, until=UNTIL)
    assert (empty.engineering.share, empty.engineering.goal_met) == (None, True)
    assert empty.emergencies_by_day.ratio is None
    assert empty.time_to_approve.model_dump() == {
        "samples": 0, "p50_minutes": None, "p90_minutes": None}


def test_times_are_of_emergencies_by_nearest_rank(report: Report) -> None:
    # approve: A 4, B 10, J 20 -> ranks ceil(1.5)=2 and ceil(2.7)=3
    assert report.time_to_approve.model_dump() == {
        "samples": 3, "p50_minutes": 10.0, "p90_minutes": 20.0}
    # acknowledge: B 2, A 12 -> ranks 1 and ceil(1.8)=2
    assert report.time_to_acknowledge.model_dump() == {
        "samples": 2, "p50_minutes": 2.0, "p90_minutes": 12.0}
    # resolve: only A (126 min); E is an RFH, its 30 minutes do not count
    assert report.time_to_resolve.model_dump() == {
        "samples": 1, "p50_minutes": 126.0, "p90_minutes": 126.0}


def test_declines_timeouts_criteria_and_dead_letters(report: Report) -> None:
    [decline] = report.declines
    assert (decline.escalation_id, decline.reference, decline.by, decline.at, decline.reason) == (
        "C", "INC-C", "U2", nov(23, 9, 3), "not an emergency: workaround exists")
    [timeout] = report.timeouts
    assert (timeout.escalation_id, timeout.at, timeout.after_minutes, timeout.fallback) == (
        "D", nov(24, 20, 31), 30, "page")
    # B's two classifications count once; G's criteria come from its stored decision
    assert [(c.criterion, c.count) for c in report.top_criteria] == [
        (PU, 4), (SEK, 2), (RD, 1)]
    assert report.dead_lettered_jobs == 1


def test_an_emergency_downgraded_before_approval_still_entered_the_funnel() -> None:
    rows = [row("X", nov(10, 10), Phase.RFH, "rfh", weekend=True)]
    timelines = {"X": timeline("X", classified(nov(10, 10), "emergency"),
                               classified(nov(10, 10, 2), "rfh"))}
    report = build_report(rows, timelines, since=SINCE, until=UNTIL)
    assert (report.by_outcome["rfh"], report.funnel[1].count) == (1, 1)
    assert report.emergencies_by_day.weekend == 1


def test_the_report_is_json_and_round_trips(report: Report) -> None:
    data = json.loads(json.dumps(report.model_dump(mode="json")))
    assert data["since"] == "2026-11-01T00:00:00Z"
    assert data["declines"][0]["at"] == "2026-11-23T09:03:00Z"
    assert Report.model_validate(data) == report


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="since must be timezone-aware"):
        build_report([], {}, since=datetime(2026, 11, 1), until=UNTIL)


@pytest.mark.parametrize(("samples", "p", "expected"), [
    ([], 50, None),
    ([7.0], 50, 7.0),
    ([7.0], 90, 7.0),
    ([3, 1, 2], 50, 2),
    ([float(n) for n in range(10, 0, -1)], 50, 5.0),
    ([float(n) for n in range(1, 11)], 90, 9.0),  # 0.9 * 10 is rank 9, not 10
    ([float(n) for n in range(1, 12)], 90, 10.0),  # ceil(9.9) = 10
    ([1.0, 2.0, 100.0], 100, 100.0),
    ([1.0, 2.0, 100.0], 1, 1.0),
])
def test_nearest_rank_percentiles(samples: list[float], p: int, expected: float | None) -> None:
    assert percentile(samples, p) == expected


@pytest.mark.parametrize("p", [0, 101, -5])
def test_a_percentile_outside_1_to_100_is_refused(p: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.100"):
        percentile([1.0], p)


@pytest.mark.parametrize(("text", "expected"), [
    ("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90)),
    ("2w", timedelta(weeks=2)), (" 7D ", timedelta(days=7)), ("3660d", timedelta(days=3660)),
])
def test_parse_since(text: str, expected: timedelta) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", [
    "", "30", "d", "0d", "-1d", "1.5h", "30y", "30 d", "3661d", "99999999999999999999w", "٣d",
    "9" * 5000 + "d"])  # more digits than Python turns into a number
def test_parse_since_refuses_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 90m, 12h, 30d or 2w; got "):
        parse_since(text)


def test_render_text_shows_the_key_figures(report: Report) -> None:
    text = render_text(report)
    lines = text.splitlines()
    assert lines[0] == ("tier2gate report: escalations opened 2026-11-01 00:00Z -> "
                        "2026-12-01 00:00Z")
    assert "Escalations              9   emergency 5 . rfh 2 . ignored 1 . none 1" in lines
    assert any(line.startswith("Reached engineering") and "33.3%" in line and "MISSED" in line
               for line in lines)
    assert any("shadow" in line and "11.1%" in line for line in lines)
    assert "Emergencies           weekend    1   weekday    4   ratio 0.25" in lines
    assert any(line.split()[:3] == ["to", "approve", "3"] and line.split()[3:] == ["10.0", "20.0"]
               for line in lines)
    assert any(line.split()[:2] == ["retro", "opened"] and line.split()[2] == "1" for line in lines)
    assert "by U2: not an emergency: workaround exists" in text
    assert "after 30.0 min, fallback page" in text
    assert any(line.split() == ["production", "unstable", "4"] for line in lines)
    assert text.isascii()


# --- the `tier2gate report` command -----------------------------------------------------------


def _seed(database: Path) -> None:
    """One approved emergency opened an hour ago, stored the way the daemon stores it."""
    async def write() -> None:
        store = open_store(f"sqlite:///{database}")
        await store.open()
        opened = datetime.now(UTC) - timedelta(hours=1)
        stored = row("esc-cli", opened, Phase.PAGING, "emergency", weekend=False, criteria=(PU,))
        await store.apply(Changes(escalation=stored, events=(
            NewEvent("esc-cli", EventKind.RECEIVED, "incident_io", opened.timestamp()),
            NewEvent("esc-cli", EventKind.APPROVAL_REQUESTED, "tier2gate", opened.timestamp() + 60),
            NewEvent("esc-cli", EventKind.APPROVED, "U1", opened.timestamp() + 360))))
        await store.close()

    asyncio.run(write())


def test_report_command_prints_json(configured: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(configured)
    assert main(["report", "--since", "2h", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["escalations"], data["by_outcome"]["emergency"]) == (1, 1)
    assert data["time_to_approve"] == {"samples": 1, "p50_minutes": 5.0, "p90_minutes": 5.0}


def test_report_command_prints_text_for_the_period_only(
    configured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(configured)
    assert main(["report", "--since", "30m"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tier2gate report: escalations opened ")
    assert "Escalations              0" in out


def test_report_command_refuses_a_bad_since(configured: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--since", "a while"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tier2gate: --since: since must be a positive whole number")


def test_report_command_does_not_create_a_missing_database(
    configured: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report"]) == 1
    assert "missing" in capsys.readouterr().err
    assert not configured.exists()


def test_a_decline_reason_cannot_forge_report_lines(report: Report) -> None:
    [decline] = report.declines
    forged = report.model_copy(update={"declines": [decline.model_copy(update={
        "reason": "no\nReached engineering      0   0.0% (goal <= 10%: met)\x1b[2J",
        "reference": "INC-\r\nC"})]})
    text = render_text(forged)
    lines = text.splitlines()
    assert len(lines) == len(render_text(report).splitlines())
    [line] = [line for line in lines if "by U2:" in line]
    assert line.endswith("no?Reached engineering      0   0.0% (goal <= 10%: met)?[2J")
    assert "INC-??C" in line and "\x1b" not in text
