"""What the demo prints: one readable line per timeline event, as it happens."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any, Protocol

from daemon.domain import events
from daemon.domain.events import EventKind
from daemon.store import Store, TimelineEntry

_POLL_S = 0.1
_WAIT_S = 60.0


class _Demo(Protocol):
    slack: Any
    pagerduty: Any
    gitlab: Any


SOURCE_NAMES = {"incident_io": "incident.io", "pagerduty": "PagerDuty", "slack": "Slack",
                "zendesk": "Zendesk", "jsm": "Jira Service Management"}


def describe(reference: str, entry: TimelineEntry) -> str | None:
    match fact := entry.fact:
        case events.Received():
            where = SOURCE_NAMES.get(entry.actor, entry.actor)
            return (f"{reference}: {where} declared \"{fact.title}\" "
                    f"({fact.severity}, customer {fact.customer or '-'}).")
        case events.Classified(outcome="emergency"):
            criteria = ", ".join(fact.criteria or []) or "time-based rule"
            told = "".join(f"; customer event in progress: {e.get('kind')}, {e.get('summary')}"
                           for e in fact.customer_events if isinstance(e, dict))
            return (f"{reference}: EMERGENCY per rule '{fact.rule}' (criteria: {criteria})"
                    f"{told}.")
        case events.Classified(due=due) if due:
            due = str(due)[:16].replace("T", " ")
            return (f"{reference}: REQUEST FOR HELP, queued for business hours (due {due} UTC): "
                    f"{fact.reason}.")
        case events.Classified():
            return f"{reference}: {str(fact.outcome).upper()}: {fact.reason}."
        case events.ApprovalRequested():
            return (f"{reference}: approval requested from the SMOC <@{(fact.to or ['?'])[0]}>"
                    f" of team {fact.team or 'default'} in Slack {fact.channel}.")
        case events.Approved() | events.Declined() | events.ApprovalTimedOut():
            reason = fact.reason if isinstance(fact, events.Declined) else ""
            why = f": {reason}" if reason else ""
            return f"{reference}: {fact.kind.value.replace('_', ' ')} by {entry.actor}{why}."
        case events.Paged():
            return f"{reference}: Tier 2 paged (PagerDuty incident {fact.incident_id})."
        case events.Acknowledged():
            return f"{reference}: Tier 2 page acknowledged by {entry.actor}."
        case events.Resolved():
            return f"{reference}: resolved at the source."
        case events.RetroOpened():
            return f"{reference}: retro issue opened: {fact.url}"
        case events.RfhIssueOpened():
            return f"{reference}: request-for-help issue opened: {fact.url}"
        case events.RfhNoticePosted():
            return f"{reference}: RFH notice posted in Slack: queued for business hours."
        case events.EEOffered():
            return (f"{reference}: offered to the Escalation Engineers on rotation "
                    f"({', '.join(f'<@{u}>' for u in fact.to)}) in Slack "
                    f"{fact.channel}.")
        case events.EEAssigned():
            return f"{reference}: taken by Escalation Engineer {fact.name}, now its DRI."
        case events.EEResolved():
            return f"{reference}: resolved by the EE without Engineering."
        case events.EENeedsEngineering():
            return f"{reference}: the EE asks for Engineering."
        case events.EESkipped():
            return f"{reference}: no Escalation Engineer ({fact.why}): on to Tier 2."
        case events.DeadLettered():
            return f"{reference}: a side effect gave up: {fact.error}"
    return None


_DECISIONS = (EventKind.APPROVED, EventKind.DECLINED, EventKind.APPROVAL_TIMED_OUT)


class Narrator:
    def __init__(self, store: Store, demo: _Demo) -> None:
        self.store = store
        self.demo = demo
        self._seen: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    def say(self, line: str) -> None:
        print(f"  {line}", file=sys.stdout, flush=True)

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        while True:
            await self._print_new()
            await asyncio.sleep(_POLL_S)

    async def _print_new(self) -> None:
        for current in reversed(await self.store.load_since(0.0)):
            reference = current.escalation.reference or current.row.id
            for entry in await self.store.timeline(current.row.id):
                if entry.id in self._seen:
                    continue
                self._seen.add(entry.id)
                line = describe(reference, entry)
                if line:
                    self.say(line)

    async def _wait_event(self, escalation_id: str, kinds: tuple[EventKind, ...]
                          ) -> TimelineEntry:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _WAIT_S
        while True:
            for entry in await self.store.timeline(escalation_id):
                if entry.event in kinds:
                    await self._print_new()
                    return entry
            if loop.time() > deadline and kinds != _DECISIONS:
                raise TimeoutError(f"{escalation_id}: no {'/'.join(kinds)} within {_WAIT_S} s")
            await asyncio.sleep(_POLL_S)

    async def approval_request(self, external_id: str, source: str = "incident_io"
                               ) -> tuple[str, str, str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _WAIT_S
        while (row := await self.store.find_escalation(source, external_id)) is None:
            if loop.time() > deadline:
                raise TimeoutError(f"{source} {external_id} never became an escalation")
            await asyncio.sleep(_POLL_S)
        asked = events.ApprovalRequested.read(
            (await self._wait_event(row.id, (EventKind.APPROVAL_REQUESTED,))).details)
        return row.id, str(asked.channel), str(asked.ts)

    async def ee_offer(self, external_id: str) -> tuple[str, str, str]:
        """Waits for the offer to the EEs: (escalation id, channel, ts)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _WAIT_S
        while (row := await self.store.find_escalation("incident_io", external_id)) is None:
            if loop.time() > deadline:
                raise TimeoutError(f"incident_io {external_id} never became an escalation")
            await asyncio.sleep(_POLL_S)
        offered = events.EEOffered.read(
            (await self._wait_event(row.id, (EventKind.EE_OFFERED,))).details)
        return row.id, str(offered.channel), str(offered.ts)

    async def ee_event(self, escalation_id: str, kind: EventKind) -> None:
        await self._wait_event(escalation_id, (kind,))

    async def decision(self, escalation_id: str) -> str:
        """Waits as long as it takes: in the interactive demo a person decides. Returns the
        verdict for the page: "declined", or "approved" (by the SMOC or the timeout)."""
        entry = await self._wait_event(escalation_id, _DECISIONS)
        return "declined" if entry.event is EventKind.DECLINED else "approved"

    async def page(self, escalation_id: str) -> str:
        paged = events.Paged.read(
            (await self._wait_event(escalation_id, (EventKind.PAGED,))).details)
        return str(paged.incident_id)

    async def acknowledged(self, escalation_id: str) -> None:
        """Until Tier 2's acknowledgement is on the timeline (its line is printed by `_follow`)."""
        await self._wait_event(escalation_id, (EventKind.ACKNOWLEDGED,))

    async def retro(self, escalation_id: str) -> str:
        opened = events.RetroOpened.read(
            (await self._wait_event(escalation_id, (EventKind.RETRO_OPENED,))).details)
        return str(opened.url)

    async def desk_notes(self, desk: Any, ticket: str, steps: tuple[str, ...]) -> list[str]:
        """Waits until the ticket has an internal note for each step; returns the notes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _WAIT_S
        while True:
            notes = desk.notes(ticket)
            done = {note.rsplit(":", 1)[-1] for note in notes}
            if set(steps) <= done:
                return list(notes)
            if loop.time() > deadline:
                raise TimeoutError(f"ticket {ticket}: no internal note for "
                                   f"{', '.join(sorted(set(steps) - done))} within {_WAIT_S} s")
            await asyncio.sleep(_POLL_S)

    def summary(self) -> None:
        approvals = [c for c in self.demo.slack.calls_to("chat.postMessage")
                     if "tier2gate_approve" in str(c.args)]
        self.say(f"Summary: {len(approvals)} approval request(s) in Slack, "
                 f"{len(self.demo.pagerduty.pages)} page(s) in PagerDuty, "
                 f"{len(self.demo.gitlab.issues)} issue(s) in GitLab.")
