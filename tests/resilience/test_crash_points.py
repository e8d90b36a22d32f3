"""SIGKILL the daemon at random moments while a stream of emergencies goes through approval,
page and retro: after the last restart every effect happened exactly once, nothing was lost.

Everything goes through the real HTTP endpoints with signed deliveries; a refused delivery
(daemon down) is re-sent until acknowledged, as the vendors do. The vendors answer a little
late (Slack 20-200 ms, GitLab and PagerDuty creates 150 ms) so that kills land between "the
vendor did it" and "we committed it". One page is deliberately killed in flight: PagerDuty
created the incident but had not answered; the restarted daemon must get the duplicate-key 400
and adopt the open incident.

The kill schedule is seeded (TIER2GATE_CRASH_SEED, printed in every failure); process timing
still varies from run to run, so a failing seed may need a few runs to reproduce.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from daemon.sources.slack_ids import APPROVE_ACTION
from daemon.standins.pagerduty import FakePagerDuty
from daemon.standins.slack import FakeSlack
from tests.resilience.live import (
    Courier,
    LiveDaemon,
    Vendors,
    fast_jobs_env,
    incident_io_headers,
    slack_delivery_id,
    slack_form,
    slack_headers,
    vendors,
)
from tests.world import CHANNEL, SMOC, button, incident, stamp

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("TIER2GATE_CRASH_SEED", "20261121"))
MIN_KILLS = 24
MAX_STORIES = 40
PAGE_IN_FLIGHT_STORY = 2  # this story's page is killed after PagerDuty created it
STAGE_TIMEOUT_S = 60.0
SMOC_READS_S = (0.3, 1.5)  # from the approval message appearing to the click


@dataclass
class Story:
    n: int
    esc_id: str = ""
    stage: str = "new"
    done: bool = False
    opened_at: float = field(default_factory=time.time)  # `serve` runs on the real clock

    @property
    def incident_id(self) -> str:
        return f"01CRASH{self.n:04d}"

    @property
    def reference(self) -> str:
        return f"INC-{7000 + self.n}"

    @property
    def page_key(self) -> str:
        return f"tier2gate-{self.esc_id}"

    def pages(self, pd: FakePagerDuty) -> list[dict[str, Any]]:
        """Its incidents in PagerDuty, found by title (not by key: the key is under test)."""
        return [p for p in pd.pages if f"({self.reference})" in p["title"]]

    def body(self, *, closed: bool) -> bytes:
        if closed:
            data = incident(category="closed", opened_at=self.opened_at,
                            updated_at=stamp(time.time()), incident_id=self.incident_id,
                            event="public_incident.incident_status_updated_v2")
            inner = data["public_incident.incident_status_updated_v2"]["incident"]
        else:
            data = incident(incident_id=self.incident_id, opened_at=self.opened_at)
            inner = data["public_incident.incident_created_v2"]
        inner.update(name=f"Checkout is down for Acme (#{self.n})", reference=self.reference)
        return json.dumps(data).encode()


def approve_buttons(blocks: Any) -> list[str]:
    """The escalation ids behind the Approve buttons of a message's blocks."""
    found: list[str] = []
    if isinstance(blocks, dict):
        if blocks.get("action_id") == APPROVE_ACTION and isinstance(blocks.get("value"), str):
            found.append(blocks["value"])
        for value in blocks.values():
            found += approve_buttons(value)
    elif isinstance(blocks, list):
        for value in blocks:
            found += approve_buttons(value)
    return found


def approval_posts(slack: FakeSlack) -> Counter[str]:
    """chat.postMessage calls that carried an approval request, per escalation id."""
    return Counter(esc for call in slack.calls_to("chat.postMessage")
                   if call.args.get("channel") == CHANNEL
                   for esc in set(approve_buttons(call.args.get("blocks"))))


def approval_message(slack: FakeSlack, reference: str) -> tuple[str, str] | None:
    for (channel, ts), message in list(slack.messages.items()):
        if channel == CHANNEL and message.thread_ts is None and reference in str(message.blocks):
            ids = approve_buttons(message.blocks)
            if ids:
                return ids[0], ts
    return None


def paged_notes(slack: FakeSlack, pages: list[dict[str, Any]]) -> int:
    """Thread replies announcing the page: posted only after the page was committed."""
    urls = {p["html_url"] for p in pages}
    return sum(1 for m in list(slack.messages.values())
               if m.thread_ts and any(m.text == f"Paged Tier 2: {url}" for url in urls))


