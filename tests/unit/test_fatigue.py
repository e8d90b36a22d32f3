"""Tier 2 load figures against a fortnight of pages and acknowledgements computed by hand.

The fortnight spans the end of US daylight saving time (Sunday 2026-11-01, 06:00Z: New York
goes from EDT, UTC-4, to EST, UTC-5) and has responders in three time zones:

    A = PA (Ann)     America/New_York
    B = PB (Bo)      Europe/Berlin (CET, UTC+1, since 2026-10-25)
    C = PC (Cy)      time zone lookup failed -> business time zone Europe/London (GMT)
    SMOCs U1, U2 are bucketed in Europe/London too (GMT in the whole fortnight).

Buckets: business 08-18 Mon-Fri, off 18-22 Mon-Fri and all weekend, sleep 22-08 (wins).
"wk 10-31": the weekend whose Saturday is 2026-10-31.

    esc  team      what (UTC)                                  local, bucket
    e1   payments  U1 approves Sat 10-31 23:29                 London 23:29 Sat  -> U1 sleep
                   paged Sat 10-31 23:30, assigned A           NY EDT 19:30 Sat -> A off, wk 10-31
                   A acknowledges 23:42                        -> acknowledged after 12.0 min
    e2   payments  paged Sun 11-01 12:30, assigned A           NY EST 07:30 Sun -> A sleep, wk 10-31
                   (under EDT it would read 08:30, off hours: the DST end matters here)
    e3   payments  paged Mon 11-02 13:30, assigned A           NY EST 08:30 Mon  -> A business
                   escalated Mon 13:45 to B                    Berlin 14:45 Mon  -> B business
                   B acknowledges 13:50                        -> B after 5.0 min, A none
    e4   search    paged Sat 11-07 21:30, assigned B           Berlin 22:30 Sat -> B sleep, wk 11-07
                   B acknowledges 21:35                        (UTC would say 21:30: off hours)
    e5   search    paged Sat 11-14 03:00, assigned C (no zone) London 03:00 Sat -> C sleep, wk 11-14
                   C acknowledges 03:10                        -> 10.0 min
    e6   payments  paged Sat 11-07 15:00; only A's acknowledgement at 15:20 names anyone
                                                               NY EST 10:00 Sat -> A off, wk 11-07
                   (reached by the page itself: interrupted at 15:00) -> 20.0 min
    e7   payments  asked Tue 11-03 23:00, U1 declines 23:05    London 23:00      -> avoided sleep,
                                                                                    U1 sleep
    e8   payments  asked Wed 11-04 12:00, timed out 12:30 (hold), never paged
                                                               London 12:00      -> avoided business
    e9   payments  asked Thu 11-05 19:00, timed out (hold) 19:30, U2 approves 19:40,
                   paged 19:41 with nobody assigned            -> not avoided; U2 off (19:40)

    A: 4 interruptions (e1 off, e2 sleep, e3 business, e6 off): business 1, off 2, sleep 1;
       weekend pages 3 (e1, e2, e6), weekday 1; weekends paged 2 (10-31, 11-07), in a row: 2
    B: 2 (e3 business, e4 sleep): weekend 1, weekday 1; weekends paged 1, in a row 1
    C: 1 (e5 sleep), zone assumed London: weekend 1; weekends paged 1
    payments: A e1 e2 e3 e6 + B e3 = 5: business 2, off 2, sleep 1; weekend 3, weekday 2,
              ratio 1.5; avoided sleep 1 (e7), business 1 (e8)
    search:   B e4 + C e5 = 2: sleep 2; weekend 2, weekday 0, ratio none; avoided none
    avoided in all: business 1, off 0, sleep 1
    U1: 2 decisions, sleep 2. U2: 1 decision, off 1.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from daemon.domain.calendar import BusinessHours
from daemon.domain.events import EventKind
from daemon.domain.fatigue import Bucket, Buckets, bucket, longest_run, weekend_of
from daemon.reporting import build_report, render_text
from daemon.reporting.load import build_load, recent_load
from daemon.store import TimelineEntry
from daemon.store.load_reads import LoadEntry

LONDON = ZoneInfo("Europe/London")
NY, BERLIN = "America/New_York", "Europe/Berlin"
TEAMS = {"e1": "payments", "e2": "payments", "e3": "payments", "e4": "search", "e5": "search",
         "e6": "payments", "e7": "payments", "e8": "payments", "e9": "payments",
         "e10": "payments"}


def utc(month: int, day: int, hour: int, minute: int) -> float:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC).timestamp()


def who(user_id: str, name: str, zone: str) -> dict[str, str]:
    return {"id": user_id, "name": name, "time_zone": zone}


ANN, BO, CY = who("PA", "Ann", NY), who("PB", "Bo", BERLIN), who("PC", "Cy", "")


def entry(esc: str, event: str, at: float, actor: str = "tier2gate",
          **details: Any) -> LoadEntry:
    return LoadEntry(escalation_id=esc, reference=f"#{esc[1:]}", team=TEAMS[esc],
                     event=EventKind(event),
                     actor=actor, at=at, details=details)


def fortnight() -> list[LoadEntry]:
    return [
        entry("e1", "approved", utc(10, 31, 23, 29), "U1"),
        entry("e1", "paged", utc(10, 31, 23, 30), incident_id="Q1"),
        entry("e1", "page_assigned", utc(10, 31, 23, 30), "pagerduty", responders=[ANN]),
        entry("e1", "acknowledged", utc(10, 31, 23, 42), "Ann", responders=[ANN]),
        entry("e2", "paged", utc(11, 1, 12, 30)),
        entry("e2", "page_assigned", utc(11, 1, 12, 30), responders=[ANN]),
        entry("e3", "paged", utc(11, 2, 13, 30)),
        entry("e3", "page_assigned", utc(11, 2, 13, 30), responders=[ANN]),
        entry("e3", "page_escalated", utc(11, 2, 13, 45), responders=[BO]),
        entry("e3", "acknowledged", utc(11, 2, 13, 50), "Bo", responders=[BO]),
        entry("e4", "paged", utc(11, 7, 21, 30)),
        entry("e4", "page_assigned", utc(11, 7, 21, 30), responders=[BO]),
        entry("e4", "acknowledged", utc(11, 7, 21, 35), "Bo", responders=[BO]),
        entry("e5", "paged", utc(11, 14, 3, 0)),
        entry("e5", "page_assigned", utc(11, 14, 3, 0), responders=[CY]),
        entry("e5", "acknowledged", utc(11, 14, 3, 10), "Cy", responders=[CY]),
        entry("e6", "paged", utc(11, 7, 15, 0)),
        entry("e6", "acknowledged", utc(11, 7, 15, 20), "Ann", responders=[ANN]),
        entry("e7", "approval_requested", utc(11, 3, 23, 0)),
        entry("e7", "declined", utc(11, 3, 23, 5), "U1", reason="can wait"),
        entry("e8", "approval_requested", utc(11, 4, 12, 0)),
        entry("e8", "approval_timed_out", utc(11, 4, 12, 30), fallback="hold"),
        entry("e9", "approval_requested", utc(11, 5, 19, 0)),
        entry("e9", "approval_timed_out", utc(11, 5, 19, 30), fallback="hold"),
        entry("e9", "approved", utc(11, 5, 19, 40), "U2"),
        entry("e9", "paged", utc(11, 5, 19, 41)),
    ]


def test_the_fortnight_matches_the_hand_computed_figures() -> None:
    load = build_load(fortnight(), LONDON)
    engineers = {e.responder_id: e for e in load.engineers}
    ann, bo, cy = engineers["PA"], engineers["PB"], engineers["PC"]
    assert [e.responder_id for e in load.engineers] == ["PA", "PB", "PC"]
    assert ann.by_bucket == Buckets(business_hours=1, off_hours=2, sleep_hours=1)
    assert (ann.interruptions, ann.weekend_pages, ann.weekday_pages) == (4, 3, 1)
    assert (ann.weekends_paged, ann.longest_weekend_streak) == (2, 2)
    assert (ann.time_zone, ann.time_zone_assumed) == (NY, False)
    assert [(c.escalation_id, c.bucket, c.acknowledged_after_minutes) for c in ann.caused_by] == [
        ("e1", Bucket.OFF, 12.0), ("e2", Bucket.SLEEP, None), ("e3", Bucket.BUSINESS, None),
        ("e6", Bucket.OFF, 20.0)]
    assert ann.caused_by[3].at == datetime(2026, 11, 7, 15, 0, tzinfo=UTC)  # the page's time
    assert bo.by_bucket == Buckets(business_hours=1, sleep_hours=1)
    assert (bo.weekend_pages, bo.weekday_pages, bo.weekends_paged,
            bo.longest_weekend_streak) == (1, 1, 1, 1)
    assert [(c.escalation_id, c.acknowledged_after_minutes) for c in bo.caused_by] == [
        ("e3", 5.0), ("e4", 5.0)]
    assert cy.by_bucket == Buckets(sleep_hours=1)
    assert (cy.time_zone, cy.time_zone_assumed, cy.weekends_paged) == ("Europe/London", True, 1)
    teams = {t.team: t for t in load.teams}
    assert teams["payments"].by_bucket == Buckets(business_hours=2, off_hours=2, sleep_hours=1)
    assert (teams["payments"].weekend_pages, teams["payments"].weekday_pages,
            teams["payments"].weekend_weekday_ratio) == (3, 2, 1.5)
    assert teams["payments"].avoided == Buckets(business_hours=1, sleep_hours=1)
    assert teams["search"].by_bucket == Buckets(sleep_hours=2)
    assert (teams["search"].weekend_weekday_ratio, teams["search"].avoided) == (None, Buckets())
    assert load.avoided == Buckets(business_hours=1, sleep_hours=1)
    assert [(a.approver, a.decisions, a.by_bucket) for a in load.approvers] == [
        ("U1", 2, Buckets(sleep_hours=2)), ("U2", 1, Buckets(off_hours=1))]


def test_entry_order_does_not_change_the_figures() -> None:
    assert build_load(list(reversed(fortnight())), LONDON) == build_load(fortnight(), LONDON)


def test_the_approval_request_figures_for_the_weekend_in_progress() -> None:
    load = build_load(fortnight(), LONDON)
    # Sunday 2026-11-08 09:00Z: Ann's weekend of 11-07 had one page (e6), the one before
    # (10-31) two; weekends in a row up to this one: 2. Sleep-hour pages in the window: 1.
    recent = recent_load(load, "PA", datetime(2026, 11, 8, 9, 0, tzinfo=UTC))
    assert recent is not None
    assert (recent.name, recent.pages, recent.weekend_pages, recent.sleep_pages,
            recent.consecutive_weekends) == ("Ann", 4, 1, 1, 2)
    # On Monday 11-02 the weekend just gone (10-31) is the one shown: e1 and e2.
    monday = recent_load(load, "PA", datetime(2026, 11, 2, 14, 0, tzinfo=UTC))
    assert monday is not None and (monday.weekend_pages, monday.consecutive_weekends) == (2, 1)
    assert (monday.weekend_now, recent.weekend_now) == (False, True)
    assert recent_load(load, "PZ", datetime(2026, 11, 8, tzinfo=UTC)) is None
    # Saturday 11-14 before any page: the run of 10-31 and 11-07 is not broken yet; the
    # window of the last 7 days holds only e6 (11-07 is in it, 10-31 is not).
    saturday = datetime(2026, 11, 14, 9, 0, tzinfo=UTC)
    later = recent_load(load, "PA", saturday, saturday - timedelta(days=7))
    assert later is not None and (later.weekend_pages, later.consecutive_weekends) == (0, 2)
    assert later.pages == 1


def test_buckets_at_their_edges_and_sleep_wins_on_weekend_nights() -> None:
    zone = ZoneInfo("UTC")
    friday = datetime(2026, 11, 6, tzinfo=UTC)
    assert [bucket(friday.replace(hour=h, minute=m), zone) for h, m in (
        (7, 59), (8, 0), (17, 59), (18, 0), (21, 59), (22, 0))] == [
        Bucket.SLEEP, Bucket.BUSINESS, Bucket.BUSINESS, Bucket.OFF, Bucket.OFF, Bucket.SLEEP]
    saturday = datetime(2026, 11, 7, tzinfo=UTC)
    assert [bucket(saturday.replace(hour=h), zone) for h in (3, 8, 12, 21, 22)] == [
        Bucket.SLEEP, Bucket.OFF, Bucket.OFF, Bucket.OFF, Bucket.SLEEP]


def test_weekends_in_a_row() -> None:
    zone = ZoneInfo("Asia/Tokyo")
    # Friday 2026-11-06 20:00Z is Saturday 05:00 in Tokyo: that weekend is 11-07.
    assert weekend_of(datetime(2026, 11, 6, 20, 0, tzinfo=UTC), zone) == datetime(
        2026, 11, 7).date()
    assert weekend_of(datetime(2026, 11, 6, 14, 0, tzinfo=UTC), zone) is None
    days = [datetime(2026, 10, d).date() for d in (3, 10, 24, 31)] + [datetime(2026, 11, 7).date()]
    assert longest_run(days) == 3 and longest_run([]) == 0


def test_the_report_text_has_the_load_section() -> None:
    timelines: dict[str, list[TimelineEntry]] = {}
    for n, e in enumerate(fortnight()):
        timelines.setdefault(e.escalation_id, []).append(TimelineEntry(
            id=n, escalation_id=e.escalation_id, at=e.at, event=e.event, actor=e.actor,
            details=e.details))
    report = build_report([], timelines, since=datetime(2026, 10, 25, tzinfo=UTC),
                          until=datetime(2026, 11, 20, tzinfo=UTC),
                          hours=BusinessHours(timezone="Europe/London"))
    text = render_text(report)
    assert "  Ann                           4    1    2      1      3      2        2  " \
           "America/New_York\n" in text
    assert "Europe/London (assumed)" in text  # Cy
    assert "Pages avoided (declined or held, never paged; Europe/London): business 1, off 0, " \
           "sleep 1" in text
    assert text.isascii()


def test_an_acknowledgement_from_before_responders_were_kept_counts_by_name() -> None:
    old = [LoadEntry(escalation_id="e1", reference="#1", team="payments", event=EventKind.PAGED,
                     actor="tier2gate", at=utc(11, 7, 23, 0), details={}),
           LoadEntry(escalation_id="e1", reference="#1", team="payments",
                     event=EventKind.ACKNOWLEDGED,
                     actor="Tina Tier2", at=utc(11, 7, 23, 5), details={"event_id": "ev-1"})]
    [tina] = build_load(old, LONDON).engineers
    assert (tina.responder_id, tina.time_zone, tina.time_zone_assumed) == (
        "Tina Tier2", "Europe/London", True)
    assert tina.by_bucket == Buckets(sleep_hours=1) and tina.caused_by[0].at == datetime(
        2026, 11, 7, 23, 0, tzinfo=UTC)


def test_a_reopened_emergency_paged_again_interrupts_again() -> None:
    """Ann is paged for e10 at 03:00 on Saturday 11-14 in New York; it is reopened and she
    is paged for it again at the same hour the next Saturday (the trigger of the second page
    recorded before the page job's own entry): two sleep-hour interruptions, not one."""
    load = build_load([
        entry("e10", "paged", utc(11, 14, 8, 0)),
        entry("e10", "page_assigned", utc(11, 14, 8, 0), responders=[ANN]),
        entry("e10", "acknowledged", utc(11, 14, 8, 10), "Ann", responders=[ANN]),
        entry("e10", "page_assigned", utc(11, 21, 8, 0), responders=[ANN]),
        entry("e10", "paged", utc(11, 21, 8, 1)),
        entry("e10", "acknowledged", utc(11, 21, 8, 6), "Ann", responders=[ANN]),
    ], LONDON)
    [ann] = load.engineers
    assert (ann.interruptions, ann.by_bucket) == (2, Buckets(sleep_hours=2))
    assert (ann.weekends_paged, ann.longest_weekend_streak) == (2, 2)
    assert [(c.at, c.acknowledged_after_minutes) for c in ann.caused_by] == [
        (datetime(2026, 11, 14, 8, 0, tzinfo=UTC), 10.0),
        (datetime(2026, 11, 21, 8, 1, tzinfo=UTC), 5.0)]
