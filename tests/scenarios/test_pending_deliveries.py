"""Deliveries the previous version stored and had not processed yet are processed after an
upgrade: the stored form is the raw, verified body under the job kinds it was stored with,
whichever module names those kinds now (`daemon.sources`)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from daemon.sources.desks import INTAKE_DESK
from daemon.sources.incident_io import INTAKE_INCIDENT_IO
from daemon.sources.pagerduty import INTAKE_PAGERDUTY
from daemon.sources.slack import COMMAND, INTERACTION
from daemon.sources.slack_ids import APPROVE_ACTION
from tests.world import SMOC, button, emergency, incident, world

STORED_KINDS = {INTAKE_INCIDENT_IO: "intake_incident_io", INTAKE_PAGERDUTY: "intake_pagerduty",
                INTAKE_DESK: "intake_desk", INTERACTION: "slack_interaction",
                COMMAND: "slack_command"}


def test_the_job_kinds_are_the_ones_stored_rows_carry() -> None:
    assert all(kind == stored for kind, stored in STORED_KINDS.items())


async def test_a_click_and_an_incident_stored_before_an_upgrade_are_processed(
        tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        esc_id, ts = await emergency(w)
        # Written the way the previous version's ingress wrote them: the raw body, the
        # delivery id, and the job kind as a literal string.
        click = ("payload=" + quote(json.dumps(
            button(esc_id, SMOC, APPROVE_ACTION, ts, "2.001")))).encode()
        assert await w.daemon.store.record_delivery(
            "slack", "stored-before-upgrade-1", "block_actions", click, "slack_interaction")
        update = json.dumps(incident(severity="SEV2", incident_id="01OTHER")).encode()
        assert await w.daemon.store.record_delivery(
            "incident_io", "msg_stored_before_upgrade", "public_incident.incident_created_v2",
            update, "intake_incident_io")
        await w.daemon.settle()

        assert "approved" in await w.daemon.events(esc_id)
        assert len(w.pagerduty.pages) == 1
        assert {row.external_id for row in await w.daemon.escalations()} == {
            "01SATNIGHT", "01OTHER"}
        assert await w.daemon.dead_jobs() == []
