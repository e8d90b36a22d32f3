"""The follow-through jobs' reads on both databases: open retros in batches by id, and the
quiet spells that have not ended."""

from __future__ import annotations

from dataclasses import replace

from daemon.domain.events import EventKind
from daemon.store import Changes, NewEvent, Store
from tests.store.test_store_contract import escalation
from tests.support import START


async def test_open_retros_come_in_batches_by_id_without_closed_ones_or_drills(
        store: Store) -> None:
    for esc_id, closed, drill in (("esc-a", False, False), ("esc-b", True, False),
                                  ("esc-c", False, True), ("esc-d", False, False),
                                  ("esc-e", False, False)):
        events = [NewEvent(esc_id, EventKind.RETRO_OPENED, "tier2gate", START + 60, {"url": "u"})]
        if closed:
            events.append(NewEvent(esc_id, EventKind.RETRO_CLOSED, "tracker", START + 120,
                                   {"complete": True}, "retro_closed"))
        await store.apply(Changes(escalation=replace(escalation(esc_id=esc_id),
                                                     external_id=esc_id, drill=drill),
                                  events=tuple(events)))
    await store.apply(Changes(escalation=replace(escalation(esc_id="esc-f"),
                                                 external_id="esc-f")))  # no retro at all
    assert await store.open_retros("", 2) == [("esc-a", START + 60, None),
                                              ("esc-d", START + 60, None)]
    assert await store.open_retros("esc-d", 2) == [("esc-e", START + 60, None)]
    assert await store.open_retros("esc-e", 2) == []


async def test_a_retro_closed_incomplete_is_followed_from_a_given_time(store: Store) -> None:
    for esc_id, complete in (("esc-a", False), ("esc-b", True)):
        await store.apply(Changes(
            escalation=replace(escalation(esc_id=esc_id), external_id=esc_id),
            events=(NewEvent(esc_id, EventKind.RETRO_OPENED, "tier2gate", START + 60, {"url": "u"}),
                    NewEvent(esc_id, EventKind.RETRO_CLOSED, "tracker", START + 120,
                             {"complete": complete}, "retro_closed"))))
    assert await store.open_retros("", 10) == []  # by default no closed one
    assert await store.open_retros("", 10, closed_since=START + 120) == [
        ("esc-a", START + 60, START + 120)]
    assert await store.open_retros("", 10, closed_since=START + 121) == []
    await store.apply(Changes(events=(NewEvent(
        "esc-a", EventKind.RETRO_CLOSED, "tracker", START + 600, {"complete": True},
        "retro_closed:complete"),)))
    assert await store.open_retros("", 10, closed_since=START) == []


async def test_open_quiet_spells_are_those_without_their_resumption(store: Store) -> None:
    def spell(esc_id: str, key: str, resumed: bool) -> list[NewEvent]:
        found = [NewEvent(esc_id, EventKind.UPDATE_OVERDUE, "tier2gate", START,
                          {"once_key": key}, key)]
        if resumed:
            found.append(NewEvent(esc_id, EventKind.UPDATE_RESUMED, "tier2gate", START + 60,
                                  {"once_key": key, "overdue_s": 60.0}, f"resumed:{key}"))
        return found

    for esc_id, spells in (("esc-a", spell("esc-a", "update_overdue:1", True)),
                           ("esc-b", [*spell("esc-b", "update_overdue:1", True),
                                      *spell("esc-b", "update_overdue:2", False)]),
                           ("esc-c", spell("esc-c", "update_overdue:1", False))):
        await store.apply(Changes(escalation=replace(escalation(esc_id=esc_id),
                                                     external_id=esc_id),
                                  events=tuple(spells)))
    assert await store.open_quiet() == ["esc-b", "esc-c"]


async def test_the_escalation_of_a_tier2_page_is_found_by_its_incident_id(store: Store) -> None:
    for esc_id, found in (
            ("esc-a", [("paged", {"incident_id": "PREST1", "url": "u"})]),
            ("esc-b", [("paged", {"incident_id": "tier2gate-esc-b", "url": ""}),
                       ("page_assigned", {"event_id": "ev-1", "incident_id": "PEVENTS2"})]),
            ("esc-c", [("updated", {"incident_id": "PSOURCE3"})])):
        await store.apply(Changes(
            escalation=replace(escalation(esc_id=esc_id), external_id=esc_id),
            events=tuple(NewEvent(esc_id, EventKind(event), "pagerduty", START, details)
                         for event, details in found)))
    assert await store.paged_escalation("PREST1") == "esc-a"
    assert await store.paged_escalation("PEVENTS2") == "esc-b"
    assert await store.paged_escalation("PSOURCE3") is None  # not a page
    assert await store.paged_escalation("PNONE") is None
