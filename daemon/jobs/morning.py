"""The morning queue: when a business window opens, the requests for help held for it are
judged again and Tier 2 gets them in one message.

The requests held are the requests for help on Tier 2's path (not those the Escalation
Engineers hold or resolved without Engineering) and the emergencies the SMOC declined (a decline
makes one a request for help, due the next business morning; it is listed as such, not judged
again). One `morning_queue` job per business-window start (policy `business_hours`), keyed by
that instant: every process enqueues the next one (at start and whenever the previous one passed),
and the key makes it run once however many replicas do. The job fans out a `recheck` per held
request for help (the facts are judged under the policy in force: an RFH may have become an
emergency overnight), and posts the requests the policy still calls requests for help, oldest
first, to the Tier 2 channel (`slack.tier2_channel`, else `rfh_channel`, else
`approval_channel`). The notice is tagged with the key, so a retry after a crash finds it
instead of posting twice. Nothing held: no message.
"""

from __future__ import annotations

from datetime import UTC, datetime

from daemon.clock import to_datetime
from daemon.domain.calendar import BusinessHours
from daemon.domain.effects import EffectKind
from daemon.domain.events import RfhIssueOpened
from daemon.domain.gate import EEOutcome, Gate, Phase
from daemon.domain.messages import Link, Message, joined, message, strong
from daemon.domain.policy import Outcome, evaluate
from daemon.jobs.deps import Deps
from daemon.jobs.escalations import job_key
from daemon.jobs.views import human_time
from daemon.logging import get_logger
from daemon.store import Changes, Job, NewJob, TimelineEntry
from daemon.store.mapping import Loaded
from daemon.workers.retry import Permanent

MORNING = "morning_queue"
MAX_LISTED = 50  # one message: past this many the rest are counted, not listed

log = get_logger("tier2gate.morning")


def morning_job(hours: BusinessHours, now: datetime) -> NewJob:
    """The job of the next business-window start at or after `now`."""
    start = hours.next_business_start(now).astimezone(UTC)
    return NewJob(MORNING, f"{MORNING}:{start.isoformat()}", {"start": start.timestamp()},
                  start.timestamp())


def queue_text(start: datetime, hours: BusinessHours, held: list[tuple[Loaded, str]]
               ) -> Message:
    """The morning's list: titles, references and customers are the sources' text."""
    local = hours.local(start).strftime("%a %d %b %H:%M")
    lines = [message(":sunrise: ", strong("Requests for help waiting for Tier 2"),
                     f" ({len(held)}, business hours open {local} {hours.timezone})")]
    for current, issue_url in held[:MAX_LISTED]:
        escalation = current.escalation
        parts = [strong(escalation.reference or current.row.id),
                 message(escalation.title or "(untitled)")]
        if escalation.customer:
            parts.append(message(escalation.customer))
        parts.append(message(f"since {human_time(escalation.created_at)}"))
        if current.gate.phase is Phase.DECLINED:
            parts.append(message("declined by the SMOC"))
        if issue_url:
            parts.append(message(Link(url=issue_url, label="issue")))
        lines.append(message("• ", joined(parts, " · ")))
    if len(held) > MAX_LISTED:
        lines.append(message(f"… and {len(held) - MAX_LISTED} more (the dashboard lists them "
                             "all)"))
    return joined(lines, "\n")


def with_tier2(gate: Gate) -> bool:
    """Whether the request waits for Tier 2: not one the Escalation Engineers hold (offered,
    or taken and not yet sent to Engineering) or resolved without Engineering."""
    ee = gate.ee
    if ee is None:
        return True
    if ee.outcome is EEOutcome.RESOLVED:
        return False
    return ee.outcome is EEOutcome.ENGINEERING or ee.unclaimed


def _issue_url(entries: list[TimelineEntry]) -> str:
    urls = [str(fact.url) for e in entries if isinstance(fact := e.fact, RfhIssueOpened)]
    return urls[-1] if urls else ""


class MorningQueue:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def run(self, job: Job) -> Changes | None:
        deps = self.deps
        start = to_datetime(float(job.payload["start"]))
        now = to_datetime(deps.clock.now())
        every = await deps.store.load_in([Phase.RFH.value, Phase.DECLINED.value])
        every = [c for c in every if not c.escalation.drill and not c.gate.ended_as]
        if not every:
            log.info("morning.queue_empty", key=job.key)
            return None
        policy = deps.policy.current()
        calendar = deps.calendar()
        current = [c for c in every if c.gate.phase is Phase.RFH]  # each judged again
        # An emergency the SMOC declined is a request for help by their decision ("Monday"):
        # listed as it is, never judged again (the SMOC is not asked twice).
        still = [c for c in every if c.gate.phase is Phase.DECLINED] + [
            c for c in current if with_tier2(c.gate)
            and evaluate(policy, c.escalation, now, calendar).outcome is Outcome.RFH]
        rechecks = tuple(NewJob(EffectKind.RECHECK, job_key(EffectKind.RECHECK, c.row.id, job.key),
                                {}, 0.0, c.row.id) for c in current)
        channel = deps.settings.slack.tier2()
        if not still:
            return Changes(jobs=rechecks)
        if not channel:
            raise Permanent("no channel for the morning's requests for help: set "
                            "slack.tier2_channel (or slack.rfh_channel)")
        chat = deps.need_notices()
        if await chat.find_notice(channel, job.key) is None:
            timelines = await deps.store.timelines([c.row.id for c in still])
            held = sorted(((c, _issue_url(timelines.get(c.row.id, []))) for c in still),
                          key=lambda pair: pair[0].escalation.created_at)
            await chat.post_notice(channel, queue_text(start, policy.business_hours, held),
                                   key=job.key)
            log.info("morning.queue_posted", key=job.key, held=len(held))
        return Changes(jobs=rechecks)
