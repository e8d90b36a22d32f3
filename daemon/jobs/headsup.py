"""The weekly heads-up: Tier 2 hears on Friday afternoon what the weekend holds per customer.

One `events_headsup` job per week, keyed by the local date of its slot
(`customer_events.headsup_day` at `headsup_time` in the policy's business timezone). The job
queue's unique keys make it once across replicas and restarts: every process enqueues the next
slot's job when it starts and whenever the slot moves on, and a key that exists is skipped. A
process started within a day after a slot also enqueues that slot, so a restart over Friday
afternoon still sends it late; a day is inside the shortest job retention
(`retention.jobs_days` >= 1), so a finished heads-up's key is still there and it is never sent
twice. The notice is tagged with the key, and a retry after a crash between Slack's answer and
the commit finds it instead of posting again.

The heads-up lists the customer events from the slot until the weekend is over (the first
local day after the policy's `weekend_days` and the holidays that follow them) and who is on
call for Tier 2 then (`pagerduty.tier2_schedule_id`). With no events it posts nothing, unless
a calendar source could not be read: then it says so (with the events that are known), since
silence would read as a quiet weekend. A job that runs after its weekend ended (the daemon was
down) posts nothing either: news of a past weekend helps nobody.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from daemon.clock import to_datetime
from daemon.domain.calendar import WEEKDAYS, BusinessHours
from daemon.domain.customer_events import CustomerEvent
from daemon.domain.messages import Message, joined, mention, message, strong
from daemon.integrations.base import Identity, OnCall
from daemon.jobs.deps import Deps
from daemon.logging import get_logger
from daemon.settings import CustomerEventSettings
from daemon.store import Changes, Job, NewJob
from daemon.workers.retry import Permanent, Retry

HEADSUP = "events_headsup"
LATE_START_S = 86400.0  # a process started this long after a slot still sends its heads-up
_ONCALL_TRIES = 3  # then the heads-up goes out saying the on-call lookup failed
# Slack cuts a message past 40,000 characters (`integrations.slack.TEXT_MAX_CHARS`), counted as
# the chat sends it (`Notices.notice_size`): the events that do not fit are counted in a last
# line instead of vanishing in the cut.
HEADSUP_MAX_CHARS = 39_000

log = get_logger("tier2gate.customer_events")


def slot_at(hours: BusinessHours, settings: CustomerEventSettings, day: date) -> datetime:
    """The heads-up instant on local date `day` (which falls on `headsup_day`)."""
    hh, mm = (int(part) for part in settings.headsup_time.split(":"))
    return datetime.combine(day, time(hh, mm), tzinfo=hours.zone).astimezone(UTC)


def slots_around(hours: BusinessHours, settings: CustomerEventSettings, now: datetime
                 ) -> tuple[datetime, datetime]:
    """The latest slot at or before `now` and the first one after it."""
    today = hours.local(now).date()
    wanted = WEEKDAYS.index(settings.headsup_day)
    back = (today.weekday() - wanted) % 7
    latest = slot_at(hours, settings, today - timedelta(days=back))
    if latest > now:
        latest = slot_at(hours, settings, today - timedelta(days=back + 7))
    return latest, slot_at(hours, settings, hours.local(latest).date() + timedelta(days=7))


def weekend_end(hours: BusinessHours, slot: datetime) -> datetime:
    """Local midnight starting the first day after the weekend that follows (or holds) `slot`,
    lengthened by the public holidays and closing days next to it (a Labor Day Monday is
    covered like the weekend, and no heads-up comes before it). Without weekend days: three
    days after the slot."""
    if not hours.weekend_days:
        return slot + timedelta(days=3)
    day = hours.local(slot).date()
    while WEEKDAYS[day.weekday()] not in hours.weekend_days:
        day += timedelta(days=1)
    while WEEKDAYS[day.weekday()] in hours.weekend_days or hours.is_holiday(day):
        day += timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=hours.zone).astimezone(UTC)


def headsup_job(hours: BusinessHours, slot: datetime) -> NewJob:
    key = f"{HEADSUP}:{hours.local(slot).date().isoformat()}"
    return NewJob(HEADSUP, key, {"slot": slot.timestamp()}, slot.timestamp())


def scheduled(hours: BusinessHours, settings: CustomerEventSettings, now: datetime, *,
              starting: bool) -> tuple[NewJob, ...]:
    """The heads-up jobs to enqueue: the next slot's; at start also the latest slot's when it
    was less than `LATE_START_S` ago."""
    latest, upcoming = slots_around(hours, settings, now)
    jobs = [headsup_job(hours, upcoming)]
    if starting and (now - latest).total_seconds() < LATE_START_S:
        jobs.insert(0, headsup_job(hours, latest))
    return tuple(jobs)


def headsup_text(hours: BusinessHours, since: datetime, until: datetime,
                 events: dict[str, tuple[CustomerEvent, ...]], on_call: Message,
                 size: Callable[[Message], int], problem: str = "") -> Message:
    """The weekend's heads-up: customer names, summaries and `problem` (why some calendar
    source could not be read; it never quotes the URL) are text. `size` is the chat's measure
    of a message, which keeps it under `HEADSUP_MAX_CHARS`."""
    lines = [message(":calendar: ", strong("Customer events this weekend"),
                     f" ({_local(hours, since)} to {_local(hours, until)}, {hours.timezone})"),
             on_call]
    if problem:
        lines.append(message(":warning: The customer-events calendar could not be read, so "
                             f"this list may miss events{'' if events else ' (none is known)'}: "
                             f"{problem}"))
    used = size(joined(lines, "\n"))
    left = sum(len(found) for found in events.values())
    for customer, found in events.items():
        header = strong(customer)
        for n, event in enumerate(found):
            what = event.kind.value + (f": {event.summary}" if event.summary else "")
            line = message(f"• {what}, {_local(hours, event.start)} to "
                           f"{_local(hours, event.end)}")
            adding = ([header] if n == 0 else []) + [line]
            more = sum(size(text) + 1 for text in adding)
            if used + more > HEADSUP_MAX_CHARS:
                lines.append(message(f"… and {left} more events (the calendar has them all)"))
                return joined(lines, "\n")
            lines += adding
            used += more
            left -= 1
    return joined(lines, "\n")


def _local(hours: BusinessHours, at: datetime) -> str:
    return hours.local(at).strftime("%a %d %b %H:%M")


class Headsup:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def run(self, job: Job) -> Changes | None:
        deps = self.deps
        if deps.events is None:
            log.info("customer_events.headsup_skipped", key=job.key, why="no calendar")
            return None
        hours = deps.policy.current().business_hours
        slot = to_datetime(float(job.payload["slot"]))
        until = weekend_end(hours, slot)
        now = to_datetime(deps.clock.now())
        if now >= until:
            log.warning("customer_events.headsup_skipped", key=job.key, why="weekend is over")
            return None
        events = deps.events.current().by_customer(slot, until)
        problem = deps.events.problem  # no events known may be a calendar that failed
        if not events and not problem:
            log.info("customer_events.headsup_skipped", key=job.key, why="no events")
            return None
        channel = deps.settings.slack.tier2()
        if not channel:
            raise Permanent("no channel for the customer-events heads-up: set "
                            "slack.tier2_channel (or slack.rfh_channel)")
        notices = deps.need_notices()
        if await notices.find_notice(channel, job.key) is not None:
            log.info("customer_events.headsup_found", key=job.key)  # posted before a crash
            return None
        on_call = await self._on_call(deps.need_identity(), slot, until, job.attempts)
        await notices.post_notice(channel, headsup_text(hours, slot, until, events, on_call,
                                                        notices.notice_size, problem),
                                  key=job.key)
        log.info("customer_events.headsup_posted", key=job.key, customers=len(events),
                 events=sum(len(found) for found in events.values()))
        return None

    async def _on_call(self, chat: Identity, since: datetime, until: datetime, attempt: int
                       ) -> Message:
        """Who is on call for Tier 2, as a line. A lookup that keeps failing is said in the
        line rather than holding back the heads-up."""
        schedule = self.deps.settings.pagerduty.tier2_schedule_id
        if not schedule or self.deps.pager is None:
            return message("On call for Tier 2: not configured (pagerduty.tier2_schedule_id)")
        try:
            shifts = await self.deps.pager.on_call(schedule, since, until)
            people = [await _person(chat, shift) for shift in shifts]
        except Retry:
            if attempt < _ONCALL_TRIES:
                raise
            return message("On call for Tier 2: PagerDuty did not answer; look at the schedule")
        except Permanent as exc:
            return message(f"On call for Tier 2: could not be looked up ({exc})")
        if not people:
            return message(":warning: On call for Tier 2: ", strong("nobody"),
                           " on the schedule this weekend")
        return message("On call for Tier 2: ", joined(dict.fromkeys(people), ", "))


async def _person(chat: Identity, shift: OnCall) -> Message:
    """A mention when the email is a chat user, else the pager's name for them, as text."""
    user_id = await chat.user_id_for_email(shift.email) if shift.email else None
    return mention(user_id) if user_id else message(shift.name or shift.email)
