"""Reading the customer-events calendar: iCalendar files or a URL, and YAML lists.

Sources are re-read like the policy: a file when it changed, the URL every
`customer_events.refresh_s`. A source that fails (the URL answers 500, a file became invalid)
keeps its last good events in force, logs `customer_events.reload_failed` and says why in
`problem` (admin `/readyz` detail), so a calendar outage neither stops the daemon nor forgets
a migration weekend. The URL may carry a secret token (a shared calendar's private address):
it is never logged or put in a message.

iCalendar (RFC 5545, https://www.rfc-editor.org/rfc/rfc5545) is parsed with `icalendar`
(https://icalendar.readthedocs.io/) and recurring events are expanded with
`recurring-ical-events` (https://github.com/niccokunzmann/python-recurring-ical-events).
An event names its customer in `X-TIER2GATE-CUSTOMER` (repeated for each customer of a
shared event), or as the SUMMARY's text before the first colon ("Acme Corp: migration to the
EU region"); its kind is a CATEGORIES value (maintenance, upgrade, migration, launch), else
the first such word in the summary.
"""

from __future__ import annotations

import asyncio
import functools
import time as systime
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import icalendar
import recurring_ical_events
from pydantic import ValidationError

from daemon.domain.customer_events import CustomerEvent, EventCalendar, EventKind
from daemon.integrations.tls import trusted_context
from daemon.logging import get_logger
from daemon.settings import CustomerEventSettings
from daemon.yamlfile import YamlDoc, YamlError, dotted

log = get_logger("tier2gate.customer_events")

CUSTOMER_PROPERTY = "X-TIER2GATE-CUSTOMER"
EXPAND_BEFORE = timedelta(days=7)  # recurring events are expanded over this window around now
EXPAND_AFTER = timedelta(days=42)
REEXPAND_S = 86400.0  # files are read again this often even unchanged, to expand further
MAX_CALENDAR_BYTES = 5 * 1024 * 1024
FETCH_TIMEOUT_S = 10.0
# Expanding a recurrence walks it from its DTSTART, one step per occurrence the rule can make,
# in memory: `FREQ=SECONDLY` (or `FREQ=HOURLY;BYMINUTE=0,…,59;BYSECOND=0,…,59`) in a calendar
# anyone with access may edit would take hours and gigabytes, and hold up every reload. A
# series is estimated before it is expanded, from its rules and listed dates (RDATE), wherever
# it is in the document, and left out (counted in `Read.too_frequent`) past either bound; a
# calendar whose series together could make more than `MAX_OCCURRENCES` in the window is
# refused like an unreadable one.
MAX_RECURRENCE_STEPS = 500_000  # steps from a series' DTSTART to the window's end
MAX_SERIES_OCCURRENCES = 5_000  # occurrences of one series in the window (hourly: ~1,200)
MAX_OCCURRENCES = 50_000  # occurrences of a whole calendar in the window
_RULE_PERIOD = {"SECONDLY": timedelta(seconds=1), "MINUTELY": timedelta(minutes=1),
                "HOURLY": timedelta(hours=1), "DAILY": timedelta(days=1),
                "WEEKLY": timedelta(weeks=1), "MONTHLY": timedelta(days=28),
                "YEARLY": timedelta(days=365)}


@dataclass(frozen=True)
class Read:
    """What a calendar source gave: its usable events, and how many entries were skipped
    (an iCalendar event naming no customer, or without a usable start and end)."""

    events: list[CustomerEvent]
    skipped: int = 0
    too_frequent: int = 0  # recurring series left out: they repeat too often to expand


class CalendarError(ValueError):
    """A calendar source cannot be used; the message names the file (never the URL) and, for
    YAML, the line and key."""


