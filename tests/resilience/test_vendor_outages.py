"""Each vendor fails every way it can (500, reset, a hang past our timeout, a late answer to a
create that did happen, 429 with Retry-After) on the effect that matters most to it; the flow
still ends with exactly one approval message, one page and one retro, and every retry waited as
long as the vendor asked. In-process (tests/harness.py): the ManualClock lets backoff elapse.

The last two tests are the slow-answer races this suite found (a click, or the source resolving,
processed while the vendor's answer to our post or page was still on its way).

The clients' 10 s timeouts are shortened to HANG_TIMEOUT_S so that a hang costs a second, not
ten; if that patch stopped applying, the hang would end as the fault's 500 and the "no answer in
time" expectation below would fail rather than pass quietly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.typedefs import Middleware

import daemon.integrations.pagerduty as pagerduty_client
import daemon.integrations.slack as slack_client
import daemon.integrations.tracker as tracker_clients
from daemon.settings import ApprovalSettings
from daemon.sources.slack_ids import APPROVE_ACTION
from daemon.standins.faults import Fault, FaultPlan
from daemon.standins.pagerduty import FakePagerDuty
from daemon.standins.slack import FakeSlack
from daemon.standins.trackers import FakeGitLab
from daemon.store import Job, JobState
from tests.harness import FAST_JOBS, running
from tests.world import (
    BACKUP,
    CHANNEL,
    PD_TOKEN,
    SLACK_TOKEN,
    SMOC,
    SMOC_EMAIL,
    SMOC_SCHEDULE,
    TRACKER_TOKEN,
    World,
    button,
    incident,
    settings_for,
    world,
)

HANG_TIMEOUT_S = 0.5
HUNG = "no answer in time"  # how every adapter words a call that hung past its timeout
HANG_S = 1.5  # the fake answers after this: well past our timeout


@pytest.fixture
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slack_client.Client.__init__, "__defaults__",
                        (None, HANG_TIMEOUT_S, None))
    keyword_defaults = pagerduty_client.Client.__init__.__kwdefaults__
    assert keyword_defaults is not None  # timeout_s is keyword-only
    monkeypatch.setitem(keyword_defaults, "timeout_s", HANG_TIMEOUT_S)
    monkeypatch.setattr(tracker_clients, "TIMEOUT_S", HANG_TIMEOUT_S)


@asynccontextmanager
async def outage_world(tmp_path: Path, *, slack_middleware: Middleware | None = None
                       ) -> AsyncIterator[World]:
    """tests/world.py's world with a static SMOC, so that approval requests make no lookups:
    the faults queued for Slack and PagerDuty hit the posts and the page, nothing else."""
    async with AsyncExitStack() as stack:
        slack = FakeSlack(token=SLACK_TOKEN, users_by_email={SMOC_EMAIL: SMOC})
        if slack_middleware is not None:
            slack.app.middlewares.append(slack_middleware)
        await stack.enter_async_context(slack)
        pagerduty = await stack.enter_async_context(
            FakePagerDuty(token=PD_TOKEN, ca_file=tmp_path / "pd-ca.pem"))
        pagerduty.set_oncall(SMOC_SCHEDULE, "PSMOCUSER", SMOC_EMAIL)
        tracker = FakeGitLab(TRACKER_TOKEN, "ops/retros")
        await tracker.start()
        stack.push_async_callback(tracker.close)
        settings = settings_for(slack, pagerduty, tracker, "gitlab").model_copy(update={
            "approval": ApprovalSettings(backup_user_ids=[BACKUP], smoc_user_id=SMOC)})
        daemon = await stack.enter_async_context(running(tmp_path, settings))
        yield World(daemon, slack, pagerduty, tracker)


async def queued(w: World, kind: str) -> Job:
    [job] = [j for j in await w.daemon.store.list_jobs(JobState.QUEUED) if j.kind == kind]
    return job


async def failed_attempt(w: World, kind: str, expect: str | tuple[str, ...], attempts: int
                         ) -> Job:
    """Run what is due; the `kind` job must have failed once more, with (one of) `expect` in
    its error."""
    await w.daemon.settle()
    job = await queued(w, kind)
    assert job.attempts == attempts, (job.attempts, job.last_error)
    wanted = (expect,) if isinstance(expect, str) else expect
    assert any(e in job.last_error.lower() for e in wanted), job.last_error
    return job


async def honours_retry_after(w: World, kind: str, retry_after_s: float, attempts: int,
                              vendor_requests: Callable[[], int],
                              done: Callable[[], Awaitable[bool]]) -> None:
    """A 429 with Retry-After: the job waits exactly that long (it is a floor over the jitter),
    the vendor hears nothing before, and the effect happens right after."""
    w.daemon.clock.advance(1.0)
    job = await failed_attempt(w, kind, "429", attempts)
    assert job.run_at == pytest.approx(w.daemon.clock.now() + retry_after_s, abs=1e-3)
    heard = vendor_requests()
    w.daemon.clock.advance(retry_after_s - 1.0)
    await w.daemon.settle()
    assert vendor_requests() == heard, "retried before Retry-After elapsed"
    assert not await done()
    w.daemon.clock.advance(1.0)
    await w.daemon.settle()
    assert await done()


async def ride_out(w: World, kind: str, first_attempt: int) -> int:
    """The three plain faults (`plain_faults`) one after the other, each rescheduled by the
    ordinary backoff (FAST_JOBS: at most backoff_max_s away); the next attempt number."""
    attempt = first_attempt
    reset = ("disconnect", "connection", "reset")  # each client library words it its own way
    for expect in ("500", reset, HUNG):
        job = await failed_attempt(w, kind, expect, attempt)
        assert 0 < job.run_at - w.daemon.clock.now() <= FAST_JOBS.backoff_max_s
        attempt += 1
        w.daemon.clock.advance(1.0)
    return attempt


def plain_faults(plan: FaultPlan) -> None:
    plan.add(Fault(status=500))
    plan.add(Fault(reset=True))
    plan.add(Fault(delay_s=HANG_S))


@pytest.mark.usefixtures("short_timeouts")
@pytest.mark.timeout(60)
async def test_every_vendor_failing_every_way_still_gets_each_effect_exactly_once(
    tmp_path: Path,
) -> None:
    async with outage_world(tmp_path) as w:
        slack, pd, gitlab = w.slack, w.pagerduty, w.tracker
        assert isinstance(gitlab, FakeGitLab)

        # Slack: the approval request. Attempt 1 posts and gets the 500; every later attempt
        # first looks for its own earlier post (conversations.history, a GET that aiohttp
        # resends once after a reset), so the reset and the hang may land in one attempt.
        plain_faults(slack.faults)
        slack.faults.add(Fault(status=429, retry_after_s=30))
        assert (await w.daemon.incident_io(incident())).status == 202
        errors: list[str] = []
        while "429" not in "".join(errors[-1:]):
            assert len(errors) < 4, errors
            await w.daemon.settle()
            job = await queued(w, "request_approval")
            errors.append(job.last_error.lower())
            if "429" not in errors[-1]:
                assert 0 < job.run_at - w.daemon.clock.now() <= FAST_JOBS.backoff_max_s
                w.daemon.clock.advance(1.0)
        assert "500" in errors[0]
        assert HUNG in "".join(errors[1:])
        assert job.run_at == pytest.approx(w.daemon.clock.now() + 30, abs=1e-3)
        heard = slack.faults.injected + len(slack.calls)
        w.daemon.clock.advance(29.0)
        await w.daemon.settle()
        assert slack.faults.injected + len(slack.calls) == heard, "retried before Retry-After"
        assert w.approval_posts() == []
        w.daemon.clock.advance(1.0)
        await w.daemon.settle()
        assert len(w.approval_posts()) == 1
        [row] = await w.daemon.escalations()
        [(_channel, ts)] = [k for k, m in slack.messages.items()
                            if k[0] == CHANNEL and not m.thread_ts]

        # PagerDuty: the page. After the plain faults, one create happens but answers too late;
        # then a 429; the next attempt gets the duplicate-key 400 and adopts the open incident.
        plain_faults(pd.faults)
        assert (await w.daemon.slack_interaction(
            button(row.id, SMOC, APPROVE_ACTION, ts, "1.0001"))).status == 200
        attempt = await ride_out(w, "page", 1)
        pd.answer_delay_s = HANG_S
        await failed_attempt(w, "page", HUNG, attempt)
        assert len(pd.pages) == 1  # it did happen: PagerDuty has it, we do not know yet
        pd.answer_delay_s = 0.0
        pd.faults.add(Fault(status=429, retry_after_s=45))

        async def paged() -> bool:
            return "paged" in await w.daemon.events(row.id)

        await honours_retry_after(w, "page", 45, attempt + 1, lambda: len(pd.requests), paged)
        assert len(pd.pages) == 1, [p["incident_key"] for p in pd.pages]
        [page] = pd.pages
        posts = [r for r in pd.requests if r.method == "POST" and r.path == "/incidents"]
        assert len(posts) == 6  # 500, reset, hang, late answer, 429, duplicate-key 400
        assert any(r.method == "GET" and ("incident_key", page["incident_key"]) in r.query
                   for r in pd.requests)
        paged_event = [e for e in await w.daemon.store.timeline(row.id) if e.event == "paged"]
        assert paged_event[0].details["incident_id"] == page["id"]

        # GitLab: the retro. A create that happened but answered late is found by its marker.
        plain_faults(gitlab.plan)
        closed = incident(category="closed", updated_at="2026-11-21T03:30:00Z",
                          event="public_incident.incident_status_updated_v2")
        assert (await w.daemon.incident_io(closed)).status == 202
        attempt = await ride_out(w, "retro", 1)
        gitlab.answer_delay_s = HANG_S
        await failed_attempt(w, "retro", HUNG, attempt)
        assert len(gitlab.issues) == 1
        gitlab.answer_delay_s = 0.0
        gitlab.plan.add(Fault(status=429, retry_after_s=60))

        async def retro_opened() -> bool:
            return "retro_opened" in await w.daemon.events(row.id)

        await honours_retry_after(w, "retro", 60, attempt + 1, lambda: len(gitlab.requests),
                                  retro_opened)
        assert len(gitlab.calls("POST", "/issues")) == 1  # found by marker, not created again

        # Exactly once, everywhere; nothing dead; every fault was consumed.
        w.daemon.clock.advance(1.0)
        await w.daemon.settle()
        assert len(w.approval_posts()) == 1
        assert len(pd.pages) == 1
        assert len(gitlab.issues) == 1
        events = await w.daemon.events(row.id)
        for event in ("approval_requested", "approved", "paged", "retro_opened"):
            assert events.count(event) == 1, events
        assert await w.daemon.dead_jobs() == []
        assert (slack.faults.pending, pd.faults.pending, gitlab.plan.pending) == (0, 0, 0)
        assert (slack.faults.injected, pd.faults.injected, gitlab.plan.injected) == (4, 4, 4)


def slow_approval_posts(delay_s: float) -> Middleware:
    """Slack posts the approval message at once but answers `delay_s` later."""

    @web.middleware
    async def late(request: web.Request,
                   handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                   ) -> web.StreamResponse:
        response = await handler(request)
        if request.match_info.get("method") == "chat.postMessage":
            args = (await request.json() if request.content_type == "application/json"
                    else dict(await request.post()))
            if "thread_ts" not in args:
                await asyncio.sleep(delay_s)
        return response

    return late


async def until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition never met"
        await asyncio.sleep(0.01)


async def test_a_click_before_slack_answered_the_post_still_records_the_approval_message(
    tmp_path: Path,
) -> None:
    async with outage_world(tmp_path, slack_middleware=slow_approval_posts(1.0)) as w:
        assert (await w.daemon.incident_io(incident())).status == 202
        await until(lambda: bool(w.slack.messages))  # the SMOC sees it; we wait for Slack
        [((channel, ts), _message)] = w.slack.messages.items()
        [row] = await w.daemon.escalations()
        await w.daemon.slack_interaction(button(row.id, SMOC, APPROVE_ACTION, ts, "1.0001"))
        for _ in range(3):  # notes waiting for the message to be recorded retry a bit later
            await w.daemon.settle()
            w.daemon.clock.advance(5.0)
        assert len(w.pagerduty.pages) == 1
        events = await w.daemon.events(row.id)
        assert "approval_requested" in events, events
        assert "Approved by" in str(w.slack.messages[(channel, ts)].blocks)
        assert any(m.text.startswith("Paged Tier 2") for m in w.slack.thread(channel, ts))


async def test_closing_the_incident_while_the_page_is_in_flight_still_opens_the_retro(
    tmp_path: Path,
) -> None:
    async with outage_world(tmp_path) as w:
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        [(_channel, ts)] = list(w.slack.messages)
        w.pagerduty.answer_delay_s = 1.0
        await w.daemon.slack_interaction(button(row.id, SMOC, APPROVE_ACTION, ts, "1.0001"))
        await until(lambda: bool(w.pagerduty.pages))  # Tier 2 is being paged right now
        closed = incident(category="closed", updated_at="2026-11-21T03:30:00Z",
                          event="public_incident.incident_status_updated_v2")
        assert (await w.daemon.incident_io(closed)).status == 202
        await w.daemon.settle()
        w.daemon.clock.advance(1.0)
        await w.daemon.settle()
        events = await w.daemon.events(row.id)
        assert "paged" in events, events
        assert len(w.tracker.issues) == 1, events


async def test_the_smoc_can_approve_after_a_slack_blip_during_the_smoc_lookup(tmp_path: Path
                                                                              ) -> None:
    async with world(tmp_path) as w:  # SMOC from the PagerDuty schedule, email -> Slack user
        w.slack.faults.add(Fault(status=500))  # hits users.lookupByEmail
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        [(_channel, ts)] = [k for k, m in w.slack.messages.items() if not m.thread_ts]
        w.daemon.clock.advance(60.0)  # the SMOC reads the message: Slack is long fine again
        await w.daemon.slack_interaction(button(row.id, SMOC, APPROVE_ACTION, ts, "1.0001"))
        await w.daemon.settle()
        events = await w.daemon.events(row.id)
        assert "approved" in events, (events, [c.args.get("text") for c in w.slack.ephemerals])
        assert len(w.pagerduty.pages) == 1