def answer_late(rng: random.Random, low_s: float, high_s: float) -> Any:
    """A vendor that does what it was asked at once and answers a moment later."""

    @web.middleware
    async def late(request: web.Request,
                   handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                   ) -> web.StreamResponse:
        response = await handler(request)
        await asyncio.sleep(rng.uniform(low_s, high_s))
        return response

    return late


class Chaos:
    def __init__(self, daemon: LiveDaemon, vendors: Vendors, courier: Courier,
                 rng: random.Random) -> None:
        self.daemon = daemon
        self.vendors = vendors
        self.courier = courier
        self.rng = rng
        self.stories: list[Story] = []
        self.kill_log: list[str] = []
        self.killing = True
        self.page_in_flight: dict[str, Any] = {}

    def fail(self, message: str) -> str:
        return (f"[seed {SEED}, {self.daemon.kills} kills] {message}\n"
                f"--- serve log tail ---\n{self.daemon.log_tail()}")

    async def until(self, story: Story, stage: str, check: Callable[[], Any]) -> Any:
        story.stage = stage
        deadline = time.monotonic() + STAGE_TIMEOUT_S
        while not (found := check()):
            if time.monotonic() > deadline:
                raise AssertionError(self.fail(f"story {story.n} ({story.esc_id}) stuck at "
                                               f"{stage}"))
            await asyncio.sleep(0.02)
        return found

    def recorded(self, esc_id: str, event: str) -> bool:
        try:
            return bool(self.daemon.query(
                "SELECT 1 FROM timeline WHERE escalation_id = ? AND event = ?", esc_id, event))
        except sqlite3.OperationalError:  # mid-restart: ask again
            return False

    async def pause(self) -> None:
        await asyncio.sleep(self.rng.uniform(0.05, 0.2))

    async def kill_and_restart(self, why: str) -> None:
        await self.daemon.kill()
        self.kill_log.append(why)
        await asyncio.sleep(self.rng.uniform(0.0, 0.3))  # deliveries meanwhile are refused
        await self.daemon.start()

    async def killer(self) -> None:
        while self.killing:
            await asyncio.sleep(self.rng.uniform(0.15, 1.2))
            if not self.killing:
                return
            async with self.daemon.lock:
                await self.kill_and_restart("random")

    async def story(self, story: Story) -> None:
        slack, pd, gitlab = self.vendors.slack, self.vendors.pagerduty, self.vendors.gitlab
        created = story.body(closed=False)
        msg_id = f"msg_{story.n}_created"
        story.stage = "deliver incident"
        await self.courier.deliver("/webhooks/incident-io", created,
                                   lambda: incident_io_headers(created, msg_id),
                                   ("incident_io", msg_id), self.pause)
        story.esc_id, ts = await self.until(
            story, "approval message", lambda: approval_message(slack, story.reference))
        # The SMOC reads before clicking. (Clicking within Slack's answer time, before our
        # commit, hits the known bug described below in `check`; SMOC_READS_S = 0 shows it.)
        await asyncio.sleep(self.rng.uniform(*SMOC_READS_S))

        click = slack_form(button(story.esc_id, SMOC, APPROVE_ACTION, ts, f"{story.n}.0001"))
        in_flight = story.n == PAGE_IN_FLIGHT_STORY
        if in_flight:
            await self.daemon.lock.acquire()  # no random kill now: this one is aimed
        try:
            if in_flight:
                pd.answer_delay_s = 5.0
            story.stage = "deliver click"
            await self.courier.deliver("/slack/interactions", click, lambda: slack_headers(click),
                                       ("slack", slack_delivery_id(click)), self.pause)
            if in_flight:
                await self.until(story, "page created (answer pending)",
                                 lambda: story.pages(pd))
                pd.answer_delay_s = 0.15
                self.page_in_flight = {"story": story, "requests": len(pd.requests)}
                await self.kill_and_restart("while PagerDuty's answer to the page was pending")
        finally:
            if in_flight:
                pd.answer_delay_s = 0.15
                self.daemon.lock.release()

        # Close the incident only once the page is committed (read from the store, WAL lets a
        # reader in beside the daemon): closing while the page is in flight is another story.
        await self.until(story, "page committed", lambda: self.recorded(story.esc_id, "paged"))
        closed = story.body(closed=True)
        closed_id = f"msg_{story.n}_closed"
        story.stage = "deliver close"
        await self.courier.deliver("/webhooks/incident-io", closed,
                                   lambda: incident_io_headers(closed, closed_id),
                                   ("incident_io", closed_id), self.pause)
        await self.until(story, "retro issue", lambda: any(
            f"tier2gate-retro-{story.esc_id}" in issue.labels for issue in gitlab.issues))
        await self.until(story, "retro committed",
                         lambda: self.recorded(story.esc_id, "retro_opened"))
        story.stage = "done"
        story.done = True

    async def run(self) -> None:
        tasks = [asyncio.create_task(self.killer(), name="killer")]
        try:
            # A new escalation every second or so while the kills go on.
            while self.daemon.kills < MIN_KILLS:
                if len(self.stories) < MAX_STORIES:
                    story = Story(len(self.stories))
                    self.stories.append(story)
                    tasks.append(asyncio.create_task(self.story(story), name=f"story-{story.n}"))
                await asyncio.sleep(self.rng.uniform(0.5, 1.5))
                for task in tasks:
                    failure = task.exception() if task.done() else None
                    if failure is not None:
                        raise failure
            await asyncio.gather(*tasks[1:])
        finally:
            self.killing = False
            for task in tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def busy(daemon: LiveDaemon, now: float) -> list[tuple[Any, ...]]:
    """Jobs running or due now (timers in the future may wait)."""
    return daemon.query(
        "SELECT kind, key, state FROM jobs WHERE (state = 'running' OR (state = 'queued' AND "
        "run_at <= ?))", now)