def parse_yaml_events(text: str, name: str) -> list[CustomerEvent]:
    """A YAML document `events: [{customer, kind, summary, start, end}, ...]`; `start` and
    `end` are ISO 8601 date-times with an offset (2026-12-05T08:00:00+01:00)."""
    try:
        doc = YamlDoc(text, name)
    except YamlError as exc:
        raise CalendarError(str(exc)) from None
    data = doc.data
    if data is None:
        return []
    if not isinstance(data, dict) or set(data) - {"events"}:
        raise CalendarError(f"{name} line 1: expected a mapping with one key, `events`")
    items = data.get("events") or []
    if not isinstance(items, list):
        raise CalendarError(f"{name} line {doc.line_of(['events'])}: events: expected a list")
    events, problems = [], []
    for index, item in enumerate(items):
        try:
            events.append(CustomerEvent.model_validate(item))
        except ValidationError as exc:
            for error in exc.errors(include_input=False, include_url=False):
                loc = ["events", index, *(p for p in error["loc"] if isinstance(p, str | int))]
                what = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
                problems.append(f"{name} line {doc.line_of(loc)}: {dotted(loc)}: {what}")
    if problems:
        raise CalendarError("\n".join(problems))
    return events


def parse_ical(data: bytes, name: str, zone: ZoneInfo, since: datetime, until: datetime
               ) -> Read:
    """The VEVENTs of an iCalendar document that overlap [since, until), recurrences expanded.
    Dates without a time (all-day events) and floating times are read in `zone`. An event
    that names no customer is skipped (counted), the rest is used."""
    try:
        calendar = icalendar.Calendar.from_ical(data)
        too_frequent = _drop_too_frequent(calendar, name, zone, since, until)
        found = recurring_ical_events.of(calendar).between(since, until)
    except CalendarError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CalendarError(f"{name}: not a readable iCalendar document "
                            f"({type(exc).__name__})") from None
    events, skipped = [], 0
    for component in found:
        each = _events(component, zone)
        if not each:
            skipped += 1
        events += each
    return Read(events, skipped, too_frequent)


def _drop_too_frequent(calendar: Any, name: str, zone: ZoneInfo, since: datetime,
                       until: datetime) -> int:
    """Remove the recurring events too costly to expand (see `MAX_RECURRENCE_STEPS`); how
    many. Raises `CalendarError` when what is left could still make too many occurrences."""
    dropped, total = 0, 0
    for parent, component in _nested(calendar):  # a VEVENT may hide inside another component
        if getattr(component, "name", "") != "VEVENT":
            continue
        rules = component.get("RRULE")
        start = component.get("DTSTART")
        dates = component.get("RDATE")  # listed occurrences count one each
        steps = occurrences = 1 + sum(len(getattr(listed, "dts", ()))
                                      for listed in (dates if isinstance(dates, list)
                                                     else [dates] if dates is not None else []))
        if rules is None or start is None:
            rules = []
        first = _instant(start.dt, zone) if start is not None else since
        for rule in rules if isinstance(rules, list) else [rules]:
            rule_steps, rule_occurrences = _rule_cost(rule, first, zone, since, until)
            steps, occurrences = steps + rule_steps, occurrences + rule_occurrences
        if steps > MAX_RECURRENCE_STEPS or occurrences > MAX_SERIES_OCCURRENCES:
            parent.subcomponents.remove(component)
            dropped += 1
        else:
            total += occurrences
    if total > MAX_OCCURRENCES:
        raise CalendarError(f"{name}: its events could recur more than {MAX_OCCURRENCES} "
                            f"times between {since:%Y-%m-%d} and {until:%Y-%m-%d}")
    return dropped


def _nested(parent: Any) -> Iterator[tuple[Any, Any]]:
    """(parent, component) for every component under `parent`, at any depth."""
    for child in list(getattr(parent, "subcomponents", ())):
        yield parent, child
        yield from _nested(child)


