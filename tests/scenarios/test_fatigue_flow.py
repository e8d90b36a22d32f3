"""Tier 2 load end to end: PagerDuty's webhooks about the Tier 2 incident name who was paged,
their time zone comes from their PagerDuty profile (looked up once), the report buckets the
page in it, and the next approval request shows the load.

The harness clock is Saturday 2026-11-21 02:05 UTC: Friday 18:05 in Los Angeles, so the page is
an off-hours weekday page for Tina there (in UTC it would be a weekend sleep-hour page).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from daemon.domain.calendar import BusinessHours
from daemon.domain.fatigue import Buckets
from daemon.reporting import load_report
from tests.world import CHANNEL, approve, emergency, incident, page_event, stamp, world

TINA = {"id": "PTINA", "type": "user_reference", "summary": "Tina <!here> Tier2"}


def about_tier2(event_type: str, page: dict[str, Any], event_id: str,
                assignees: list[dict[str, str]]) -> dict[str, Any]:
    body = page_event(event_type, page["incident_key"], page["id"], event_id=event_id,
                      agent=TINA["summary"])
    body["event"]["data"]["assignees"] = assignees
    return body


async def test_the_page_is_judged_in_the_responders_own_time_zone(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.pagerduty.set_user("PTINA", "tina@example.com", name=TINA["summary"],
                             time_zone="America/Los_Angeles")
        esc_id, ts = await emergency(w)
        await approve(w, esc_id, ts, "1.001")
        [page] = w.pagerduty.pages
        for body in (about_tier2("incident.triggered", page, "ev-trig", [TINA]),
                     about_tier2("incident.acknowledged", page, "ev-ack", [TINA])):
            assert (await w.daemon.pagerduty(body)).status == 202
            await w.daemon.settle()
        timeline = await w.daemon.store.timeline(esc_id)
        [assigned] = [e for e in timeline if e.event == "page_assigned"]
        assert assigned.details["responders"] == [
            {"id": "PTINA", "name": TINA["summary"], "time_zone": "America/Los_Angeles"}]
        thread = [m.text for m in w.slack.thread(CHANNEL, ts)]
        assert not any("assigned" in t for t in thread)  # the trigger is no news to the thread
        assert any("acknowledged by Tina &lt;!here&gt; Tier2" in t for t in thread)
        # one profile lookup for two events: the answer is remembered
        assert [r.path for r in w.pagerduty.requests].count("/users/PTINA") == 1

        now = datetime.fromtimestamp(w.daemon.clock.now(), UTC)
        report = await load_report(w.daemon.store, now - timedelta(days=1),
                                   now + timedelta(hours=1))
        assert report.load is not None
        [tina] = report.load.engineers
        assert (tina.responder_id, tina.time_zone, tina.time_zone_assumed) == (
            "PTINA", "America/Los_Angeles", False)
        assert tina.by_bucket == Buckets(off_hours=1)
        assert (tina.weekend_pages, tina.weekday_pages) == (0, 1)
        assert [c.escalation_id for c in tina.caused_by] == [esc_id]

        # Prometheus sees the load by PagerDuty user id and bucket, never her name.
        metrics = await (await w.daemon.admin.get("/metrics")).text()
        assert 'tier2gate_tier2_interruptions{bucket="off_hours",responder="PTINA"} 1.0' \
            in metrics
        assert 'tier2gate_tier2_interruptions{bucket="sleep_hours",responder="PTINA"} 0.0' \
            in metrics
        assert 'tier2gate_tier2_team_interruptions{bucket="off_hours",team="default"} 1.0' \
            in metrics
        assert 'tier2gate_smoc_decisions{bucket="sleep_hours"} 1.0' in metrics  # 02:05 UTC
        assert "Tina" not in metrics
        # The dashboard's load table shows her name as text.
        html = await (await w.daemon.admin.get("/?since=1d")).text()
        load_table = html[html.index('<section id="load">'):
                          html.index('<section id="escalations">')]
        assert "<td>Tina &lt;!here&gt; Tier2</td><td>1</td>" in load_table
        assert "<!here>" not in page and "America/Los_Angeles" in load_table

        # The next emergency's approval request, ten minutes later, shows her load, her name
        # as a literal.
        w.daemon.clock.advance(600)
        assert (await w.daemon.incident_io(incident(incident_id="01SECOND"))).status == 202
        await w.daemon.settle()
        [(_, second_ts)] = [key for key, message in w.slack.messages.items()
                            if key[0] == CHANNEL and not message.thread_ts and key[1] != ts]
        text = str(w.slack.messages[(CHANNEL, second_ts)].blocks)
        # still Friday evening in her Los Angeles: the weekend counted is the last one
        assert "Tier 2 paged last:* Tina &lt;!here&gt; Tier2, not paged last weekend" in text
        assert "0 sleep-hour pages, 1 in all (last 7 days)" in text
        assert "<!here>" not in text and "policy's thresholds" not in text


async def test_a_failed_time_zone_lookup_falls_back_to_the_business_time_zone(
        tmp_path: Path) -> None:
    async with world(tmp_path) as w:  # PTINA is no PagerDuty user here: the lookup is a 404
        esc_id, ts = await emergency(w)
        await approve(w, esc_id, ts, "1.001")
        [page] = w.pagerduty.pages
        body = about_tier2("incident.acknowledged", page, "ev-ack", [TINA])
        assert (await w.daemon.pagerduty(body)).status == 202
        await w.daemon.settle()
        assert "acknowledged" in await w.daemon.events(esc_id)  # the event was not held up
        now = datetime.fromtimestamp(w.daemon.clock.now(), UTC)
        report = await load_report(w.daemon.store, now - timedelta(days=1),
                                   now + timedelta(hours=1), BusinessHours(timezone="Asia/Tokyo"))
        assert report.load is not None
        [tina] = report.load.engineers
        # Saturday 02:05 UTC is Saturday 11:05 in Tokyo: a weekend off-hours page
        assert (tina.time_zone, tina.time_zone_assumed) == ("Asia/Tokyo", True)
        assert tina.by_bucket == Buckets(off_hours=1) and tina.weekend_pages == 1


async def test_the_on_call_engineers_load_warns_and_never_blocks(tmp_path: Path) -> None:
    async with world(tmp_path, pagerduty={"tier2_schedule_id": "PT2SCHED"}) as w:
        # Saturday 02:05 UTC is Saturday 03:05 in Berlin: a weekend sleep-hour page
        w.pagerduty.set_oncall("PT2SCHED", "PTINA", "tina@example.com",
                               time_zone="Europe/Berlin")
        esc_id, ts = await emergency(w)
        first = str(w.slack.messages[(CHANNEL, ts)].blocks)
        assert "Tier 2 on call:* tina, not paged this weekend, 0 sleep-hour pages" in first
        await approve(w, esc_id, ts, "1.001")
        [page] = w.pagerduty.pages
        tina = {"id": "PTINA", "type": "user_reference", "summary": "tina"}
        assert (await w.daemon.pagerduty(
            about_tier2("incident.triggered", page, "ev-trig", [tina]))).status == 202
        await w.daemon.settle()
        w.daemon.clock.advance(600)
        assert (await w.daemon.incident_io(incident(incident_id="01SECOND"))).status == 202
        await w.daemon.settle()
        [second] = [row for row in await w.daemon.escalations() if row.id != esc_id]
        [(_, second_ts)] = [key for key, message in w.slack.messages.items()
                            if key[0] == CHANNEL and not message.thread_ts and key[1] != ts]
        text = str(w.slack.messages[(CHANNEL, second_ts)].blocks)
        assert "Tier 2 on call:* tina, paged once this weekend, 1 sleep-hour page, 1 in all" in text
        assert "sleep-hour pages: 1 (the policy warns at 1)" in text
        # a warning, not a block: the SMOC approves and Tier 2 is paged
        await approve(w, second.id, second_ts, "2.001")
        assert len(w.pagerduty.pages) == 2
        # the decided message still shows the load as it was when the SMOC was asked
        decided = str(w.slack.messages[(CHANNEL, second_ts)].blocks)
        assert "Approved by" in decided and "1 sleep-hour page, 1 in all" in decided


async def test_weekends_in_a_row_reach_back_past_the_window(tmp_path: Path) -> None:
    """Tina was paged on each of the last two Saturday nights; a third Saturday night's request
    says so and warns (the shipped policy warns at 2), though the 7-day window holds neither
    page and nobody has been paged this weekend yet."""
    async with world(tmp_path, pagerduty={"tier2_schedule_id": "PT2SCHED"}) as w:
        w.pagerduty.set_oncall("PT2SCHED", "PTINA", "tina@example.com",
                               time_zone="Europe/Berlin")
        tina = {"id": "PTINA", "type": "user_reference", "summary": "tina"}
        seen: set[str] = set()
        known: set[str] = set()

        async def ask(incident_id: str) -> tuple[str, str]:
            now_s = w.daemon.clock.now()
            assert (await w.daemon.incident_io(incident(
                incident_id=incident_id, opened_at=now_s - 300))).status == 202
            await w.daemon.settle()
            [row] = [r for r in await w.daemon.escalations() if r.id not in known]
            known.add(row.id)
            [ts] = [key[1] for key, message in w.slack.messages.items()
                    if key[0] == CHANNEL and not message.thread_ts and key[1] not in seen]
            seen.add(ts)
            return row.id, ts

        for week, incident_id in enumerate(("01WEEKONE", "01WEEKTWO")):
            esc_id, ts = await ask(incident_id)
            await approve(w, esc_id, ts, f"{week + 1}.001")
            body = about_tier2("incident.triggered", w.pagerduty.pages[-1],
                               f"ev-trig-{week}", [tina])
            body["event"]["occurred_at"] = stamp(w.daemon.clock.now())
            assert (await w.daemon.pagerduty(body)).status == 202
            await w.daemon.settle()
            w.daemon.clock.advance(7 * 86400 + 3600)  # a week on, an hour later
        _, ts = await ask("01WEEKTHREE")
        text = str(w.slack.messages[(CHANNEL, ts)].blocks)
        assert "tina, not paged this weekend, 0 sleep-hour pages, 0 in all (last 7 days), " \
            "2 weekends in a row" in text
        assert "weekends paged in a row: 2 (the policy warns at 2)" in text


async def test_the_decided_message_shows_the_load_the_smoc_was_shown(tmp_path: Path) -> None:
    """The Tier 2 schedule hands over between the request and the click: the decided message
    still names the engineer the SMOC weighed, and asks PagerDuty nothing more for it."""
    async with world(tmp_path, pagerduty={"tier2_schedule_id": "PT2SCHED"}) as w:
        w.pagerduty.set_oncall("PT2SCHED", "PTINA", "tina@example.com",
                               time_zone="Europe/Berlin")
        esc_id, ts = await emergency(w)
        assert "Tier 2 on call:* tina" in str(w.slack.messages[(CHANNEL, ts)].blocks)
        w.pagerduty.set_oncall("PT2SCHED", "PBOB", "bob@example.com",
                               time_zone="Europe/Berlin")
        asked = [r.path for r in w.pagerduty.requests].count("/oncalls")
        await approve(w, esc_id, ts, "1.001")
        decided = str(w.slack.messages[(CHANNEL, ts)].blocks)
        assert "Approved by" in decided and "Tier 2 on call:* tina" in decided
        assert "bob" not in decided
        assert [r.path for r in w.pagerduty.requests].count("/oncalls") == asked


async def test_a_time_zone_that_names_no_zone_never_holds_up_the_next_request(
        tmp_path: Path) -> None:
    """A PagerDuty profile whose time zone is no IANA zone but one of its folders ("America",
    or a name too long for a file): the load judges that engineer in the business time zone,
    and the next emergency still reaches the SMOC."""
    async with world(tmp_path) as w:
        w.pagerduty.set_user("PTINA", "tina@example.com", name=TINA["summary"],
                             time_zone="America")
        w.pagerduty.set_user("PBO", "bo@example.com", name="Bo", time_zone="x" * 300)
        bo = {"id": "PBO", "type": "user_reference", "summary": "Bo"}
        esc_id, ts = await emergency(w)
        await approve(w, esc_id, ts, "1.001")
        [page] = w.pagerduty.pages
        assert (await w.daemon.pagerduty(
            about_tier2("incident.triggered", page, "ev-trig", [TINA, bo]))).status == 202
        await w.daemon.settle()
        w.daemon.clock.advance(600)
        assert (await w.daemon.incident_io(incident(incident_id="01SECOND"))).status == 202
        await w.daemon.settle()
        assert len([key for key, message in w.slack.messages.items()
                    if key[0] == CHANNEL and not message.thread_ts]) == 2
        assert await w.daemon.dead_jobs() == []
        now = datetime.fromtimestamp(w.daemon.clock.now(), UTC)
        report = await load_report(w.daemon.store, now - timedelta(days=1),
                                   now + timedelta(hours=1))
        assert report.load is not None
        assert {(e.responder_id, e.time_zone_assumed) for e in report.load.engineers} == {
            ("PTINA", True), ("PBO", True)}
