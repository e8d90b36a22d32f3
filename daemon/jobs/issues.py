"""Tracker issues and notices: the retro for every paged emergency, the RFH for the rest.

Exactly once: each issue carries a deterministic marker; before creating we look for it, so a
crash between the tracker's 201 and our commit finds the issue instead of opening a second one.
A reopened emergency paged again never gets a second retro issue: the one it has gets a note.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from daemon.clock import iso
from daemon.domain import events
from daemon.domain.effects import Retro, RetroNote, RfhNote
from daemon.domain.gate import EEOutcome, Gate
from daemon.domain.transitions import (
    DAEMON,
    Step,
    on_merge_target_unknown,
    on_merged_in,
    on_noted,
    on_retro_noted,
    on_retro_opened,
)
from daemon.integrations.base import IssueDraft, IssueRef, Notices
from daemon.jobs.deps import Deps
from daemon.jobs.escalations import changes_for, job_round
from daemon.jobs.handler import After, step_handler
from daemon.jobs.routing import routing
from daemon.jobs.views import links, rfh_notice
from daemon.markup import markdown_literal, markdown_url
from daemon.settings import IssueSettings, Settings
from daemon.store import Changes, Job, NewEvent, TimelineEntry
from daemon.store.mapping import Loaded
from daemon.store.payloads import effect_payload
from daemon.workers.retry import Permanent

_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
MERGE_LOOKBACK_S = 30 * 86400
"""How far back a merged incident's target is looked for among escalations: duplicates are
merged within hours, and the bound keeps the look-up one page of the store."""


def retro_marker(escalation_id: str) -> str:
    return f"tier2gate-retro-{escalation_id}"


def rfh_marker(escalation_id: str) -> str:
    return f"tier2gate-rfh-{escalation_id}"


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    minutes = max(0, round((end - start).total_seconds() / 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _timeline_rows(entries: list[TimelineEntry]) -> list[dict[str, str]]:
    return [
        {"at": iso(e.at).replace("T", " ").removesuffix("Z"), "event": e.event.value,
         "actor": e.actor,
         "details": json.dumps(e.details, sort_keys=True) if e.details else ""}
        for e in entries
    ]


def retro_context(current: Loaded, entries: list[TimelineEntry], settings: Settings,
                  chat: Notices | None = None) -> dict[str, Any]:
    """The issue templates' values; `chat` links the approval message when it can."""
    gate, escalation = current.gate, current.escalation
    facts = gate.decision.facts if gate.decision else None
    opened = escalation.created_at
    approved = gate.decided.at if gate.decided else None
    decision = "—"
    if gate.decided is not None:
        by = f"@{gate.decided.by}" if gate.decided.by else "timeout (policy fallback)"
        decision = f"{gate.decided.verdict.value} by {by} at {iso(gate.decided.at.timestamp())}"
        if gate.decided.self_approved:
            decision += " (self-approved: the approver declared it)"
    return {
        "escalation_id": current.row.id,
        "title": escalation.title, "reference": escalation.reference,
        "source": escalation.source.value, "customer": escalation.customer,
        "severity": facts.severity if facts and facts.severity else escalation.severity,
        "reason": gate.decision.reason if gate.decision else "",
        "criteria": [c.value.replace("_", " ") for c, held in facts.criteria.items() if held]
        if facts else [],
        "weekend": bool(facts and facts.weekend), "off_hours": bool(facts and facts.off_hours),
        "decision": decision,
        "declared_by": _code_span(escalation.declared_by.label) if escalation.declared_by
        else "not said by the source",
        "team": gate.team,
        "escalation_engineer": _escalation_engineer(gate),
        "durations": {
            "to_approval": _duration(opened, approved),
            "to_page": _duration(opened, gate.page.at if gate.page else None),
            "to_acknowledgement": _duration(gate.page.at if gate.page else None,
                                            gate.acknowledged_at),
            "to_resolution": _duration(opened, gate.resolved_at),
        },
        "links": links(current, settings, chat),
        "timeline": _timeline_rows(entries),
        "rfh_due": iso(gate.rfh_due_at.timestamp()) if gate.rfh_due_at else "next business day",
    }


def _escalation_engineer(gate: Gate) -> str:
    """The EE who owns the escalation (its DRI) and their word if given; the template makes
    the roster's (or Slack's) name literal Markdown like every value."""
    ee = gate.ee
    if ee is None:
        return "not offered to the Escalation Engineers"
    if not ee.owner:
        return "offered to the Escalation Engineers, not taken"
    said = {EEOutcome.RESOLVED: ": resolved without Engineering",
            EEOutcome.ENGINEERING: ": asked for Engineering"}.get(ee.outcome, "") \
        if ee.outcome else ""
    name = f"{ee.owner_name} ({ee.owner})" if ee.owner_name else ee.owner
    return name + said


