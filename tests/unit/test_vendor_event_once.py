"""A vendor event is one thing that happened, however often it is delivered: the timeline
entry it makes carries a once_key derived from the vendor's event id, which the store refuses
a second time (even when two replicas record the same event at once)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from daemon.domain import transitions as t
from daemon.domain.gate import Gate, PageState
from daemon.domain.models import Source

NOW = datetime(2026, 11, 21, 2, 30, tzinfo=UTC)
PAGED = Gate(page=PageState(incident_id="PT2", at=NOW))


@pytest.mark.parametrize("kind", ["acknowledged", "escalated", "reassigned", "resolved",
                                  "unacknowledged", "reopened"])
def test_every_page_event_entry_is_unique_per_vendor_event_id(kind: str) -> None:
    step = t.on_page_event(PAGED, kind, "Tina", NOW, "Q0EV1", source=Source.INCIDENT_IO)
    assert [r.once_key for r in step.records] == ["vendor-event:Q0EV1"]
    other = t.on_page_event(PAGED, kind, "Tina", NOW, "Q0EV2", source=Source.INCIDENT_IO)
    assert other.records[0].once_key != step.records[0].once_key
