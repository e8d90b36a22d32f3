"""Listing escalations by phase: what a policy change judges again (both backends)."""

from __future__ import annotations

from dataclasses import replace

from daemon.store import Changes, Store
from tests.store.test_store_contract import escalation


async def test_escalations_are_listed_by_phase(store: Store) -> None:
    for esc_id, state in (("esc-1", "rfh"), ("esc-2", "paged"), ("esc-3", "awaiting_approval"),
                          ("esc-4", "ignored")):
        row = replace(escalation(esc_id=esc_id, state=state), external_id=esc_id)
        await store.apply(Changes(escalation=row))
    found = await store.escalations_in(["received", "rfh", "awaiting_approval"])
    assert sorted(row.id for row in found) == ["esc-1", "esc-3"]
    assert await store.escalations_in([]) == []
