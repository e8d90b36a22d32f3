"""`escalations_quoting` on both backends: the candidates for "does anyone record this Slack
message?" (the caller decides from the gate)."""

from __future__ import annotations

from dataclasses import replace

from daemon.store import Changes, EscalationRow, Store
from tests.support import START


def escalation(esc_id: str, external_id: str, data: dict[str, object]) -> EscalationRow:
    return EscalationRow(id=esc_id, source="incident_io", external_id=external_id,
                         state="awaiting_approval", outcome=None, data=data, version=1,
                         opened_at=START, created_at=START, updated_at=START)


async def test_escalations_quoting_finds_a_string_value_only(store: Store) -> None:
    a = escalation("esc-a", "01A", {"gate": {"approval": {"channel": "C1",
                                                          "ts": "1700000000.000100"}}})
    b = escalation("esc-b", "01B", {"gate": {"approval": {
        "channel": "C1", "ts": "1700000000.000200", "copies": [["D1", "1700000000.000300"]]}}})
    c = escalation("esc-c", "01C", {"note": "100%_sure", "n": 1700000000.0001})
    for row in (a, b, c):
        await store.apply(Changes(escalation=replace(row, version=0), expected_version=0))
    assert [r.id for r in await store.escalations_quoting("1700000000.000100")] == ["esc-a"]
    assert [r.id for r in await store.escalations_quoting("1700000000.000300")] == ["esc-b"]
    assert await store.escalations_quoting("1700000000.0001") == []  # a number is no string
    assert await store.escalations_quoting("1700000000.000") == []  # a prefix is no match
    # LIKE's wildcards in the value are literal characters
    assert await store.escalations_quoting("1700000000_000100") == []
    assert await store.escalations_quoting("%") == []
    assert [r.id for r in await store.escalations_quoting("100%_sure")] == ["esc-c"]