def _rule_cost(rule: Any, first: datetime, zone: ZoneInfo, since: datetime, until: datetime
               ) -> tuple[int, int]:
    """(steps from `first` to `until`, occurrences in [since, until)) that an RRULE can make
    at most, from its frequency, interval, BY lists, UNTIL and COUNT. An unknown frequency
    costs nothing here (the expansion refuses it)."""
    def values(key: str) -> list[Any]:
        found = rule.get(key)
        return [] if found is None else found if isinstance(found, list) else [found]

    frequency = str((values("FREQ") or [""])[0]).upper()
    period = _RULE_PERIOD.get(frequency)
    if period is None:
        return 0, 0
    try:
        period *= max(1, int((values("INTERVAL") or [1])[0]))
        count = int(values("COUNT")[0]) if values("COUNT") else None
    except (TypeError, ValueError):
        count = None
    finer = {"SECONDLY": (), "MINUTELY": ("BYSECOND",), "HOURLY": ("BYSECOND", "BYMINUTE")}
    per_period = 1
    for key in finer.get(frequency, ("BYSECOND", "BYMINUTE", "BYHOUR")):
        per_period *= max(1, len(values(key)))
    per_period *= _days_per_period(frequency, values)
    if values("BYSETPOS"):
        per_period = min(per_period, len(values("BYSETPOS")))
    end = until
    last = values("UNTIL")
    if last and isinstance(last[0], date):
        end = min(end, _instant(last[0], zone))
    walked = int(max(0.0, (end - first) / period) + 1) * per_period
    shown = int(max(0.0, (end - max(first, since)) / period) + 1) * per_period
    if count is None:
        return walked, shown
    # COUNT ends the walk after that many occurrences; with a BY list that skips some, a walk
    # by the second could still pass months between two of them, so it bounds only rules
    # without one.
    plain = not any(key.startswith("BY") for key in rule)
    return (min(walked, count) if plain else walked), min(shown, count)


def _days_per_period(frequency: str, values: Callable[[str], list[Any]]) -> int:
    """How many days of one period a rule can fall on, at most."""
    if frequency == "WEEKLY":
        return max(1, len(values("BYDAY")))
    if frequency not in ("MONTHLY", "YEARLY"):
        return 1
    weeks = 5 if frequency == "MONTHLY" else 53
    # A weekday with an ordinal ("1MO", "-1FR") falls once per period, a bare one every week.
    by_weekday = sum(1 if str(day)[:1] in "+-0123456789" else weeks for day in values("BYDAY"))
    months = max(1, len(values("BYMONTH"))) if frequency == "YEARLY" else 1
    bounds = [count for count in (by_weekday, len(values("BYMONTHDAY")) * months,
                                  len(values("BYYEARDAY")), len(values("BYWEEKNO")) * 7)
              if count]
    return min(bounds) if bounds else months


def _events(component: Any, zone: ZoneInfo) -> list[CustomerEvent]:
    """The event of each customer the component names: one per `X-TIER2GATE-CUSTOMER` line
    (a shared maintenance names several), else the one before the summary's colon."""
    summary = str(component.get("SUMMARY", "")).strip()
    named = component.get(CUSTOMER_PROPERTY)
    customers = [str(value).strip() for value in
                 (named if isinstance(named, list) else [named] if named is not None else [])]
    customers = [customer for customer in dict.fromkeys(customers) if customer]
    title = summary
    if not customers:
        customer, colon, title = summary.partition(":")
        if not colon:
            return []
        customers = [customer]
    events = [_event(component, zone, customer, title) for customer in customers]
    return [event for event in events if event is not None]


def _event(component: Any, zone: ZoneInfo, customer: str, title: str) -> CustomerEvent | None:
    start_value = component.get("DTSTART")
    if start_value is None:
        return None
    start = _instant(start_value.dt, zone)
    end_value = component.get("DTEND")
    if end_value is not None:
        end = _instant(end_value.dt, zone)
    elif component.get("DURATION") is not None:
        end = start + component["DURATION"].dt
    elif not isinstance(start_value.dt, datetime):
        end = start + timedelta(days=1)  # RFC 5545 3.6.1: an all-day event without an end
    else:
        return None
    try:
        return CustomerEvent(customer=customer.strip()[:200], summary=title.strip()[:500],
                             kind=_kind(component, title), start=start, end=end)
    except ValidationError:
        return None


def _instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0), tzinfo=zone)
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def _kind(component: Any, summary: str) -> EventKind:
    raw = component.get("CATEGORIES")
    words: list[str] = []
    for item in raw if isinstance(raw, list) else [raw] if raw is not None else []:
        words += [str(c) for c in getattr(item, "cats", [])]
    words += summary.replace(",", " ").split()
    for word in words:
        try:
            return EventKind(word.strip().casefold())
        except ValueError:
            continue
    return EventKind.OTHER


