"""`jobs.notes.tell_each`, the one "direct message to each approver" of the approval notes and
of the attention notices, with the real Slack client against the local Slack."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from daemon.domain.messages import message
from daemon.integrations.slack import Client
from daemon.jobs.notes import tell_each
from daemon.standins.slack import FakeSlack
from daemon.workers.retry import Retry

TOKEN = "xoxb-4242-tell-each"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN) as fake:
        yield fake


async def test_one_refused_person_does_not_keep_the_others_from_being_told(slack: FakeSlack
                                                                           ) -> None:
    slack.refuse("UGONE", "user_not_found")
    failures = await tell_each(Client(TOKEN, slack.api_url, timeout_s=1.0),
                               ("USMOC", "UGONE", "UBACKUP"), message("the page did not go out"))
    assert [user for user, _error in failures] == ["UGONE"]
    assert "user_not_found" in failures[0][1]
    told = {m.channel for m in slack.messages.values() if m.text == "the page did not go out"}
    assert told == {slack.dm_channel("USMOC"), slack.dm_channel("UBACKUP")}


async def test_everyone_refused_is_every_failure_and_a_temporary_one_is_raised(
        slack: FakeSlack) -> None:
    client = Client(TOKEN, slack.api_url, timeout_s=1.0)
    for user in ("U1", "U2"):
        slack.refuse(user, "is_archived")
    everyone = await tell_each(client, ("U1", "U2"), message("hi"))
    assert [user for user, _ in everyone] == ["U1", "U2"]
    assert await tell_each(client, (), message("hi")) == []
    # A temporary failure is the job's to retry, not a person who cannot be told.
    slack.fail_post_to("U3", "service_unavailable")
    with pytest.raises(Retry):
        await tell_each(client, ("U3",), message("hi"))