def _code_span(text: str) -> str:
    """A name from the source as inline code: a tracker then shows it as it is, never as a
    mention (`@someone`), a quick action or a link."""
    return "`" + " ".join(text.replace("`", "'").split()) + "`"


class MarkdownLink(str):
    """Tracker Markdown that tier2gate wrote (a link to a checked URL): not escaped again."""

    __slots__ = ()


def _link(url: str) -> MarkdownLink:
    return MarkdownLink(markdown_url(url))


def _literal(value: Any) -> str:
    """Every `{{ value }}` of an issue template is made literal Markdown, the way HTML
    autoescaping works: a template, the shipped ones or an operator's, cannot forget it."""
    if isinstance(value, MarkdownLink):
        return value
    return markdown_literal(str(value))


def render(settings: IssueSettings, default_template: str, context: dict[str, Any]) -> str:
    """The issue body in Markdown. Values are escaped by `markdown_literal`; a vendor URL goes
    through the `link` filter, which writes it as a bare link labelled with itself."""
    path = settings.template_file or _TEMPLATES / default_template
    env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined,  # noqa: S701 - Markdown, escaped by finalize
                             keep_trailing_newline=True, finalize=_literal)
    env.filters["link"] = _link
    return env.from_string(path.read_text(encoding="utf-8")).render(**context)


