"""The customer-events calendar: reading it, judging by it, and keeping the last good one."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from daemon.clock import ManualClock, to_datetime
from daemon.customer_calendar import CalendarError, EventSource, parse_ical, parse_yaml_events
from daemon.domain.customer_events import CustomerEvent, EventCalendar, EventKind
from daemon.domain.messages import message
from daemon.domain.policy import Outcome, evaluate
from daemon.domain.policy_file import PolicyError, parse_policy
from daemon.integrations.slack import notice_size
from daemon.jobs.headsup import headsup_text, scheduled, slots_around, weekend_end
from daemon.markup import slack_mrkdwn
from daemon.settings import CustomerEventSettings
from tests.unit.test_policy import OPENED, SHIPPED, escalation

BERLIN = ZoneInfo("Europe/Berlin")
MIGRATION = CustomerEvent(customer="Acme Corp", kind=EventKind.MIGRATION, summary="EU move",
                          start=OPENED - timedelta(hours=1), end=OPENED + timedelta(hours=5))
ICS = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//tier2gate tests//EN\r
BEGIN:VEVENT\r
UID:1@tests\r
DTSTAMP:20261101T000000Z\r
SUMMARY:Acme Corp: upgrade to v5\r
DTSTART:20261205T080000Z\r
DTEND:20261205T120000Z\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:2@tests\r
DTSTAMP:20261101T000000Z\r
SUMMARY:Patching night\r
X-TIER2GATE-CUSTOMER:Globex\r
CATEGORIES:maintenance\r
DTSTART;VALUE=DATE:20261205\r
RRULE:FREQ=WEEKLY;COUNT=2\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:3@tests\r
DTSTAMP:20261101T000000Z\r
SUMMARY:names no customer\r
DTSTART:20261205T080000Z\r
DTEND:20261205T120000Z\r
END:VEVENT\r
END:VCALENDAR\r
"""

S2_DURING_MIGRATION = textwrap.dedent("""\
    severity_aliases: {S1: [SEV1], S2: [SEV2]}
    criteria_fields: {production_unstable: ["Production unstable"]}
    default_outcome: rfh
    rules:
      - name: S2 during a customer's event
        when: {severity: [S2], customer_event_active: true}
        outcome: emergency
""")


def test_an_s2_during_the_customers_migration_is_an_emergency() -> None:
    policy = parse_policy(S2_DURING_MIGRATION)
    calendar = EventCalendar.of([MIGRATION])
    during = evaluate(policy, escalation("SEV2", customer="ACME corp "), OPENED, calendar)
    assert during.outcome is Outcome.EMERGENCY
    assert during.matched == {"severity": "S2", "customer_event_active": True}
    assert during.facts.customer_events == (MIGRATION,)
    after = evaluate(policy, escalation("SEV2", customer="Acme Corp"),
                     MIGRATION.end, calendar)
    assert after.outcome is Outcome.RFH
    other = evaluate(policy, escalation("SEV2", customer="Globex"), OPENED, calendar)
    assert other.outcome is Outcome.RFH
    assert evaluate(policy, escalation("SEV2", customer="Acme Corp"), OPENED).outcome \
        is Outcome.RFH  # no calendar: no event


@pytest.mark.parametrize("written", [
    "Acme\u00a0Corp",  # a no-break space pasted from a web page or a CRM
    "Acme  Corp",  # two spaces
    "\uff21cme Corp",  # a fullwidth A (an IME)
])
def test_a_customer_written_with_other_spaces_or_width_is_the_same_customer(written: str
                                                                            ) -> None:
    """The incident's Customer field and the calendar are typed by different people in
    different tools: spacing and compatibility forms must not hide a migration from the
    SMOC and the policy."""
    policy = parse_policy(S2_DURING_MIGRATION)
    calendar = EventCalendar.of([MIGRATION])
    during = evaluate(policy, escalation("SEV2", customer=written), OPENED, calendar)
    assert during.outcome is Outcome.EMERGENCY
    both = EventCalendar.of([MIGRATION.model_copy(update={"customer": written}), MIGRATION])
    assert len(both.by_customer(OPENED, MIGRATION.end)) == 1  # one customer in the heads-up


