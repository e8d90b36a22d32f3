"""With an incident.io API token, the re-fetch of each incident is optional: when it fails, the
webhook's own incident is used; a private incident (whose webhook carries only its id) is
announced in the approval channel and recorded. No signed delivery is dead-lettered unseen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from daemon.jobs.intake import FETCH_ATTEMPTS
from daemon.standins.faults import Fault
from daemon.standins.incident_io import FakeIncidentIo
from daemon.store import DeliveryState
from tests.harness import FAST_JOBS
from tests.world import CHANNEL, World, incident, world

API_TOKEN = "inc-RECOGNISABLE-api-token"
PRIVATE_ID = "01PRIVATE7Q"


@asynccontextmanager
async def world_with_api(tmp_path: Path, **overrides: Any
                         ) -> AsyncIterator[tuple[World, FakeIncidentIo]]:
    async with FakeIncidentIo(token=API_TOKEN) as api, world(
        tmp_path, incident_io={"api_token": API_TOKEN, "api_url": api.api_url}, **overrides
    ) as w:
        yield w, api


def private(event: str = "private_incident.incident_created_v2") -> dict[str, Any]:
    """The documented private-incident webhook: only the id (INC-OAS x-webhooks; sample
    `openapi_example_private_incident_created_v2.json`)."""
    return {"event_type": event, event: {"id": PRIVATE_ID}}


async def run_out_retries(w: World) -> None:
    """Let the runner's backoff pass on the manual clock until nothing is left to retry."""
    for _ in range(FETCH_ATTEMPTS + 2):
        await w.daemon.settle()
        w.daemon.clock.advance(60)
    await w.daemon.settle()


def notices(w: World) -> list[str]:
    return [str(call.args.get("text")) for call in w.slack.calls_to("chat.postMessage")
            if call.args.get("channel") == CHANNEL and "blocks" not in call.args]


@pytest.mark.parametrize("status", [404, 403, 401])
async def test_a_refused_fetch_uses_the_webhooks_own_incident_at_once(tmp_path: Path,
                                                                      status: int) -> None:
    async with world_with_api(tmp_path) as (w, api):
        api.faults.add(Fault(status=status))  # 404 is also what an unknown incident answers
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        assert row.data["escalation"]["title"] == "Checkout is down for Acme"
        assert len(w.approval_posts()) == 1  # the SMOC is asked as if the fetch had worked
        assert len(api.requests) == 1  # a refusal is not retried
        [note] = [e for e in await w.daemon.store.timeline(row.id)
                  if e.event == "incident_fetch_failed"]
        assert str(status) in note.details["reason"]
        assert await w.daemon.dead_jobs() == []


@pytest.mark.parametrize("max_attempts", [6, 1])
async def test_an_outage_is_retried_briefly_then_the_webhooks_incident_is_used(
    tmp_path: Path, max_attempts: int
) -> None:
    async with world_with_api(tmp_path, jobs={"max_attempts": max_attempts}) as (w, api):
        api.faults.add(Fault(status=503), times=100)
        assert (await w.daemon.incident_io(incident())).status == 202
        await run_out_retries(w)
        [row] = await w.daemon.escalations()
        # Never past the runner's own limit, which would dead-letter the delivery.
        assert len(api.requests) == min(FETCH_ATTEMPTS, max_attempts)
        assert len(w.approval_posts()) == 1
        assert "incident_fetch_failed" in await w.daemon.events(row.id)
        assert await w.daemon.dead_jobs() == []


async def test_a_fetch_that_recovers_is_used_and_noted_nowhere(tmp_path: Path) -> None:
    async with world_with_api(tmp_path) as (w, api):
        webhook = incident()
        api.incidents["01SATNIGHT"] = {
            **webhook["public_incident.incident_created_v2"], "name": "Fetched from the API"}
        api.faults.add(Fault(status=502))
        assert (await w.daemon.incident_io(webhook)).status == 202
        await run_out_retries(w)
        [row] = await w.daemon.escalations()
        assert row.data["escalation"]["title"] == "Fetched from the API"
        assert "incident_fetch_failed" not in await w.daemon.events(row.id)