async def quiet(daemon: LiveDaemon) -> None:
    """Until nothing is running or due, for a second."""
    stable = 0
    deadline = time.monotonic() + 30
    while stable < 4:
        if time.monotonic() > deadline:
            raise AssertionError(f"[seed {SEED}] the daemon never went quiet: "
                                 f"{busy(daemon, time.time())}")
        try:
            stable = stable + 1 if not busy(daemon, time.time()) else 0
        except sqlite3.OperationalError:
            stable = 0
        await asyncio.sleep(0.25)


@pytest.mark.timeout(300)
async def test_sigkill_at_random_points_loses_nothing_and_duplicates_no_page_or_retro(
    tmp_path: Path,
) -> None:
    print(f"crash-points seed: {SEED} (rerun with TIER2GATE_CRASH_SEED={SEED})")
    rng = random.Random(SEED)

    def prepare(found: Vendors) -> None:
        found.slack.app.middlewares.append(answer_late(random.Random(SEED + 1), 0.02, 0.2))
        found.pagerduty.answer_delay_s = 0.15
        found.gitlab.answer_delay_s = 0.15

    async with vendors(tmp_path, prepare=prepare) as world, aiohttp.ClientSession() as session:
        daemon = LiveDaemon(tmp_path, {**world.env(), **fast_jobs_env()})
        courier = Courier(session, daemon)
        chaos = Chaos(daemon, world, courier, rng)
        try:
            await daemon.start()
            await chaos.run()
            # The final restart, then let it finish whatever is due.
            await chaos.kill_and_restart("final")
            await quiet(daemon)
            stopped_at = time.time()
            assert await daemon.stop() == 0, chaos.fail("SIGTERM did not exit 0")
        finally:
            await daemon.ensure_stopped()
        check(chaos, world, daemon, courier, stopped_at)


