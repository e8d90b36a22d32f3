"""Customer events: the Friday heads-up to Tier 2 (once, across restarts) and the flag on the
approval request of a customer whose event is in progress."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from daemon.domain.messages import message
from daemon.integrations.slack import Client
from daemon.standins.faults import Fault
from daemon.store import JobState
from tests.harness import REPO
from tests.support import eventually
from tests.world import (
    CHANNEL,
    SLACK_TOKEN,
    SMOC,
    World,
    decline_form,
    emergency,
    incident,
    world,
)

TIER2_CHANNEL = "C0TIER2"
TIER2_SCHEDULE = "PT2SCHED"
TINA_EMAIL, TINA = "tina@example.com", "UTINA"
THURSDAY_NOON = datetime(2026, 11, 19, 12, 0, tzinfo=UTC).timestamp()
FRIDAY_SLOT = datetime(2026, 11, 20, 15, 0, tzinfo=UTC).timestamp()  # shipped policy: UTC
HOSTILE = "<!channel> *now* <https://evil.example|click>"

EVENTS_YAML = f"""\
events:
  - customer: Acme Corp
    kind: migration
    summary: "Move to the EU region {HOSTILE}"
    start: 2026-11-20T20:00:00+00:00
    end: 2026-11-22T20:00:00+00:00
  - customer: Globex
    kind: launch
    summary: Next month's launch
    start: 2026-12-12T08:00:00+00:00
    end: 2026-12-12T20:00:00+00:00
"""


def event_settings(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "events.yaml"
    path.write_text(EVENTS_YAML)
    return {"customer_events": {"files": [str(path)]},
            "slack": {"tier2_channel": TIER2_CHANNEL},
            "pagerduty": {"tier2_schedule_id": TIER2_SCHEDULE}}


def headsups(w: World) -> list[str]:
    return [c.args.get("text", "") for c in w.slack.calls_to("chat.postMessage")
            if c.args.get("channel") == TIER2_CHANNEL]


async def headsup_jobs(w: World) -> list[tuple[str, str]]:
    found = []
    for state in JobState:
        found += [(j.key, j.state.value) for j in await w.daemon.store.list_jobs(state)
                  if j.kind == "events_headsup"]
    return sorted(found)


async def test_one_friday_headsup_across_restarts(tmp_path: Path) -> None:
    settings = event_settings(tmp_path)
    # Thursday: the heads-up waits for Friday 15:00.
    async with world(tmp_path, start=THURSDAY_NOON, users={TINA_EMAIL: TINA},
                     **settings) as w:
        await w.daemon.settle()
        assert headsups(w) == []
        assert await headsup_jobs(w) == [("events_headsup:2026-11-20", "queued")]
    # Restarted before the slot: still one job; at 15:00 one heads-up.
    async with world(tmp_path, start=THURSDAY_NOON + 3600, users={TINA_EMAIL: TINA},
                     **settings) as w:
        w.pagerduty.set_oncall(TIER2_SCHEDULE, "PTINA", TINA_EMAIL)
        await w.daemon.settle()
        assert headsups(w) == []
        w.daemon.clock.advance(FRIDAY_SLOT + 1 - w.daemon.clock.now())
        await w.daemon.settle()
        [text] = headsups(w)
        assert "*Acme Corp*" in text
        assert "migration: Move to the EU region" in text
        assert "Sat 21 Nov" not in text  # the event starts on Friday evening
        assert "Fri 20 Nov 20:00 to Sun 22 Nov 20:00" in text
        assert f"<@{TINA}>" in text
        assert "Globex" not in text  # not this weekend
        assert "<!channel>" not in text and "&lt;!channel&gt;" in text
        assert "<https://evil.example" not in text
        [oncall] = [dict(r.query) for r in w.pagerduty.requests if r.path == "/oncalls"]
        assert oncall["since"] == "2026-11-20T15:00:00+00:00"
        assert oncall["until"] == "2026-11-23T00:00:00+00:00"
    # Restarted an hour after the slot (the late-start rule enqueues that slot again): the key
    # exists, so nothing is posted twice; next week's heads-up waits.
    async with world(tmp_path, start=FRIDAY_SLOT + 3600, users={TINA_EMAIL: TINA},
                     **settings) as w:
        await w.daemon.settle()
        assert headsups(w) == []
        assert await headsup_jobs(w) == [("events_headsup:2026-11-20", "done"),
                                         ("events_headsup:2026-11-27", "queued")]


async def test_a_headsup_posted_before_a_crash_is_not_posted_again(tmp_path: Path) -> None:
    """The process died between Slack's answer and the commit: the retry finds its notice."""
    async with world(tmp_path, start=THURSDAY_NOON, **event_settings(tmp_path)) as w:
        await w.daemon.settle()
        await Client(SLACK_TOKEN, w.slack.api_url).post_notice(
            TIER2_CHANNEL, message("the heads-up, posted just before a crash"),
            key="events_headsup:2026-11-20")
        w.daemon.clock.advance(FRIDAY_SLOT + 1 - w.daemon.clock.now())
        await w.daemon.settle()
        assert len(headsups(w)) == 1
        assert ("events_headsup:2026-11-20", "done") in await headsup_jobs(w)