def test_the_condition_is_validated_like_the_others() -> None:
    with pytest.raises(PolicyError, match=r"<policy>:6: rule .S2 during a customer's event.: "
                                          r"rules\.0\.when\.customer_event_active"):
        parse_policy(S2_DURING_MIGRATION.replace("customer_event_active: true",
                                                 "customer_event_active: perhaps"))


def test_yaml_events_errors_name_the_line_and_key() -> None:
    text = textwrap.dedent("""\
        events:
          - customer: Acme Corp
            start: 2026-12-05T08:00:00+01:00
            end: 2026-12-06T08:00:00+01:00
          - customer: Globex
            kind: party
            start: 2026-12-05T08:00:00
            end: 2026-12-06T08:00:00+01:00
            colour: red
    """)
    with pytest.raises(CalendarError) as caught:
        parse_yaml_events(text, "events.yaml")
    message = str(caught.value)
    assert "events.yaml line 6: events[1].kind:" in message
    assert "events.yaml line 7: events[1].start: Input should have timezone info" in message
    assert "events.yaml line 9: events[1].colour: unknown key" in message
    [event] = parse_yaml_events(text.split("  - customer: Globex")[0], "events.yaml")
    assert event.customer == "Acme Corp"


def test_ical_events_with_recurrence_and_all_day_dates() -> None:
    found = parse_ical(ICS, "t.ics", BERLIN, datetime(2026, 12, 1, tzinfo=UTC),
                       datetime(2027, 1, 1, tzinfo=UTC))
    events = found.events
    assert found.skipped == 1  # "names no customer"
    assert [(e.customer, e.kind, e.summary, e.start.isoformat()) for e in events] == [
        ("Acme Corp", EventKind.UPGRADE, "upgrade to v5", "2026-12-05T08:00:00+00:00"),
        ("Globex", EventKind.MAINTENANCE, "Patching night", "2026-12-05T00:00:00+01:00"),
        ("Globex", EventKind.MAINTENANCE, "Patching night", "2026-12-12T00:00:00+01:00"),
    ]
    with pytest.raises(CalendarError, match="not a readable iCalendar"):
        parse_ical(b"BEGIN:VCALENDAR\r\nnonsense", "t.ics", BERLIN, OPENED, OPENED)


def _series(uid: str, customer: str, start: str, rule: str) -> bytes:
    return (f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261101T000000Z\r\n"
            f"SUMMARY:{customer}: maintenance\r\nDTSTART:{start}\r\n"
            f"DURATION:PT1S\r\nRRULE:{rule}\r\nEND:VEVENT\r\n").encode()


@pytest.mark.timeout(30)
def test_a_recurrence_too_frequent_to_expand_is_left_out_not_expanded() -> None:
    """Anyone who may edit the calendar could make a series repeat every minute or second:
    expanded it would take minutes and gigabytes at every reload (the daemon's start, the
    URL every 15 minutes). It is left out and counted; sensible series are kept."""
    minute = ",".join(str(n) for n in range(60))
    dense = [
        _series("m@t", "Minutely", "20261101T000000Z", "FREQ=MINUTELY"),
        _series("h@t", "Hourly by minute", "20261101T000000Z",
                f"FREQ=HOURLY;BYMINUTE={minute};BYSECOND={minute}"),
        _series("s@t", "Secondly", "20160101T000000Z", "FREQ=SECONDLY"),
        _series("d@t", "Daily since year one", "00010101T000000Z", "FREQ=DAILY;BYHOUR=1,2"),
    ]
    sensible = [
        _series("w@t", "Globex", "20160104T020000Z", "FREQ=WEEKLY;BYDAY=MO,TH"),
        _series("1@t", "Initech", "20261101T000000Z", "FREQ=MONTHLY;BYDAY=1SA"),
        _series("c@t", "Hooli", "20261129T000000Z", "FREQ=SECONDLY;COUNT=3"),
    ]
    dates = ",".join(f"202612{d:02d}T{h:02d}{m:02d}00Z" for d in range(1, 29)
                     for h in range(24) for m in range(0, 60, 5))  # 8,064 listed dates
    dense.append(f"BEGIN:VEVENT\r\nUID:r@t\r\nDTSTAMP:20261101T000000Z\r\n"
                 f"SUMMARY:Listed: maintenance\r\nDTSTART:20261201T000000Z\r\n"
                 f"DURATION:PT1S\r\nRDATE:{dates}\r\nEND:VEVENT\r\n".encode())
    # Inside another component, where a first look at the calendar's own would not find it.
    dense.append(b"BEGIN:VTODO\r\nUID:todo@t\r\n" + _series(
        "n@t", "Nested", "20261101T000000Z", "FREQ=MINUTELY") + b"END:VTODO\r\n")
    ics = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n" + b"".join(dense)
           + b"".join(sensible) + b"END:VCALENDAR\r\n")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    found = parse_ical(ics, "t.ics", BERLIN, now - timedelta(days=7), now + timedelta(days=42))
    assert found.too_frequent == len(dense)
    assert {e.customer for e in found.events} == {"Globex", "Initech", "Hooli"}
    assert len([e for e in found.events if e.customer == "Globex"]) == 14
    assert len([e for e in found.events if e.customer == "Hooli"]) == 3
    many = b"".join(_series(f"{n}@t", f"Customer {n}", "20261101T000000Z", "FREQ=HOURLY")
                    for n in range(60))
    with pytest.raises(CalendarError, match="could recur more than 50000 times"):
        parse_ical(b"BEGIN:VCALENDAR\r\n" + many + b"END:VCALENDAR\r\n", "t.ics", BERLIN,
                   now - timedelta(days=7), now + timedelta(days=42))


