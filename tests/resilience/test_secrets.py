"""Recognisable secrets never leave the daemon: not in a log line, not in any HTTP answer, not in
`check-config`, `report --format json` or the dashboard.

One module fixture runs the whole flow against a real `tier2gate serve` at DEBUG, with vendors
that echo every secret back in their error bodies (a 500 from Slack and GitLab, a 403 from
PagerDuty that dead-letters a second escalation's page), then hits every endpoint with bad
input, stops the daemon and runs the CLI commands. The tests only read what it collected.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest

from daemon.integrations.failures import MAX_DETAIL_CHARS
from daemon.sources.slack_ids import APPROVE_ACTION
from daemon.standins.faults import Fault
from daemon.store import JobState
from tests.harness import PAYLOADS
from tests.resilience.live import (
    ALL_SECRETS,
    Courier,
    LiveDaemon,
    fast_jobs_env,
    incident_io_headers,
    pagerduty_headers,
    slack_delivery_id,
    slack_form,
    slack_headers,
    vendors,
)
from tests.world import (
    CHANNEL,
    PD_TOKEN,
    SLACK_TOKEN,
    SMOC,
    TRACKER_TOKEN,
    button,
    incident,
    page_event,
    stamp,
    world,
)

pytestmark = pytest.mark.slow

# Every secret, plus the recognisable core of each (a fragment is a leak too; the incident.io
# secret's key is base64 of "RECOGNISABLE-incident-io-secret").
NEEDLES = (*ALL_SECRETS, "RECOGNISABLE", "UkVDT0dOSVNBQkxF")


def echo(*secrets: str) -> str:
    """An error body that quotes secrets back (PagerDuty's and GitLab's shapes at once)."""
    said = "you sent " + " ".join(secrets)
    return json.dumps({"error": {"code": 2006, "message": said}, "message": said})


# The flow's echoes fit in the clients' error-detail limits; a secret that those limits would
# cut in half is covered by the last test.
ECHO_ALL = echo(*ALL_SECRETS)
ECHO_TRACKER = echo(TRACKER_TOKEN, SLACK_TOKEN, PD_TOKEN)
assert len(json.loads(ECHO_ALL)["message"]) < MAX_DETAIL_CHARS
assert len(json.loads(ECHO_TRACKER)["message"]) < MAX_DETAIL_CHARS


@dataclass
class Answer:
    what: str
    status: int
    text: str


@dataclass
class Collected:
    log: str = ""
    answers: list[Answer] = field(default_factory=list)
    check_config: list[tuple[str, int, str]] = field(default_factory=list)
    report: tuple[int, str] | None = None
    dashboard: dict[str, Answer] = field(default_factory=dict)
    dead: list[str] = field(default_factory=list)


def leaks(text: str) -> list[str]:
    return [needle for needle in NEEDLES if needle in text]


def cli(folder: Path, daemon: LiveDaemon, *args: str, **env: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "daemon", *args], cwd=folder,
                          env={**daemon.env, **env}, capture_output=True, timeout=60, check=False)
    return done.returncode, done.stdout.decode(errors="replace") + done.stderr.decode(
        errors="replace")


async def until(check: Callable[[], bool], what: str, daemon: LiveDaemon,
                timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened:\n{daemon.log_tail()}")
        await asyncio.sleep(0.02)


async def collect(folder: Path) -> Collected:
    found = Collected()
    async with vendors(folder) as world, aiohttp.ClientSession() as session:
        daemon = LiveDaemon(folder, {**world.env(), **fast_jobs_env(),
                                     "TIER2GATE_LOG__LEVEL": "DEBUG",
                                     "TIER2GATE_HTTP__MAX_BODY_BYTES": "65536"})
        courier = Courier(session, daemon)

        async def pause() -> None:
            await asyncio.sleep(0.1)

        async def post(path: str, body: bytes, headers: dict[str, str], key: tuple[str, str]
                       ) -> None:
            await courier.deliver(path, body, lambda: headers, key, pause)

        def recorded(esc_id: str, event: str) -> bool:
            return bool(daemon.query("SELECT 1 FROM timeline WHERE escalation_id = ? AND "
                                     "event = ?", esc_id, event))

        async def approval(incident_id: str) -> tuple[str, str]:
            # `serve` runs on the real clock: the incident opened a minute ago, whatever the date
            body = json.dumps(incident(incident_id=incident_id,
                                       opened_at=time.time() - 60)).encode()
            await post("/webhooks/incident-io", body, incident_io_headers(body, incident_id),
                       ("incident_io", incident_id))
            rows: list[tuple[str]] = []

            def escalation() -> bool:
                rows[:] = daemon.query("SELECT id FROM escalations WHERE external_id = ? AND "
                                       "json_extract(data, '$.gate.approval.message_id') "
                                       "IS NOT NULL",
                                       incident_id)
                return bool(rows)

            await until(escalation, f"approval request for {incident_id}", daemon)
            [(esc_id,)] = rows
            [(ts,)] = daemon.query("SELECT json_extract(data, '$.gate.approval.message_id') FROM "
                                   "escalations WHERE id = ?", esc_id)
            return esc_id, ts

        async def approve(esc_id: str, ts: str) -> None:
            click = slack_form(button(esc_id, SMOC, APPROVE_ACTION, ts, f"{esc_id}.1"))
            await post("/slack/interactions", click, slack_headers(click),
                       ("slack", slack_delivery_id(click)))

        try:
            await daemon.start()
            # A: the whole flow, each vendor once echoing every secret in a 500.
            # (Slack's echo comes after the approval request: a failed SMOC lookup would leave
            # the SMOC unable to approve for approval.smoc_cache_s, see the report.)
            esc_a, ts_a = await approval("01SECRETA")
            world.slack.faults.add(Fault(status=500, body=ECHO_ALL))
            world.pagerduty.faults.add(Fault(status=500, body=ECHO_ALL))
            await approve(esc_a, ts_a)
            await until(lambda: recorded(esc_a, "paged"), "page A", daemon)
            [page] = world.pagerduty.pages
            acknowledged = page_event("incident.acknowledged", page["incident_key"], page["id"],
                                      event_id="ev-ack")
            # A real process judges age by the real clock: an older event would be stale.
            acknowledged["event"]["occurred_at"] = stamp(time.time())
            ack = json.dumps(acknowledged).encode()
            await post("/webhooks/pagerduty", ack, pagerduty_headers(ack, "wh-ack"),
                       ("pagerduty", "wh-ack"))
            world.gitlab.plan.add(Fault(status=500, body=ECHO_TRACKER))
            closed = json.dumps(incident(
                category="closed", opened_at=time.time() - 120, updated_at=stamp(time.time()),
                incident_id="01SECRETA",
                event="public_incident.incident_status_updated_v2")).encode()
            await post("/webhooks/incident-io", closed, incident_io_headers(closed, "closed-a"),
                       ("incident_io", "closed-a"))
            await until(lambda: recorded(esc_a, "retro_opened"), "retro A", daemon)
            await until(lambda: recorded(esc_a, "acknowledged"), "acknowledgement A", daemon)

            # B: PagerDuty refuses the page with a 403 that echoes the secrets: dead letter.
            esc_b, ts_b = await approval("01SECRETB")
            world.pagerduty.faults.add(Fault(status=403, body=ECHO_ALL))
            await approve(esc_b, ts_b)
            await until(lambda: recorded(esc_b, "job.dead_lettered"), "dead letter B", daemon)
            found.dead = [row[0] for row in daemon.query(
                "SELECT last_error FROM jobs WHERE state = 'dead'")]

            # Every endpoint, with bad input and good.
            found.answers = await probe(session, daemon)
            for path in ("/", "/api/escalations", "/api/escalations?since=7d",
                         "/?since=nonsense"):
                async with session.get(daemon.admin_url + path) as response:
                    found.dashboard[path] = Answer(f"GET {path}", response.status,
                                                   await response.text())
            assert await daemon.stop() == 0, daemon.log_tail()
        finally:
            await daemon.ensure_stopped()

    found.check_config.append(("valid", *cli(folder, daemon, "check-config")))
    found.check_config.append(("invalid", *cli(folder, daemon, "check-config",
                                               TIER2GATE_JOBS__WORKERS="many",
                                               TIER2GATE_SLACK__API_URL="")))
    found.report = cli(folder, daemon, "report", "--format", "json", "--since", "3650d")
    found.log = daemon.log_text()
    return found


async def probe(session: aiohttp.ClientSession, daemon: LiveDaemon) -> list[Answer]:
    """Bad (and a few good) requests to every route; every answer as the client saw it."""
    json_type = {"Content-Type": "application/json"}
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    sample = (PAYLOADS / "pagerduty" / "zulip_triggered_v3.json").read_bytes()
    command = urlencode({"command": "/tier2", "text": "checkout down", "user_id": SMOC,
                         "channel_id": CHANNEL, "trigger_id": "trig-1", "team_id": "T1",
                         "response_url": "https://hooks.slack.com/commands/T1/1/x"}).encode()
    cases: list[tuple[str, str, dict[str, str], bytes]] = []
    for path, good_type in (("/webhooks/pagerduty", json_type),
                            ("/webhooks/incident-io", json_type),
                            ("/slack/interactions", form_type), ("/slack/commands", form_type)):
        cases += [
            ("POST", path, good_type, sample),  # unsigned
            ("POST", path, {**good_type, "X-PagerDuty-Signature": "v1=00",
                            "webhook-id": "m", "webhook-timestamp": "1",
                            "webhook-signature": "v1,AAAA", "X-Slack-Signature": "v0=00",
                            "X-Slack-Request-Timestamp": str(int(time.time()))}, sample),
            ("POST", path, {"Content-Type": "text/plain"}, sample),
            ("POST", path, good_type, b"x" * 100_000),
            ("GET", path, {}, b""),
        ]
    signed = [
        ("POST", "/webhooks/pagerduty", pagerduty_headers(b"{not json", "wh-bad"), b"{not json"),
        ("POST", "/webhooks/pagerduty", pagerduty_headers(b'{"event": 1}', "wh-odd"),
         b'{"event": 1}'),
        ("POST", "/webhooks/incident-io", incident_io_headers(b"[1, 2", "m-bad"), b"[1, 2"),
        ("POST", "/webhooks/incident-io", incident_io_headers(b'{"event_type": 3}', "m-odd"),
         b'{"event_type": 3}'),
        ("POST", "/slack/interactions", slack_headers(b"payload=%7Bbroken"),
         b"payload=%7Bbroken"),
        ("POST", "/slack/commands", slack_headers(b"text=no+command"), b"text=no+command"),
        ("POST", "/slack/commands", slack_headers(command), command),
    ]
    cases += signed
    cases += [("GET", path, {}, b"") for path in ("/healthz", "/readyz", "/metrics", "/nowhere")]
    answers = []
    for method, path, headers, body in cases:
        base = daemon.admin_url if path == "/metrics" else daemon.url
        async with session.request(method, base + path, headers=headers,
                                   data=body or None) as response:
            text = await response.text(errors="replace")
            answers.append(Answer(f"{method} {path} {sorted(headers)}", response.status,
                                  f"{dict(response.headers)}\n{text}"))
    return answers


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Collected:
    return asyncio.run(collect(tmp_path_factory.mktemp("secrets")))


def test_no_secret_in_any_log_line(collected: Collected) -> None:
    lines = collected.log.splitlines()
    assert len(lines) > 30
    leaked = {n: line for line in lines for n in leaks(line)}
    assert not leaked, leaked
    # The echoes did reach the log, scrubbed: this is not a quiet log that proves nothing.
    assert "job.dead_lettered" in collected.log
    assert "PagerDuty create Tier 2 incident: HTTP 403" in collected.log
    assert "GitLab find issue by marker: HTTP 500" in collected.log


def test_no_secret_in_any_http_answer(collected: Collected) -> None:
    statuses = {a.status for a in collected.answers}
    assert {400, 401, 405, 413, 415, 404, 200} <= statuses, statuses
    leaked = {a.what: leaks(a.text) for a in collected.answers if leaks(a.text)}
    assert not leaked, leaked


def test_no_secret_in_the_dead_letter_the_operator_reads(collected: Collected) -> None:
    assert len(collected.dead) == 1
    [error] = collected.dead
    assert "403" in error and not leaks(error), error


def test_no_secret_in_check_config(collected: Collected) -> None:
    [(_, valid_code, valid), (_, invalid_code, invalid)] = collected.check_config
    assert valid_code == 0, valid
    assert "**********" in valid  # the secrets were configured, and masked
    assert invalid_code == 1 and "TIER2GATE_JOBS__WORKERS" in invalid, invalid
    assert not leaks(valid), leaks(valid)
    assert not leaks(invalid), leaks(invalid)


def test_no_secret_in_report_json(collected: Collected) -> None:
    assert collected.report is not None
    code, text = collected.report
    if code == 2 and "invalid choice" in text:
        pytest.skip("`tier2gate report` is not wired yet")
    assert code == 0, text
    report = json.loads(text)
    assert report  # a real report of the two escalations, not an empty answer
    assert "2" in json.dumps(report)
    assert not leaks(text), leaks(text)


@pytest.mark.parametrize("path", ["/", "/api/escalations", "/api/escalations?since=7d",
                                  "/?since=nonsense"])
def test_no_secret_on_the_dashboard(collected: Collected, path: str) -> None:
    answer = collected.dashboard[path]
    assert answer.status < 500, answer
    assert not leaks(answer.text), leaks(answer.text)
    if answer.status == 200 and path.startswith("/api"):
        assert len(json.loads(answer.text)["escalations"]) == 2


@pytest.mark.parametrize("vendor", ["gitlab", "pagerduty"])
async def test_a_secret_cut_in_half_by_an_error_length_limit_is_still_masked(
    tmp_path: Path, vendor: str,
) -> None:
    async with world(tmp_path) as w:
        assert (await w.daemon.incident_io(incident())).status == 202
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        [(_channel, ts)] = [k for k, m in w.slack.messages.items() if not m.thread_ts]
        if vendor == "pagerduty":  # keep all but the last 3 characters of the token
            cut = "x" * (MAX_DETAIL_CHARS + 2 - len(PD_TOKEN))
            w.pagerduty.faults.add(Fault(status=403, body=json.dumps(
                {"error": {"code": 2006, "message": f"{cut} {PD_TOKEN}"}})))
        await w.daemon.slack_interaction(button(row.id, SMOC, APPROVE_ACTION, ts, "1.1"))
        await w.daemon.settle()
        if vendor == "gitlab":
            cut = "x" * (MAX_DETAIL_CHARS + 2 - len(TRACKER_TOKEN))
            w.tracker.plan.add(Fault(status=500, body=json.dumps(
                {"message": f"{cut} {TRACKER_TOKEN}"})))
            await w.daemon.incident_io(incident(category="closed",
                                                updated_at="2026-11-21T03:30:00Z"))
            await w.daemon.settle()
        state = JobState.DEAD if vendor == "pagerduty" else JobState.QUEUED
        [job] = [j for j in await w.daemon.store.list_jobs(state)
                 if j.kind == ("page" if vendor == "pagerduty" else "retro")]
        assert "x" * 20 in job.last_error  # the vendor's text did reach the error
        assert not leaks(job.last_error), job.last_error
