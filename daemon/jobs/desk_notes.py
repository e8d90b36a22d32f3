"""Write-back to the desk: each step of a desk ticket's escalation becomes an internal note.

The steps are timeline entries (`NOTED`); `note_jobs` turns those a Step records into one
`desk_note` job each, committed with the Step (`jobs.escalations.changes_for`), so a note is
as durable as the decision it tells of. Its job key is unique per escalation, step and round,
so a step is noted once however often its delivery or click comes back. The job runner gives
at least once: before adding, the job looks for the note's marker on the ticket, so a retry
after a crash between the desk's answer and our commit adds nothing.

Every value from outside (reasons, names, URLs, the policy's words) goes into the note
through the desk's own literal function: Zendesk's plain-text body, JSM's wiki markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from daemon.domain import events
from daemon.domain.events import EventKind, details_of
from daemon.domain.models import Escalation, Source
from daemon.domain.transitions import Record
from daemon.integrations.base import Desk
from daemon.integrations.desk import marker_line
from daemon.jobs.deps import Deps
from daemon.markup import jira_wiki_literal, safe_url, zendesk_literal
from daemon.store import Job, NewJob
from daemon.workers.retry import Permanent

DESK_NOTE = "desk_note"
NOTED = frozenset({
    EventKind.CLASSIFIED, EventKind.APPROVAL_REQUESTED, EventKind.APPROVED, EventKind.DECLINED,
    EventKind.APPROVAL_TIMED_OUT, EventKind.PAGED, EventKind.WOULD_HAVE_PAGED,
    EventKind.ACKNOWLEDGED, EventKind.RESOLVED, EventKind.RETRO_OPENED,
    EventKind.WOULD_HAVE_OPENED_RETRO,
})
"""Timeline entries the ticket hears of: what happened, who decided and when."""

Literal = Callable[[str], str]


def note_jobs(escalation_id: str, escalation: Escalation, records: Sequence[Record],
              at: float, name: Callable[[str], str]) -> tuple[NewJob, ...]:
    """One note job per noted entry of a desk escalation; `name` makes a step's name unique
    per round (`per_round`). A classification is named by its outcome: an RFH that becomes an
    emergency is a second step, not a repeat of the first."""
    if not escalation.source.desk:
        return ()
    jobs: list[NewJob] = []
    for record in records:
        if record.event not in NOTED:
            continue
        step = record.event.value
        if isinstance(record.fact, events.Classified):
            step = f"{step}-{record.fact.outcome}"
        step = name(step)
        jobs.append(NewJob(DESK_NOTE, f"{DESK_NOTE}:{escalation_id}:{step}", {
            "source": escalation.source.value, "ticket": escalation.external_id,
            "step": step, "event": record.event, "actor": record.actor, "at": at,
            "details": record.details}, 0.0, escalation_id))
    return tuple(jobs)


class DeskNotes:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def note(self, job: Job) -> None:
        source = Source(str(job.payload["source"]))
        desk = self._desk(source)
        ticket = str(job.payload["ticket"])
        marker = marker_line(str(job.escalation_id), str(job.payload["step"]))
        if await desk.has_note(ticket, marker):
            return  # an earlier attempt added it and died before the job was done
        literal = jira_wiki_literal if source is Source.JSM else zendesk_literal
        await desk.add_note(ticket, note_text(job.payload, literal, wiki=source is Source.JSM),
                            marker)

    def _desk(self, source: Source) -> Desk:
        desk = self.deps.desks.get(source)
        if desk is None:
            setting = "zendesk" if source is Source.ZENDESK else "jsm"
            raise Permanent(f"the desk is not configured ({setting}.url, {setting}.email, "
                            f"{setting}.api_token)")
        return desk


def note_text(payload: dict[str, Any], literal: Literal, *, wiki: bool) -> str:
    """The note for one step, in words an agent reads on the ticket."""
    fact = details_of(EventKind(payload["event"]), payload.get("details") or {})
    when = datetime.fromtimestamp(float(payload["at"]), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    actor = str(payload.get("actor", ""))
    who = literal(_person(actor))

    def said(value: object) -> str:
        return literal(str(value))

    def link(url: str, label: str) -> str:
        safe = safe_url(url)
        if safe is None:
            return literal(url)
        return f"[{label}|{safe.replace('|', '%7C').replace(']', '%5D')}]" if wiki else safe

    match fact:
        case events.Classified(outcome="emergency", criteria=criteria):
            held = ", ".join(str(c).replace("_", " ") for c in criteria or ())
            text = ("Meets the emergency criteria"
                    + (f" ({literal(held)})" if held else "")
                    + ": the Support Manager on Call is asked to approve paging Tier 2.")
        case events.Classified(outcome="rfh", reason=reason, due=due):
            text = (f"Not an emergency under the policy ({said(reason)}): deferred to "
                    f"business hours as a request for help, due {said(due)}.")
        case events.Classified(reason=reason):
            text = f"No action under the policy: {said(reason)}."
        case events.ApprovalRequested():
            text = "Approval to page Tier 2 requested from the Support Manager on Call."
        case events.Approved():
            text = f"Approved by {who}: paging Tier 2."
        case events.Declined(reason=reason):
            text = (f"Declined by {who}. Reason: {said(reason) or 'no reason given'}. Handled "
                    "as a request for help, due next business hours.")
        case events.ApprovalTimedOut(after_minutes=after, fallback=fallback):
            # A missing number (None) said nothing before the facts: it still does.
            text = (f"No decision within {said('' if after is None else after)} minutes: "
                    f"the policy's fallback is to {said(fallback)}.")
        case events.WouldHavePaged():
            text = "SHADOW mode: Tier 2 would have been paged (nobody was)."
        case events.Paged(url=url, incident_id=incident_id):
            target = link(str(url), "PagerDuty incident") if url else said(incident_id)
            text = f"Tier 2 paged: {target}."
        case events.Acknowledged():
            text = f"Tier 2 acknowledged the page ({who})."
        case events.Resolved():
            text = "The escalation is resolved."
        case events.WouldHaveOpenedRetro():
            text = "SHADOW mode: a retro issue would have been opened."
        case events.RetroOpened(url=url):
            text = f"Retro issue opened: {link(str(url), 'retro issue')}."
        case _:  # not in `NOTED`: no job asks for it
            text = f"{fact.kind.value.replace('_', ' ')}."
    return f"tier2gate ({when}): {text}"


def _person(actor: str) -> str:
    """Who acted, as the timeline names them: a Slack user id is said to be one."""
    if actor[:1] in ("U", "W") and actor.isalnum() and actor.isupper():
        return f"Slack user {actor}"
    return actor or "tier2gate"
