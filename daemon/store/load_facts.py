"""Who each Tier 2 page reached, kept per escalation as its entries are written (migration 0014).

The rule (the store's writes and `daemon.reporting.load`'s in-memory definition share it):

- each responder a page of an escalation reached, per page (a reopened emergency paged again
  interrupts again): the assignees recorded from the Tier 2 incident's `incident.triggered`,
  `incident.escalated` and `incident.reassigned` webhooks (`page_assigned`, `page_escalated`,
  `page_reassigned`, `details.responders`) and whoever acknowledged it;
- their name and time zone are the first entry's that names them (the first non-empty zone);
  an acknowledgement recorded before responders were kept names its acknowledger only by the
  name PagerDuty gave, counted under that name with no time zone;
- reached at the later of the page's time and the entry that first names them, except an
  acknowledger first named by the acknowledgement, who was reached by the page itself;
- the trigger of a page may be recorded before the page job's own entry: a `page_assigned`
  naming someone the current page reached already is the trigger of the next page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

# The entries a page's reach is made of, in the order the partial index `timeline_load`
# (migration 0012) names them.
PAGE_EVENTS = ("paged", "page_assigned", "page_escalated", "page_reassigned", "acknowledged")
_REACHED = frozenset(PAGE_EVENTS) - {"paged"}


class PageEntry(Protocol):
    """What the rule reads of a timeline entry (`TimelineEntry`, `LoadEntry`)."""

    @property
    def escalation_id(self) -> str: ...
    @property
    def event(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def at(self) -> float: ...
    @property
    def details(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Reach:
    """One responder reached by page `page` (1, 2, … per escalation) at `at` (epoch seconds)."""

    escalation_id: str
    page: int
    responder_id: str  # the PagerDuty user id (an old acknowledgement's name)
    responder: str  # their name as PagerDuty gave it (untrusted text)
    time_zone: str  # IANA name from their PagerDuty profile; "" when unknown
    at: float
    acknowledged_at: float | None


@dataclass
class _First:
    name: str
    time_zone: str
    at: float  # of the first entry naming them
    acknowledged_at: float | None = None


def _responders(entry: PageEntry) -> list[tuple[str, str, str]]:
    """(id, name, time zone) of each responder `entry` names."""
    found = entry.details.get("responders")
    if not isinstance(found, list):
        if entry.event == "acknowledged" and entry.actor not in ("", "pagerduty"):
            return [(entry.actor, entry.actor, "")]
        return []
    return [(str(r.get("id", "")), str(r.get("name", "")), str(r.get("time_zone", "")))
            for r in found if isinstance(r, dict) and r.get("id")]


def reaches(entries: Iterable[PageEntry]) -> list[Reach]:
    """Every responder reached by every page, from page entries (of any escalations) in time
    order, in the order they were first named. Other entries are ignored."""
    pages: dict[str, list[float]] = {}
    first: dict[tuple[str, int, str], _First] = {}
    for entry in entries:
        paged = pages.setdefault(entry.escalation_id, [])
        if entry.event == "paged":
            paged.append(entry.at)
            continue
        if entry.event not in _REACHED:
            continue
        for responder_id, name, zone in _responders(entry):
            page = max(len(paged), 1)
            key = (entry.escalation_id, page, responder_id)
            if entry.event == "page_assigned" and key in first:
                key = (entry.escalation_id, page + 1, responder_id)
            one = first.setdefault(key, _First(name, zone, entry.at))
            one.time_zone = one.time_zone or zone
            if entry.event == "acknowledged" and one.acknowledged_at is None:
                one.acknowledged_at = entry.at
    found = []
    for (escalation_id, page, responder_id), one in first.items():
        paged = pages[escalation_id]
        paged_at = paged[page - 1] if page <= len(paged) else None
        found.append(Reach(escalation_id=escalation_id, page=page, responder_id=responder_id,
                           responder=one.name, time_zone=one.time_zone,
                           at=_reached_at(one.at, paged_at, one.acknowledged_at),
                           acknowledged_at=one.acknowledged_at))
    return found


def _reached_at(first_named: float, paged_at: float | None,
                acknowledged_at: float | None) -> float:
    """When a responder was interrupted: an acknowledger first named by the acknowledgement
    was reached by the page itself; anyone else when the entry naming them was recorded, never
    before the page went out (a trigger webhook may be recorded before the page job is)."""
    if paged_at is None:
        return first_named
    if acknowledged_at is not None and acknowledged_at == first_named:
        return paged_at
    return max(first_named, paged_at)