async def test_a_late_start_after_the_weekend_posts_nothing(tmp_path: Path) -> None:
    """Down from Friday to Monday: a heads-up about a weekend that is over helps nobody."""
    settings = event_settings(tmp_path)
    async with world(tmp_path, start=THURSDAY_NOON, **settings) as w:
        await w.daemon.settle()
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=UTC).timestamp()
    async with world(tmp_path, start=monday, **settings) as w:
        await w.daemon.settle()
        assert headsups(w) == []
        assert await headsup_jobs(w) == [("events_headsup:2026-11-20", "done"),
                                         ("events_headsup:2026-11-27", "queued")]


async def test_the_approval_request_says_the_customer_has_an_event(tmp_path: Path) -> None:
    # The harness's Saturday night falls inside Acme Corp's migration.
    async with world(tmp_path, **event_settings(tmp_path)) as w:
        esc_id, _ts = await emergency(w)
        [post] = w.approval_posts()
        blocks = str(post.args.get("blocks"))
        assert "Customer event in progress:* migration: Move to the EU region" in blocks
        assert "until 2026-11-22 20:00 UTC" in blocks
        assert "<!channel>" not in blocks and "&lt;!channel&gt;" in blocks
        assert "customer event in progress" in post.args.get("text", "")
        classified = [e for e in await w.daemon.store.timeline(esc_id)
                      if e.event == "classified"]
        assert classified and "customer_events" in str(classified[0].details)