def test_an_event_naming_two_customers_is_each_ones() -> None:
    """A shared maintenance names each customer on its own X-TIER2GATE-CUSTOMER line: it is
    an event of each of them, not of a customer called "[vUnknown(…), …]"."""
    ics = (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:s@t\r\nDTSTART:20261205T080000Z\r\n"
           b"DTEND:20261205T120000Z\r\nSUMMARY:Shared database maintenance\r\n"
           b"X-TIER2GATE-CUSTOMER:Acme Corp\r\nX-TIER2GATE-CUSTOMER:Globex\r\n"
           b"END:VEVENT\r\nEND:VCALENDAR\r\n")
    found = parse_ical(ics, "t.ics", BERLIN, datetime(2026, 12, 1, tzinfo=UTC),
                       datetime(2027, 1, 1, tzinfo=UTC))
    assert sorted((e.customer, e.kind, e.summary) for e in found.events) == [
        ("Acme Corp", EventKind.MAINTENANCE, "Shared database maintenance"),
        ("Globex", EventKind.MAINTENANCE, "Shared database maintenance")]


class CalendarServer:
    def __init__(self) -> None:
        self.status, self.body, self.requests = 200, ICS, 0

    async def handle(self, _request: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(status=self.status, body=self.body)


@pytest.fixture
async def calendar_server() -> AsyncIterator[tuple[CalendarServer, str]]:
    fake = CalendarServer()
    app = web.Application()
    app.router.add_get("/secret-token-RECOGNISABLE/basic.ics", fake.handle)
    async with TestServer(app) as server:
        yield fake, str(server.make_url("/secret-token-RECOGNISABLE/basic.ics"))


async def test_a_failing_url_keeps_the_last_good_calendar(
        calendar_server: tuple[CalendarServer, str], tmp_path: Path) -> None:
    fake, url = calendar_server
    clock = ManualClock(datetime(2026, 12, 1, tzinfo=UTC).timestamp())
    yaml_file = tmp_path / "events.yaml"
    yaml_file.write_text("events: []\n")
    settings = CustomerEventSettings(ical_url=url, files=[yaml_file], refresh_s=60)
    source = EventSource(settings, lambda: BERLIN, lambda: to_datetime(clock.now()),
                         monotonic=clock.monotonic)
    await source.refresh()
    assert len(source.current().events) == 3 and source.problem == ""
    fake.status = 500
    await source.refresh()  # not due yet: nothing fetched
    assert fake.requests == 1
    clock.advance(60)
    await source.refresh()
    assert fake.requests == 2
    assert len(source.current().events) == 3  # the last good ones
    assert "HTTP 500" in source.problem and "last good ones (3)" in source.problem
    assert "RECOGNISABLE" not in source.problem  # the URL's secret is never repeated
    assert source.detail()["customer_events"] == {"events": 3, "problem": source.problem}
    yaml_file.write_text("events: [{customer: Acme Corp, start: nope}]\n")
    source.refresh_files()
    assert len(source.current().events) == 3
    assert f"{yaml_file} line 1: events[0].start" in source.problem
    fake.status = 200
    clock.advance(60)
    yaml_file.write_text("events: []\n")
    await source.refresh()
    assert source.problem == ""


def test_headsup_slots_and_weekend_in_the_business_timezone() -> None:
    policy = parse_policy(SHIPPED.read_text()).business_hours.model_copy(
        update={"timezone": "Europe/Berlin"})
    settings = CustomerEventSettings(headsup_day="fri", headsup_time="15:00")
    thursday = datetime(2026, 11, 19, 12, 0, tzinfo=UTC)
    latest, upcoming = slots_around(policy, settings, thursday)
    assert latest.isoformat() == "2026-11-13T14:00:00+00:00"  # 15:00 in Berlin
    assert upcoming.isoformat() == "2026-11-20T14:00:00+00:00"
    assert weekend_end(policy, upcoming).isoformat() == "2026-11-22T23:00:00+00:00"
    assert [j.key for j in scheduled(policy, settings, thursday, starting=True)] == [
        "events_headsup:2026-11-20"]  # last week's slot is more than a day ago
    friday_evening = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
    assert [j.key for j in scheduled(policy, settings, friday_evening, starting=True)] == [
        "events_headsup:2026-11-20", "events_headsup:2026-11-27"]
    assert [j.key for j in scheduled(policy, settings, friday_evening, starting=False)] == [
        "events_headsup:2026-11-27"]


def test_the_headsup_covers_a_public_holiday_that_lengthens_the_weekend() -> None:
    """Labor Day weekend (US, the shipped policy's holidays): Monday is off-hours like the
    weekend and no heads-up comes before it, so Friday's lists Monday's events too."""
    hours = parse_policy(SHIPPED.read_text()).business_hours
    settings = CustomerEventSettings(headsup_day="fri", headsup_time="15:00")
    before = datetime(2026, 9, 3, 12, 0, tzinfo=UTC)  # Thursday
    _latest, friday = slots_around(hours, settings, before)
    assert friday.isoformat() == "2026-09-04T15:00:00+00:00"
    assert weekend_end(hours, friday).isoformat() == "2026-09-08T00:00:00+00:00"
    with_closing = hours.model_copy(update={"extra_holidays": (date(2026, 11, 30),)})
    plain = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    assert weekend_end(hours, plain).isoformat() == "2026-11-30T00:00:00+00:00"
    assert weekend_end(with_closing, plain).isoformat() == "2026-12-01T00:00:00+00:00"


def test_a_headsup_too_long_for_one_message_says_how_many_events_it_leaves_out() -> None:
    """Slack cuts a message past 40,000 characters: the customers after the cut would vanish
    without a word. The heads-up lists what fits and counts the rest."""
    hours = parse_policy(SHIPPED.read_text()).business_hours
    slot = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    events = EventCalendar.of(
        CustomerEvent(customer=f"Customer {n:03d}", kind=EventKind.MAINTENANCE,
                      summary="y" * 500, start=slot + timedelta(hours=1),
                      end=slot + timedelta(hours=5))
        for n in range(300))
    text = slack_mrkdwn(headsup_text(hours, slot, weekend_end(hours, slot),
                                     events.by_customer(slot, weekend_end(hours, slot)),
                                     message("On call: x"), notice_size))
    assert len(text) <= 40_000
    listed = text.count("• maintenance")
    assert 0 < listed < 300
    assert text.endswith(f"… and {300 - listed} more events (the calendar has them all)")


def test_a_rule_waiting_for_the_customers_event_asks_to_be_judged_again_when_it_starts(
        ) -> None:
    policy = parse_policy(S2_DURING_MIGRATION)
    later = MIGRATION.model_copy(update={"start": OPENED + timedelta(hours=2)})
    before = evaluate(policy, escalation("SEV2", customer="Acme Corp"), OPENED,
                      EventCalendar.of([later]))
    assert before.outcome is Outcome.RFH
    assert before.recheck_at == later.start
    during = evaluate(policy, escalation("SEV2", customer="Acme Corp"), later.start,
                      EventCalendar.of([later]))
    assert during.outcome is Outcome.EMERGENCY
    other = evaluate(policy, escalation("SEV3", customer="Acme Corp"), OPENED,
                     EventCalendar.of([later]))
    assert other.recheck_at is None  # the severity fails too: the event changes nothing