async def test_an_unreadable_private_incident_is_announced_and_recorded(tmp_path: Path
                                                                        ) -> None:
    fault = Fault(status=404)  # what incident.io answers a key that may not see the incident
    async with world_with_api(tmp_path) as (w, api):
        api.faults.add(fault, times=100)
        assert (await w.daemon.incident_io(private())).status == 202
        await run_out_retries(w)
        assert await w.daemon.escalations() == []
        delivery = await w.daemon.store.get_delivery(1)
        assert delivery is not None
        assert delivery.state is DeliveryState.FAILED
        assert str(fault.status) in delivery.note
        [notice] = notices(w)
        assert PRIVATE_ID in notice
        assert "view private incidents" in notice
        assert await w.daemon.dead_jobs() == []

        # Every later update of the same incident is recorded too, but announced only once.
        assert (await w.daemon.incident_io(
            private("private_incident.incident_updated_v2"))).status == 202
        await run_out_retries(w)
        later = await w.daemon.store.get_delivery(2)
        assert later is not None and later.state is DeliveryState.FAILED
        assert len(notices(w)) == 1


async def test_a_private_incident_during_an_outage_is_retried_and_said_to_be_stuck(
        tmp_path: Path) -> None:
    """A private incident's webhook has nothing to fall back on: its fetch is retried through
    the outage (never dropped), and past `jobs.max_attempts` the approval channel hears that
    a delivery is stuck."""
    async with world_with_api(tmp_path) as (w, api):
        api.faults.add(Fault(status=500), times=10_000)
        assert (await w.daemon.incident_io(private())).status == 202
        for _ in range(FAST_JOBS.max_attempts + 2):
            await w.daemon.settle()
            w.daemon.clock.advance(60)
        await w.daemon.settle()
        delivery = await w.daemon.store.get_delivery(1)
        assert delivery is not None and delivery.state is DeliveryState.STORED
        assert await w.daemon.dead_jobs() == []
        [stuck] = notices(w)
        assert "could not process" in stuck and "still failing" in stuck

        api.faults.clear()
        api.incidents[PRIVATE_ID] = incident(incident_id=PRIVATE_ID)[
            "public_incident.incident_created_v2"]
        w.daemon.clock.advance(60)
        await w.daemon.settle()
        assert len(await w.daemon.escalations()) == 1


async def test_a_private_escalation_that_becomes_unreadable_says_so_on_its_timeline(
    tmp_path: Path,
) -> None:
    async with world_with_api(tmp_path) as (w, api):
        readable = incident(incident_id=PRIVATE_ID)["public_incident.incident_created_v2"]
        api.incidents[PRIVATE_ID] = readable
        assert (await w.daemon.incident_io(private())).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()

        del api.incidents[PRIVATE_ID]  # e.g. the key lost access to private incidents
        assert (await w.daemon.incident_io(
            private("private_incident.incident_updated_v2"))).status == 202
        await w.daemon.settle()
        [entry] = [e for e in await w.daemon.store.timeline(row.id)
                   if e.event == "incident_unreadable"]
        assert entry.details["incident_id"] == PRIVATE_ID
        [notice] = notices(w)
        assert PRIVATE_ID in notice
        assert await w.daemon.dead_jobs() == []


async def test_without_an_api_token_a_private_incident_is_announced_too(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert (await w.daemon.incident_io(private())).status == 202
        await w.daemon.settle()
        assert await w.daemon.escalations() == []
        [notice] = notices(w)
        assert PRIVATE_ID in notice
        assert "incident_io.api_token" in notice


async def test_the_notice_never_turns_the_incident_id_into_a_mention(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        event = "private_incident.incident_created_v2"
        body = {"event_type": event, event: {"id": "<!channel>"}}
        assert (await w.daemon.incident_io(body)).status == 202
        await w.daemon.settle()
        [notice] = notices(w)
        assert "<!channel>" not in notice
        assert "&lt;!channel&gt;" in notice