async def test_no_flag_without_an_event(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await emergency(w)
        [post] = w.approval_posts()
        assert "Customer event" not in str(post.args.get("blocks"))
        assert post.args.get("channel") == CHANNEL


MONDAY_OPEN = datetime(2026, 11, 23, 9, 0, tzinfo=UTC).timestamp()
WEEKDAY_S2 = """\
  - name: S2 in business hours
    when:
      severity: [S2]
      status: open
      off_hours: false
    outcome: emergency

"""


def with_rule(policy: str, rule: str) -> str:
    """The shipped policy with `rule` tried just before its catch-all request for help."""
    anchor = "  - name: request for help\n"
    assert policy.count(anchor) == 1
    return policy.replace(anchor, rule + anchor)


def created(incident_id: str, reference: str, severity: str, title: str) -> dict[str, Any]:
    body = incident(incident_id=incident_id, severity=severity, exhausted=False)
    inner = body["public_incident.incident_created_v2"]
    inner.update(reference=reference, name=title)
    return body


async def test_the_morning_queue_rechecks_held_requests_and_lists_them_once(
        tmp_path: Path) -> None:
    shipped = (REPO / "config" / "policy.yaml").read_text()
    policy = tmp_path / "policy.yaml"
    policy.write_text(with_rule(shipped, WEEKDAY_S2))
    async with world(tmp_path, policy_file=str(policy),
                     slack={"tier2_channel": TIER2_CHANNEL}) as w:
        for body in (created("01S3", "INC-3", "SEV3", "Export is slow <!here>"),
                     created("01S2", "INC-2", "SEV2", "Search is degraded")):
            assert (await w.daemon.incident_io(body)).status == 202
        await w.daemon.settle()
        rows = {row.external_id: row for row in await w.daemon.escalations()}
        assert {k: r.state for k, r in rows.items()} == {"01S3": "rfh", "01S2": "rfh"}
        assert headsups(w) == []
        w.daemon.clock.advance(MONDAY_OPEN + 1 - w.daemon.clock.now())
        await w.daemon.settle()
        [text] = headsups(w)
        assert "Requests for help waiting for Tier 2* (1, business hours open Mon 23 Nov 09:00" \
               in text
        assert "*INC-3* · Export is slow &lt;!here&gt; · Acme Corp" in text
        assert "INC-2" not in text  # an emergency in business hours now
        rows = {row.external_id: row for row in await w.daemon.escalations()}
        assert {k: r.state for k, r in rows.items()} == {
            "01S3": "rfh", "01S2": "awaiting_approval"}
        assert "|issue>" in text  # the RFH issue is linked
    # Restarted in the same window: that window's queue was posted; the next one waits.
    async with world(tmp_path, start=MONDAY_OPEN + 120, policy_file=str(policy),
                     slack={"tier2_channel": TIER2_CHANNEL}) as w:
        await w.daemon.settle()
        assert headsups(w) == []
        jobs = [(j.key, j.state.value) for state in JobState
                for j in await w.daemon.store.list_jobs(state) if j.kind == "morning_queue"]
        assert sorted(jobs) == [("morning_queue:2026-11-23T09:00:00+00:00", "done"),
                                ("morning_queue:2026-11-24T09:00:00+00:00", "queued")]


async def test_no_held_requests_no_morning_message(tmp_path: Path) -> None:
    async with world(tmp_path, slack={"tier2_channel": TIER2_CHANNEL}) as w:
        await w.daemon.settle()
        w.daemon.clock.advance(MONDAY_OPEN + 1 - w.daemon.clock.now())
        await w.daemon.settle()
        assert headsups(w) == []


async def test_a_broken_calendar_is_said_on_the_dashboard_and_readyz(tmp_path: Path) -> None:
    path = tmp_path / "events.yaml"
    path.write_text("events:\n  - customer: Acme Corp\n    '<script>x</script>': 1\n")
    async with world(tmp_path, customer_events={"files": [str(path)]}) as w:
        page = await (await w.daemon.admin.get("/")).text()
        assert "Customer events: the calendar is not current" in page
        assert "&lt;script&gt;x&lt;/script&gt;: unknown key" in page
        assert "<script>x" not in page
        ready = await (await w.daemon.admin.get("/readyz")).json()
        assert "line 3" in ready["customer_events"]["problem"]
        assert ready["status"] == "ready"  # news, not a reason to take the daemon out


S2_DURING_EVENT = """\
  - name: S2 during a customer event
    when:
      severity: [S2]
      status: open
      customer_event_active: true
    outcome: emergency

"""


async def test_an_event_added_to_the_calendar_rechecks_open_escalations(tmp_path: Path
                                                                         ) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(with_rule((REPO / "config" / "policy.yaml").read_text(), S2_DURING_EVENT))
    calendar = tmp_path / "events.yaml"
    calendar.write_text("events: []\n")
    async with world(tmp_path, policy_file=str(policy),
                     customer_events={"files": [str(calendar)]}) as w:
        assert (await w.daemon.incident_io(
            created("01S2", "INC-2", "SEV2", "Search is degraded"))).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        assert row.state == "rfh"
        calendar.write_text(EVENTS_YAML)  # Acme Corp's migration, under way since Friday

        async def asked() -> bool:
            await w.daemon.settle()
            [now] = await w.daemon.escalations()
            return now.state == "awaiting_approval"

        await eventually(asked, 20)
        [post] = w.approval_posts()
        assert "Customer event in progress:* migration" in str(post.args.get("blocks"))


@pytest.mark.parametrize(("status", "times", "words"), [
    (403, 1, "On call for Tier 2: could not be looked up"),
    (503, 20, "On call for Tier 2: PagerDuty did not answer"),
])
async def test_an_on_call_lookup_that_fails_does_not_hold_back_the_headsup(
        tmp_path: Path, status: int, times: int, words: str) -> None:
    async with world(tmp_path, start=THURSDAY_NOON, **event_settings(tmp_path)) as w:
        w.pagerduty.set_oncall(TIER2_SCHEDULE, "PTINA", TINA_EMAIL)
        await w.daemon.settle()
        w.pagerduty.faults.add(Fault(status=status), times=times)
        w.daemon.clock.advance(FRIDAY_SLOT + 1 - w.daemon.clock.now())
        await w.daemon.settle()
        for _retry in range(3):  # a temporary failure is tried again (backoff on the clock)
            w.daemon.clock.advance(5)
            await w.daemon.settle()
        [text] = headsups(w)
        assert words in text and "*Acme Corp*" in text


async def test_a_calendar_that_cannot_be_read_is_said_in_the_headsup(tmp_path: Path) -> None:
    """No events known because the calendar is broken is not "no events this weekend": Tier 2
    is told the heads-up cannot be trusted rather than hearing nothing."""
    settings = event_settings(tmp_path)
    (tmp_path / "events.yaml").write_text("events:\n  - customer: Acme Corp\n    when: soon\n")
    async with world(tmp_path, start=THURSDAY_NOON, **settings) as w:
        w.pagerduty.set_oncall(TIER2_SCHEDULE, "PTINA", TINA_EMAIL)
        await w.daemon.settle()
        w.daemon.clock.advance(FRIDAY_SLOT + 1 - w.daemon.clock.now())
        await w.daemon.settle()
        [text] = headsups(w)
        assert "could not be read" in text and "line 3" in text
        assert "On call for Tier 2" in text


async def test_an_emergency_declined_over_the_weekend_is_in_mondays_queue(
        tmp_path: Path) -> None:
    """"Not a page: Monday" is a request for help held for the business morning, the case the
    morning queue exists for; it must not be left out because the SMOC decided it."""
    async with world(tmp_path, slack={"tier2_channel": TIER2_CHANNEL}) as w:
        esc_id, ts = await emergency(w)  # Saturday night
        assert (await w.daemon.slack_interaction(
            decline_form(esc_id, SMOC, ts, "Customer agreed to wait for Monday"))).status == 200
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        assert row.state == "declined"
        w.daemon.clock.advance(MONDAY_OPEN + 1 - w.daemon.clock.now())
        await w.daemon.settle()
        [text] = headsups(w)
        assert "Requests for help waiting for Tier 2* (1," in text
        assert "Checkout is down for Acme" in text and "declined by the SMOC" in text
        [row] = await w.daemon.escalations()
        assert row.state == "declined"  # listed, not asked again


async def test_many_events_in_progress_do_not_push_the_links_out_of_the_request(
        tmp_path: Path) -> None:
    """Anyone who may edit the calendar can give a customer a dozen overlapping events with
    long summaries; the SMOC still needs the incident link and the weekend flag."""
    events = "events:\n" + "".join(
        f"  - customer: Acme Corp\n    kind: maintenance\n    summary: \"{n} {'x' * 400}\"\n"
        "    start: 2026-11-20T20:00:00+00:00\n    end: 2026-11-22T20:00:00+00:00\n"
        for n in range(12))
    path = tmp_path / "events.yaml"
    path.write_text(events)
    async with world(tmp_path, customer_events={"files": [str(path)]},
                     slack={"tier2_channel": TIER2_CHANNEL}) as w:
        await emergency(w)
        [post] = w.approval_posts()
        blocks = str(post.args.get("blocks"))
        assert "Customer event in progress" in blocks
        assert "|incident>" in blocks and "Weekend · Off hours" in blocks
        assert "and 9 more customer events in progress" in blocks