def check(chaos: Chaos, world: Vendors, daemon: LiveDaemon, courier: Courier,
          stopped_at: float) -> None:
    slack, pd, gitlab = world.slack, world.pagerduty, world.gitlab
    stories = chaos.stories
    fail = chaos.fail
    print(f"crash-points summary: seed={SEED} kills={daemon.kills} ({Counter(chaos.kill_log)}) "
          f"starts={daemon.starts} escalations={len(stories)} pages={len(pd.pages)} "
          f"issues={len(gitlab.issues)} acknowledged={len(courier.acknowledged)} "
          f"refusals={dict(courier.refusals)}")
    print(f"crash-points log events: {dict(daemon.log_events())}")
    assert daemon.kills >= 20, fail(f"only {daemon.kills} kills")
    assert all(s.done for s in stories), fail("unfinished stories")
    ids = [s.esc_id for s in stories]
    assert len(set(ids)) == len(stories), fail(f"two incidents became one escalation: {ids}")

    # Pages and retros: exact.
    retros = Counter(label for issue in gitlab.issues for label in issue.labels
                     if label.startswith("tier2gate-retro-"))
    pages = {s.esc_id: s.pages(pd) for s in stories}
    wrong = {esc: len(found) for esc, found in pages.items() if len(found) != 1}
    assert not wrong, fail(f"escalations without exactly one page: {wrong}")
    for s in stories:
        assert pages[s.esc_id][0]["incident_key"] == s.page_key, fail(f"{pages[s.esc_id]}")
        assert retros[f"tier2gate-retro-{s.esc_id}"] == 1, fail(f"{s.esc_id}: retros {retros}")
    assert len(pd.pages) == len(stories), fail(f"stray pages: {len(pd.pages)}")
    assert len(gitlab.issues) == len(stories), fail(f"stray issues: {len(gitlab.issues)}")

    # The store agrees: one approval request, one decision, one page, one retro each.
    events = Counter((esc, event) for esc, event in daemon.query(
        "SELECT escalation_id, event FROM timeline"))
    states = dict(daemon.query("SELECT id, state FROM escalations"))
    for s in stories:
        for event in ("received", "approved", "paged", "retro_opened"):
            assert events[(s.esc_id, event)] == 1, fail(
                f"{s.esc_id}: {events[(s.esc_id, event)]} x {event}")
        assert states[s.esc_id] == "closed", fail(f"{s.esc_id} is {states[s.esc_id]}")
    assert len(states) == len(stories), fail(f"{len(states)} escalations for {len(stories)}")

    # No acknowledged delivery lost; every one processed.
    stored = {(source, delivery_id): state for source, delivery_id, state in daemon.query(
        "SELECT source, delivery_id, state FROM deliveries")}
    lost = courier.acknowledged - stored.keys()
    assert not lost, fail(f"acknowledged but not in the store: {sorted(lost)}")
    unprocessed = {k: v for k, v in stored.items() if v not in ("processed", "ignored")}
    assert not unprocessed, fail(f"deliveries never processed: {unprocessed}")
    assert len(courier.acknowledged) == 3 * len(stories)

    # No job died; nothing due was left behind (future timers may wait).
    dead = daemon.query("SELECT kind, key, last_error FROM jobs WHERE state = 'dead'")
    assert not dead, fail(f"dead-lettered: {dead}")
    left = busy(daemon, stopped_at)
    assert not left, fail(f"jobs left behind: {left}")

    # The page killed in flight: PagerDuty got it twice, refused the second (duplicate key)
    # and the restarted daemon adopted the open incident instead of failing or paging again.
    aimed = chaos.page_in_flight
    assert aimed, fail("the page-in-flight kill never happened")
    story: Story = aimed["story"]
    posts = [r for r in pd.requests if r.method == "POST" and r.path == "/incidents"
             and f"({story.reference})" in r.json()["incident"]["title"]]
    lookups = [r for r in pd.requests[aimed["requests"]:] if r.method == "GET"
               and r.path == "/incidents" and ("incident_key", story.page_key) in r.query]
    assert len(posts) >= 2 and lookups, fail(f"re-sent page: {len(posts)} POSTs, "
                                             f"{len(lookups)} lookups")
    [page] = story.pages(pd)
    paged = daemon.query("SELECT details FROM timeline WHERE escalation_id = ? AND event = "
                         "'paged'", story.esc_id)
    assert json.loads(paged[0][0])["incident_id"] == page["id"], fail(f"paged: {paged}")
    assert "jobs.recovered_after_crash" in daemon.log_events(), fail("no recovery logged")

    # chat.postMessage has no idempotency key: a retried approval request or thread note first
    # looks for its own earlier post (message metadata), so each is posted once.
    # A click on a copy the store never recorded adopts that copy as the approval message.
    posts_per_esc = approval_posts(slack)
    duplicates = {esc: n for esc, n in posts_per_esc.items() if n > 1}
    for s in stories:
        assert posts_per_esc[s.esc_id] >= 1, fail(f"{s.esc_id}: no approval message")
        [(channel, ts)] = daemon.query(
            "SELECT json_extract(data, '$.gate.approval.channel'), "
            "json_extract(data, '$.gate.approval.message_id') FROM escalations WHERE id = ?",
            s.esc_id)
        requested = events[(s.esc_id, "approval_requested")]
        assert ts is not None, fail(f"{s.esc_id}: approved, but no approval message recorded")
        assert requested == 1, fail(f"{s.esc_id}: {requested} x approval_requested")
        message = slack.messages[(channel, ts)]
        assert message.updates >= 1 and "Approved by" in str(message.blocks), fail(
            f"{s.esc_id}: the recorded approval message was not updated with the decision")
    assert not duplicates, fail(f"approval requests posted more than once: {duplicates}")
    notes = {s.esc_id: paged_notes(slack, s.pages(pd)) for s in stories}
    print(f"crash-points slack duplicates: approval messages posted twice or more for "
          f"{len(duplicates)}/{len(stories)} escalations {duplicates}; 'Paged Tier 2' notes "
          f"duplicated for {sum(1 for n in notes.values() if n > 1)}")
    repeated = {esc: n for esc, n in notes.items() if n > 1}
    assert not repeated, fail(f"'Paged Tier 2' posted more than once: {repeated}")