def read_file(path: Path, zone: ZoneInfo, now: datetime) -> Read:
    """One calendar file, by its extension: YAML (.yaml, .yml) or iCalendar (anything else),
    recurrences expanded around `now`. Raises `CalendarError`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CalendarError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            return Read(parse_yaml_events(data.decode("utf-8"), str(path)))
        except UnicodeDecodeError:
            raise CalendarError(f"{path}: not UTF-8 text") from None
    return parse_ical(data, str(path), zone, now - EXPAND_BEFORE, now + EXPAND_AFTER)


def check_files(settings: CustomerEventSettings, zone: ZoneInfo, now: datetime) -> list[str]:
    """Every problem of the configured calendar files (`tier2gate check-config`), one per
    line, naming the file and, for YAML, the line and key."""
    problems: list[str] = []
    for path in settings.files:
        try:
            read_file(path, zone, now)
        except CalendarError as exc:
            problems += str(exc).splitlines()
    return problems


def calendar_url(url: str) -> str:
    """The address to GET: `webcal://` (and `webcals://`), which iCloud and Outlook hand out
    for a subscription, is https by convention, as every calendar client reads it."""
    scheme, sep, rest = url.strip().partition("://")
    return f"https://{rest}" if sep and scheme.casefold() in ("webcal", "webcals") \
        else url.strip()


def is_web_address(url: str) -> bool:
    """Whether `calendar_url(url)` is an http(s) address with a host (`check-config`)."""
    scheme, sep, rest = calendar_url(url).partition("://")
    return bool(sep) and scheme.casefold() in ("http", "https") and bool(rest.split("/")[0])


async def fetch_calendar(url: str, ca_file: Path | None) -> bytes:
    """GET the calendar; every failure is a `CalendarError` that does not quote the URL."""
    what = "customer_events.ical_url"
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(
                calendar_url(url), ssl=trusted_context(ca_file)) as answer:
            status = answer.status
            body = await answer.content.read(MAX_CALENDAR_BYTES + 1) if status == 200 \
                else b""
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise CalendarError(f"{what}: {type(exc).__name__}") from None
    if status != 200:
        raise CalendarError(f"{what}: HTTP {status}")
    if len(body) > MAX_CALENDAR_BYTES:
        raise CalendarError(f"{what}: larger than {MAX_CALENDAR_BYTES} bytes")
    return body


async def inspect_sources(settings: CustomerEventSettings, zone: ZoneInfo, now: datetime,
                          ca_file: Path | None) -> tuple[Read, list[str]]:
    """Every source read once, nothing kept and nothing logged (`tier2gate doctor`): the
    events and skipped entries of those that could be read, and the problems of the rest."""
    found: list[CustomerEvent] = []
    skipped, too_frequent, problems = 0, 0, []
    window = (zone, now - EXPAND_BEFORE, now + EXPAND_AFTER)
    readers: list[Callable[[], Awaitable[Read]]] = [
        functools.partial(asyncio.to_thread, read_file, path, zone, now)
        for path in settings.files]
    url = settings.ical_url
    if url is not None and url.get_secret_value():
        async def from_url() -> Read:
            body = await fetch_calendar(url.get_secret_value(), ca_file)
            return await asyncio.to_thread(parse_ical, body, "customer_events.ical_url",
                                           *window)

        readers.append(from_url)
    for read in readers:
        try:
            result = await read()
        except CalendarError as exc:
            problems.append(str(exc))
            continue
        found += result.events
        skipped += result.skipped
        too_frequent += result.too_frequent
    return Read(found, skipped, too_frequent), problems


class EventSource:
    """The calendar in force: every source's last good events, together.

    `zone` is read from the policy in force each time (business hours may change); `now` and
    `monotonic` are the daemon's clocks."""

    def __init__(self, settings: CustomerEventSettings, zone: Callable[[], ZoneInfo],
                 now: Callable[[], datetime], *, ca_file: Path | None = None,
                 monotonic: Callable[[], float] = systime.monotonic) -> None:
        self.settings = settings
        self._zone, self._now, self._monotonic = zone, now, monotonic
        self._ca_file = ca_file
        self._events: dict[str, list[CustomerEvent]] = {}
        self._stats: dict[Path, tuple[int, int] | None] = {}
        self._problems: dict[str, str] = {}
        self._fetched_at: float | None = None
        self._expanded_at: float | None = None
        self.calendar = EventCalendar()
        self.refresh_files()

    @property
    def problem(self) -> str:
        """Why some source is not current ("" when every one is)."""
        return "; ".join(self._problems.values())

    def current(self) -> EventCalendar:
        return self.calendar

    def refresh_files(self, window: tuple[ZoneInfo, datetime] | None = None) -> None:
        """Re-read changed files (all of them once a day, to expand recurrences further).
        `window`: the zone and now to read them with (looked up here when not given)."""
        zone, now = window or (self._zone(), self._now())
        stale = (self._expanded_at is None
                 or self._monotonic() - self._expanded_at > REEXPAND_S)
        for path in self.settings.files:
            seen = _stat(path)
            if not stale and path in self._stats and self._stats[path] == seen:
                continue
            self._stats[path] = seen
            self._load(str(path), functools.partial(read_file, path, zone, now))
        if stale:
            self._expanded_at = self._monotonic()
        self._combine()

    async def refresh(self) -> None:
        """Files, then the URL when it is due; never raises for a failing source. Reading and
        parsing (synchronous, possibly a large calendar) run in a thread, off the event loop."""
        await asyncio.to_thread(self.refresh_files, (self._zone(), self._now()))
        url = self.settings.ical_url
        if url is None or not url.get_secret_value():
            return
        due = (self._fetched_at is None
               or self._monotonic() - self._fetched_at >= self.settings.refresh_s)
        if not due:
            return
        self._fetched_at = self._monotonic()
        try:
            body = await fetch_calendar(url.get_secret_value(), self._ca_file)
        except CalendarError as exc:
            self._failed("customer_events.ical_url", str(exc))
            return
        window = self._window()
        await asyncio.to_thread(self._load, "customer_events.ical_url",
                                lambda: parse_ical(body, "customer_events.ical_url", *window))
        self._combine()

    def _window(self) -> tuple[ZoneInfo, datetime, datetime]:
        now = self._now()
        return self._zone(), now - EXPAND_BEFORE, now + EXPAND_AFTER

    def _load(self, name: str, read: Callable[[], Read]) -> None:
        try:
            found = read()
        except CalendarError as exc:
            self._failed(name, str(exc))
            return
        events = found.events
        if found.too_frequent:
            log.warning("customer_events.skipped", source=name, count=found.too_frequent,
                        why="recurring more often than a customer event can (a rule that "
                            "repeats by the minute or second, or from too long ago)")
        if found.skipped:
            log.warning("customer_events.skipped", source=name, count=found.skipped,
                        why=f"no customer ({CUSTOMER_PROPERTY} or 'Customer: ...' summary) "
                            "or no usable start and end")
        if name in self._problems:
            log.info("customer_events.recovered", source=name)
        self._problems.pop(name, None)
        self._events[name] = events
        log.info("customer_events.loaded", source=name, events=len(events))

    def _failed(self, name: str, error: str) -> None:
        kept = len(self._events.get(name, ()))
        self._problems[name] = (f"customer events from {name} not reloaded, the last good "
                                f"ones ({kept}) are in force: {error}")
        log.error("customer_events.reload_failed", source=name, error=error, kept=kept)

    def _combine(self) -> None:
        self.calendar = EventCalendar.of(e for events in self._events.values() for e in events)

    def detail(self) -> dict[str, object]:
        """For the admin `/readyz`: how many events are known and what is failing."""
        found: dict[str, object] = {"events": len(self.calendar.events)}
        if self.problem:
            found["problem"] = self.problem
        return {"customer_events": found}


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size
