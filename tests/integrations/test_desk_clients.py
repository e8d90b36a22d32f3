"""The desk clients against their stand-ins: internal notes, the marker lookup across pages,
rate limits, and untrusted text made literal for each desk."""

from __future__ import annotations

import pytest

from daemon.clock import ManualClock
from daemon.domain.models import Source, Status
from daemon.integrations.desk import jsm, zendesk
from daemon.integrations.failures import Permanent, Retry
from daemon.jobs.desk_notes import note_text
from daemon.markup import jira_wiki_literal, zendesk_literal
from daemon.sources.desks import parse_jsm, parse_zendesk
from daemon.standins.desks import FakeJsm, FakeZendesk
from tests.scenarios.test_desk_flow import EXHAUSTED_ID, jsm_issue, zendesk_ticket
from tests.support import START

TOKEN = "desk-token-RECOGNISABLE"


async def test_zendesk_notes_are_internal_and_found_again_across_pages() -> None:
    async with FakeZendesk("a@example.com", TOKEN) as fake:
        assert isinstance(fake, FakeZendesk)
        fake.page_size = 2
        fake.add_ticket("7")
        client = zendesk.Client(fake.url, "a@example.com", TOKEN, clock=ManualClock(START))
        for step in ("one", "two", "three"):
            assert not await client.has_note("7", f"tier2gate:esc-1:{step}")
            await client.add_note("7", f"note {step}", f"tier2gate:esc-1:{step}")
        assert await client.has_note("7", "tier2gate:esc-1:three")  # on the second page
        assert fake.notes("7")[0] == "note one\n\ntier2gate:esc-1:one"
        fake.rate_limited = 1
        with pytest.raises(Retry) as caught:
            await client.add_note("7", "x", "tier2gate:esc-1:x")
        assert caught.value.after_s == 3.0


async def test_jsm_notes_are_internal_and_the_marker_survives_a_cut() -> None:
    async with FakeJsm("a@example.com", TOKEN) as fake:
        fake.add_ticket("SD-1")
        client = jsm.Client(fake.url, "a@example.com", TOKEN, clock=ManualClock(START))
        await client.add_note("SD-1", "x" * 40_000, "tier2gate:esc-1:paged")
        [kept] = fake.notes("SD-1")
        assert len(kept) == 32_767 and kept.endswith("\n\ntier2gate:esc-1:paged")
        assert await client.has_note("SD-1", "tier2gate:esc-1:paged")


HOSTILE = "[~accountid:5b10a2] *now* {{ticket.id}} @all\nh1. fake"


def test_a_decline_reason_is_literal_on_either_desk() -> None:
    payload = {"event": "declined", "actor": "USMOC", "at": START,
               "details": {"reason": HOSTILE}}
    wiki = note_text(payload, jira_wiki_literal, wiki=True)
    plain = note_text(payload, zendesk_literal, wiki=False)
    assert "\\[\\~accountid:5b10a2\\]" in wiki and "\\*now\\*" in wiki and "\n" not in wiki
    assert "{\u2060{ticket.id}}" in plain and "@\u2060all" in plain and "\n" not in plain


def test_a_timeout_note_from_details_without_its_minutes_reads_as_before() -> None:
    # Details are read through their typed fact, whose missing number is None: the note says
    # what the version before the facts said, not "None".
    payload = {"event": "approval_timed_out", "actor": "tier2gate", "at": START,
               "details": {"fallback": "hold"}}
    assert note_text(payload, zendesk_literal, wiki=False).endswith(
        "No decision within  minutes: the policy's fallback is to hold.")


def test_a_zendesk_ticket_maps_priority_fields_organization_group_and_brand() -> None:
    ticket = zendesk_ticket()
    ticket["status"] = "Solved"
    escalation = parse_zendesk({"ticket": ticket}, field_names={EXHAUSTED_ID: "Exhausted"})
    assert escalation.escalation is not None
    e = escalation.escalation
    assert (e.source, e.external_id, e.severity, e.customer, e.status) == (
        Source.ZENDESK, "4242", "Urgent", "Acme Corp", Status.RESOLVED)
    assert e.fields == {"Exhausted": "Yes"}
    assert e.labels == ("tier2", "checkout", "group:Platform Support", "brand:Acme")
    assert e.declared_by is not None and e.declared_by.name == "Sam Support"


def test_a_jsm_request_maps_priority_fields_and_organizations() -> None:
    event = parse_jsm(jsm_issue(START), field_names={"customfield_10050": "Exhausted"},
                      customer_field="customfield_10002")
    e = event.escalation
    assert e is not None
    assert (e.external_id, e.severity, e.customer) == ("SD-7", "Highest", "Acme Corp")
    assert e.fields == {"Exhausted": "Yes"} and "project:SD" in e.labels
    assert e.links == {"ticket": "https://acme.atlassian.net/browse/SD-7"}
    ignored = parse_jsm({**jsm_issue(START), "webhookEvent": "comment_created"},
                        field_names={}, customer_field="customfield_10002")
    assert ignored.escalation is None


async def test_a_note_on_an_unknown_ticket_is_permanent() -> None:
    async with FakeZendesk("a@example.com", TOKEN) as fake:
        client = zendesk.Client(fake.url, "a@example.com", TOKEN, clock=ManualClock(START))
        with pytest.raises(Permanent, match="HTTP 404"):
            await client.add_note("404", "x", "tier2gate:esc-1:x")