class Issues:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.retro = step_handler(deps, self._retro, guard=_retro_wanted)
        self.rfh_issue = step_handler(deps, self._rfh_issue)
        self.rfh_notice = step_handler(deps, self._rfh_notice)
        self.rfh_note = step_handler(deps, self._rfh_note)
        self.retro_note = step_handler(deps, self._retro_note)

    async def _open(self, marker: str, settings: IssueSettings, template: str,
                    current: Loaded) -> IssueRef:
        tracker = self.deps.need_tracker()
        existing = await tracker.find_by_marker(marker)
        if existing is not None:
            return existing
        entries = await self.deps.store.timeline(current.row.id)
        escalation = current.escalation
        draft = IssueDraft(
            title=settings.title.format(title=escalation.title,
                                        reference=escalation.reference or current.row.id),
            body=render(settings, template, retro_context(current, entries, self.deps.settings,
                                                        self.deps.notices)),
            marker=marker, labels=tuple(settings.labels), assignee=settings.assignee)
        return await tracker.create(draft)

    async def _retro(self, job: Job, current: Loaded, _now: datetime) -> After:
        """The retro of a paged emergency: one issue, found again by its marker label.

        A job of a later round (the incident was reopened and Tier 2 paged again) finds the
        issue there already and adds the job's note to it instead, once per round: the round is
        recorded with the note (`retro_noted`), and a note already recorded is not added again.
        A crash between the tracker's answer and that record adds the note a second time on
        the retry: a repeated comment is a far smaller harm than a second retro, and none of
        the trackers offers a key to add a comment idempotently.
        """
        page_round = job_round(job)
        gate = current.gate
        # SHADOW mode opens no issue, so it has no URL to go by: a later round would have noted.
        noting = bool(gate.retro_url) or (self.deps.shadow and page_round > 1)
        note = (effect_payload(job, Retro).note
                or f"Tier 2 was paged again (round {page_round}).")
        marker = retro_marker(current.row.id)
        url = gate.retro_url
        if not self.deps.shadow and noting:
            tracker = self.deps.need_tracker()
            issue = await tracker.find_by_marker(marker)
            if issue is None:
                raise Permanent(f"the retro issue {gate.retro_url} is no longer found by its "
                                f"label {marker}: add this note by hand: {note}")
            await tracker.add_note(issue, markdown_literal(note))
        elif not self.deps.shadow:
            retro = self.deps.settings.retro
            if current.escalation.drill:
                # Labelled drill, opened to show it can be, closed as nobody works on it.
                labels = [*retro.labels, *self.deps.settings.drill.labels]
                retro = retro.model_copy(update={
                    "labels": list(dict.fromkeys(labels)),
                    "title": "DRILL " + retro.title, "assignee": None})
            issue = await self._open(marker, retro, "retro.md.j2", current)
            if current.escalation.drill:
                await self.deps.need_tracker().close_issue(issue)
            url = issue.url

        shadow = self.deps.shadow
        if noting:
            return lambda fresh, _at: on_retro_noted(fresh.gate, page_round, note, shadow=shadow)
        return lambda fresh, _at: on_retro_opened(fresh.gate, url, shadow=shadow,
                                                  page_round=page_round)

    async def _rfh_issue(self, _job: Job, current: Loaded, _now: datetime) -> Step:
        if current.gate.ended_as:
            # Withdrawn or merged before its issue was opened: nobody is to pick it up.
            step = on_noted(current.gate, events.RfhIssueSkipped(
                why=f"the source incident was {current.gate.ended_as} first"), "rfh_issue")
        elif self.deps.shadow:
            step = on_noted(current.gate, events.WouldHaveOpenedRfhIssue(), "rfh_issue")
        elif self.deps.tracker is None:
            step = on_noted(current.gate, events.RfhRecorded(
                note="no tracker configured: the RFH lives on this timeline"), "rfh_issue")
        else:
            issue = await self._open(rfh_marker(current.row.id), self.deps.settings.rfh,
                                     "rfh.md.j2", current)
            step = on_noted(current.gate, events.RfhIssueOpened(url=issue.url), "rfh_issue")
        return step

    async def _rfh_notice(self, _job: Job, current: Loaded, _now: datetime) -> Step:
        # The team's RFH channel (else its approval channel), the settings' when it has none.
        channel = routing(self.deps.settings, self.deps.policy.current(),
                          current.gate.team).notice_channel
        notices = self.deps.notices
        if notices is None or not channel:
            step = on_noted(current.gate, events.RfhNoticeSkipped(
                note="the chat or its channel is not configured"), "rfh_notice")
        else:
            ref = await notices.post_notice(channel,
                                            rfh_notice(current, self.deps.settings, notices))
            step = on_noted(current.gate, events.RfhNoticePosted(channel=ref.channel, ts=ref.ts),
                            "rfh_notice")
        return step

    async def _rfh_note(self, job: Job, current: Loaded, _now: datetime) -> Step:
        """Tell a request for help's issue that its incident was withdrawn or merged. No issue
        found: it was never opened (`rfh_issue` skips a withdrawn one), so nobody can pick up a
        request that is not wanted; the timeline says so either way."""
        text = effect_payload(job, RfhNote).text
        noted: events.RfhNote
        if self.deps.shadow:
            noted = events.WouldHaveNotedRfhIssue(note=text)
        elif self.deps.tracker is None:
            noted = events.RfhNoteSkipped(note=text, why="no tracker configured")
        else:
            issue = await self.deps.tracker.find_by_marker(rfh_marker(current.row.id))
            if issue is None:
                noted = events.RfhNoteSkipped(note=text, why="no request-for-help issue exists")
            else:
                await self.deps.tracker.add_note(issue, text)
                noted = events.RfhIssueNoted(note=text, url=issue.url)
        return on_noted(current.gate, noted, job.key)

    async def _retro_note(self, job: Job, current: Loaded, _now: datetime) -> Step:
        """A note on this escalation's existing retro issue, e.g. the page of an incident
        merged into this one. As with a later round's note, a crash between the tracker's answer
        and the record may add it twice; never a second issue."""
        note = effect_payload(job, RetroNote).note
        noted_as = events.WouldHaveNotedRetro if self.deps.shadow else events.RetroNoted
        if not self.deps.shadow:
            marker = retro_marker(current.row.id)
            issue = await self.deps.need_tracker().find_by_marker(marker)
            if issue is None:
                raise Permanent(f"the retro issue {current.gate.retro_url} is no longer found by "
                                f"its label {marker}: add this note by hand: {note}")
            await self.deps.need_tracker().add_note(issue, note)
        return on_noted(current.gate, noted_as(url=current.gate.retro_url, note=note), job.key)

    async def merge_into(self, job: Job) -> Changes | None:
        """A paged escalation's incident was merged into another: the outage keeps one retro.

        The target is the escalation of the same source whose incident has the reference the
        merged incident names. Found: the page is handed to it (`on_merged_in`, under its row's
        version check) and this escalation's timeline says where its story went. Not found (no
        reference, or an incident tier2gate never saw): this escalation's own retro tells it.
        """
        current = await self.deps.store.load_escalation(str(job.escalation_id))
        if current is None:
            return None
        now = self.deps.now()
        into = current.escalation.merged_into
        target = await self._merge_target(current) if into else None
        if target is None:
            step = on_merge_target_unknown(current.gate, into)
            return changes_for(current.row.id, current.escalation, step, now,
                               previous=current.row)
        step = on_merged_in(target.gate, current.row.id, current.escalation.reference,
                            current.gate.page)
        changes = changes_for(target.row.id, target.escalation, step, now, previous=target.row)
        told = NewEvent.of(current.row.id,
                           events.MergedInto(escalation_id=target.row.id, reference=into),
                           DAEMON, now.timestamp(), f"merged_into-{target.row.id}")
        return dataclasses.replace(changes, events=(*changes.events, told))

    async def _merge_target(self, current: Loaded) -> Loaded | None:
        since = current.escalation.created_at.timestamp() - MERGE_LOOKBACK_S
        for candidate in await self.deps.store.load_since(since):
            if (candidate.row.id != current.row.id
                    and candidate.escalation.source == current.escalation.source
                    and candidate.escalation.reference == current.escalation.merged_into):
                return candidate
        return None


def _retro_wanted(job: Job, current: Loaded) -> bool:
    """Paged, and its round's retro not opened or noted yet."""
    gate = current.gate
    return gate.ever_paged and not (gate.retro_url and gate.retro_round >= job_round(job))