def slow_approval_answers(switch: dict[str, bool], delay_s: float) -> Any:
    """Slack posts the approval request at once but answers it late while `switch["on"]`."""

    @web.middleware
    async def late(request: web.Request,
                   handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                   ) -> web.StreamResponse:
        response = await handler(request)
        if switch["on"] and request.match_info.get("method") == "chat.postMessage":
            args = (await request.json() if request.content_type == "application/json"
                    else dict(await request.post()))
            if "thread_ts" not in args:
                await asyncio.sleep(delay_s)
        return response

    return late


@pytest.mark.timeout(120)
async def test_a_click_processed_before_a_crash_still_gets_its_approval_message_recorded(
    tmp_path: Path,
) -> None:
    switch = {"on": True}

    def prepare(found: Vendors) -> None:
        found.slack.app.middlewares.append(slow_approval_answers(switch, 5.0))

    async with vendors(tmp_path, prepare=prepare) as world, aiohttp.ClientSession() as session:
        daemon = LiveDaemon(tmp_path, {**world.env(), **fast_jobs_env(),
                                       "TIER2GATE_JOBS__MAX_ATTEMPTS": "5"})
        chaos = Chaos(daemon, world, Courier(session, daemon), random.Random(SEED))
        story = Story(0)
        try:
            await daemon.start()
            created = story.body(closed=False)
            await chaos.courier.deliver("/webhooks/incident-io", created,
                                        lambda: incident_io_headers(created, "msg_c"),
                                        ("incident_io", "msg_c"), chaos.pause)
            story.esc_id, ts = await chaos.until(
                story, "approval message", lambda: approval_message(world.slack, story.reference))
            click = slack_form(button(story.esc_id, SMOC, APPROVE_ACTION, ts, "1.0001"))
            await chaos.courier.deliver("/slack/interactions", click, lambda: slack_headers(click),
                                        ("slack", slack_delivery_id(click)), chaos.pause)
            await chaos.until(story, "approved", lambda: chaos.recorded(story.esc_id, "approved"))
            await daemon.kill()  # Slack has still not answered the post
            switch["on"] = False
            await daemon.start()
            await chaos.until(story, "paged", lambda: chaos.recorded(story.esc_id, "paged"))
            for _ in range(100):  # up to 5 s for the message to be recorded and the note posted
                if chaos.recorded(story.esc_id, "approval_requested") and paged_notes(
                        world.slack, story.pages(world.pagerduty)):
                    break
                await asyncio.sleep(0.05)
            [(channel, message_ts)] = daemon.query(
                "SELECT json_extract(data, '$.gate.approval.channel'), "
                "json_extract(data, '$.gate.approval.message_id') FROM escalations")
            assert message_ts is not None, "the approval message was never recorded"
            assert chaos.recorded(story.esc_id, "approval_requested")
            assert "Approved by" in str(world.slack.messages[(channel, message_ts)].blocks)
            assert paged_notes(world.slack, story.pages(world.pagerduty)) == 1
            assert not daemon.query("SELECT key FROM jobs WHERE state = 'dead'")
        finally:
            await daemon.ensure_stopped()
