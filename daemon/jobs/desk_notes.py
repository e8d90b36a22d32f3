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
    "classified", "approval_requested", "approved", "declined", "approval_timed_out",
    "paged", "would_have_paged", "acknowledged", "resolved", "retro_opened",
    "would_have_opened_retro",
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
        step = record.event
        if step == "classified":
            step = f"classified-{record.details.get('outcome', '')}"
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
    details: dict[str, Any] = payload.get("details") or {}
    when = datetime.fromtimestamp(float(payload["at"]), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    actor = str(payload.get("actor", ""))
    who = literal(_person(actor))
    event = str(payload["event"])

    def value(key: str) -> str:
        return literal(str(details.get(key, "")))

    def link(url: str, label: str) -> str:
        safe = safe_url(url)
        if safe is None:
            return literal(url)
        return f"[{label}|{safe.replace('|', '%7C').replace(']', '%5D')}]" if wiki else safe

    if event == "classified":
        outcome = details.get("outcome")
        if outcome == "emergency":
            criteria = ", ".join(str(c).replace("_", " ") for c in details.get("criteria", []))
            text = ("Meets the emergency criteria"
                    + (f" ({literal(criteria)})" if criteria else "")
                    + ": the Support Manager on Call is asked to approve paging Tier 2.")
        elif outcome == "rfh":
            text = (f"Not an emergency under the policy ({value('reason')}): deferred to "
                    f"business hours as a request for help, due {value('due')}.")
        else:
            text = f"No action under the policy: {value('reason')}."
    elif event == "approval_requested":
        text = "Approval to page Tier 2 requested from the Support Manager on Call."
    elif event == "approved":
        text = f"Approved by {who}: paging Tier 2."
    elif event == "declined":
        reason = value("reason") or "no reason given"
        text = (f"Declined by {who}. Reason: {reason}. Handled as a request for help, due "
                "next business hours.")
    elif event == "approval_timed_out":
        text = (f"No decision within {value('after_minutes')} minutes: the policy's fallback "
                f"is to {value('fallback')}.")
    elif event in ("paged", "would_have_paged"):
        where = str(details.get("url") or "")
        target = link(where, "PagerDuty incident") if where else value("incident_id")
        text = ("SHADOW mode: Tier 2 would have been paged (nobody was)." if
                event == "would_have_paged" else f"Tier 2 paged: {target}.")
    elif event == "acknowledged":
        text = f"Tier 2 acknowledged the page ({who})."
    elif event == "resolved":
        text = "The escalation is resolved."
    else:  # retro_opened, would_have_opened_retro
        text = ("SHADOW mode: a retro issue would have been opened." if
                event == "would_have_opened_retro" else
                f"Retro issue opened: {link(str(details.get('url', '')), 'retro issue')}.")
    return f"tier2gate ({when}): {text}"


def _person(actor: str) -> str:
    """Who acted, as the timeline names them: a Slack user id is said to be one."""
    if actor[:1] in ("U", "W") and actor.isalnum() and actor.isupper():
        return f"Slack user {actor}"
    return actor or "tier2gate"
