"""What the demo prints: one readable line per timeline event, as it happens."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any, Protocol

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
    d = entry.details
    match entry.event:
        case "received":
            where = SOURCE_NAMES.get(entry.actor, entry.actor)
            return (f"{reference}: {where} declared \"{d.get('title')}\" "
                    f"({d.get('severity')}, customer {d.get('customer') or '-'}).")
        case "classified" if d.get("outcome") == "emergency":
            criteria = ", ".join(d.get("criteria") or []) or "time-based rule"
            events = "".join(f"; customer event in progress: {e.get('kind')}, {e.get('summary')}"
                             for e in d.get("customer_events") or [] if isinstance(e, dict))
            return (f"{reference}: EMERGENCY per rule '{d.get('rule')}' (criteria: {criteria})"
                    f"{events}.")
        case "classified" if d.get("due"):
            due = str(d["due"])[:16].replace("T", " ")
            return (f"{reference}: REQUEST FOR HELP, queued for business hours (due {due} UTC): "
                    f"{d.get('reason')}.")
        case "classified":
            return f"{reference}: {str(d.get('outcome')).upper()}: {d.get('reason')}."
        case "approval_requested":
            return (f"{reference}: approval requested from the SMOC <@{(d.get('to') or ['?'])[0]}>"
                    f" of team {d.get('team', 'default')} in Slack {d.get('channel')}.")
        case "approved" | "declined" | "approval_timed_out":
            why = f": {d['reason']}" if d.get("reason") else ""
            return f"{reference}: {entry.event.replace('_', ' ')} by {entry.actor}{why}."
        case "paged":
            return f"{reference}: Tier 2 paged (PagerDuty incident {d.get('incident_id')})."
        case "acknowledged":
            return f"{reference}: Tier 2 page acknowledged by {entry.actor}."
        case "resolved":
            return f"{reference}: resolved at the source."
        case "retro_opened":
            return f"{reference}: retro issue opened: {d.get('url')}"
        case "rfh_issue_opened":
            return f"{reference}: request-for-help issue opened: {d.get('url')}"
        case "rfh_notice_posted":
            return f"{reference}: RFH notice posted in Slack: queued for business hours."
        case "ee_offered":
            return (f"{reference}: offered to the Escalation Engineers on rotation "
                    f"({', '.join(f'<@{u}>' for u in d.get('to') or [])}) in Slack "
                    f"{d.get('channel')}.")
        case "ee_assigned":
            return f"{reference}: taken by Escalation Engineer {d.get('name')}, now its DRI."
        case "ee_resolved":
            return f"{reference}: resolved by the EE without Engineering."
        case "ee_needs_engineering":
            return f"{reference}: the EE asks for Engineering."
        case "ee_skipped":
            return f"{reference}: no Escalation Engineer ({d.get('why')}): on to Tier 2."
        case "job.dead_lettered":
            return f"{reference}: a side effect gave up: {d.get('error')}"
    return None


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

    async def _wait_event(self, escalation_id: str, events: tuple[str, ...]) -> TimelineEntry:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _WAIT_S
        while True:
            for entry in await self.store.timeline(escalation_id):
                if entry.event in events:
                    await self._print_new()
                    return entry
            if loop.time() > deadline and events != ("approved", "declined",
                                                     "approval_timed_out"):
                raise TimeoutError(f"{escalation_id}: no {'/'.join(events)} within {_WAIT_S} s")
            await asyncio.sleep(_POLL_S)

    async def approval_request(self, external_id: str, source: str = "incident_io"
                               ) -> tuple[str, str, str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _WAIT_S
        while (row := await self.store.find_escalation(source, external_id)) is None:
            if loop.time() > deadline:
                raise TimeoutError(f"{source} {external_id} never became an escalation")
            await asyncio.sleep(_POLL_S)
        entry = await self._wait_event(row.id, ("approval_requested",))
        return row.id, str(entry.details["channel"]), str(entry.details["ts"])

    async def ee_offer(self, external_id: str) -> tuple[str, str, str]:
        """Waits for the offer to the EEs: (escalation id, channel, ts)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _WAIT_S
        while (row := await self.store.find_escalation("incident_io", external_id)) is None:
            if loop.time() > deadline:
                raise TimeoutError(f"incident_io {external_id} never became an escalation")
            await asyncio.sleep(_POLL_S)
        entry = await self._wait_event(row.id, ("ee_offered",))
        return row.id, str(entry.details["channel"]), str(entry.details["ts"])

    async def ee_event(self, escalation_id: str, event: str) -> None:
        await self._wait_event(escalation_id, (event,))

    async def decision(self, escalation_id: str) -> str:
        """Waits as long as it takes: in the interactive demo a person decides."""
        entry = await self._wait_event(escalation_id, ("approved", "declined",
                                                       "approval_timed_out"))
        return "approved" if entry.event in ("approved", "approval_timed_out") else "declined"

    async def page(self, escalation_id: str) -> str:
        entry = await self._wait_event(escalation_id, ("paged",))
        return str(entry.details["incident_id"])

    async def acknowledged(self, escalation_id: str) -> None:
        """Until Tier 2's acknowledgement is on the timeline (its line is printed by `_follow`)."""
        await self._wait_event(escalation_id, ("acknowledged",))

    async def retro(self, escalation_id: str) -> str:
        entry = await self._wait_event(escalation_id, ("retro_opened",))
        return str(entry.details["url"])

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
