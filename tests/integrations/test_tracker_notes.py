"""`IssueTracker.add_note` for GitLab, GitHub and Jira: the real client libraries against the
local fakes. A reopened emergency paged again gets a note on its retro, never a second issue."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from daemon.standins.faults import Fault
from daemon.workers.retry import Permanent, Retry
from tests.integrations.test_trackers import Kit, _kit, draft

NOTE = ("The incident was reopened at 2026-11-21 03:40 UTC (round 2); Tier 2 was paged again "
        "at 2026-11-21 03:45 UTC: https://acme.pagerduty.com/incidents/Q2 (approved by USMOC).")


@pytest.fixture(params=["gitlab", "github", "jira"])
async def kit(request: pytest.FixtureRequest) -> AsyncIterator[Kit]:
    made = _kit(request.param)
    await made.fake.start()
    yield made
    for client in made.clients:
        client.close()
    await made.fake.close()


async def test_a_note_lands_on_the_existing_issue_and_opens_none(kit: Kit) -> None:
    client = kit.client()
    ref = await client.create(draft())
    found = await client.find_by_marker(draft().marker)
    assert found == ref

    await client.add_note(found, NOTE)

    [issue] = kit.fake.issues
    assert issue.notes == [NOTE]
    [call] = [r for r in kit.fake.requests if r.method == "POST"
              and r.path.endswith(("/notes", "/comments", "/comment"))]
    assert ref.id in call.path


async def test_a_note_on_a_missing_issue_is_permanent(kit: Kit) -> None:
    ref = await kit.client().create(draft())
    kit.fake.issues.clear()

    with pytest.raises(Permanent):
        await kit.client().add_note(ref, NOTE)


async def test_a_note_during_an_outage_is_retried(kit: Kit) -> None:
    client = kit.client()
    ref = await client.create(draft())
    kit.fake.plan.add(Fault(status=503), times=1)

    with pytest.raises(Retry):
        await client.add_note(ref, NOTE)
    assert kit.fake.issues[0].notes == []
