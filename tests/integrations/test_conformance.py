"""The conformance kit: every adapter, through its real client against its HTTP stand-in, is
held to the same failure vocabulary (daemon/integrations/failures.py). Adding an integration
means adding one subject here and passing every check.

Each check injects one outage on the next request (`FaultPlan`) and asserts the class, the
vendor's wait (Retry-After as seconds and as an HTTP-date, measured against the injected
clock, never today's date), and that the configured secret appears nowhere in the error or its
chain, even when the vendor echoes it back.
"""

from __future__ import annotations

import json
import ssl
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path

import pytest
import trustme

from daemon.clock import ManualClock, to_datetime
from daemon.integrations import incident_io, pagerduty, slack
from daemon.integrations.base import IssueDraft, MessageRef, PageRequest
from daemon.integrations.desk import jsm, zendesk
from daemon.integrations.failures import Permanent, Retry
from daemon.integrations.tracker import github, gitlab, jira
from daemon.standins.desks import FakeJsm, FakeZendesk
from daemon.standins.faults import Fault, FaultPlan
from daemon.standins.incident_io import FakeIncidentIo
from daemon.standins.pagerduty import FakePagerDuty
from daemon.standins.slack import FakeSlack
from daemon.standins.trackers import FakeGitHub, FakeGitLab, FakeJira
from tests.integrations.test_slack import VIEW
from tests.support import START

SLACK_TOKEN = "xoxb-CONFORM-slack-7d1e"
PD_TOKEN = "u+CONFORMpdToken9x"
ROUTING_KEY = "R0utCONFORMkeyW7vq2Lm4Np8Rs6Tt0"
INC_TOKEN = "inc_CONFORM_T0ken7p"
GITLAB_TOKEN = "glpat-CONFORM-gl-4f2a"
GITHUB_TOKEN = "ghp_CONFORMgh9c1d77"
JIRA_TOKEN = "ATATT3xCONFORMjr77"
JIRA_EMAIL = "bot@acme.example"
TIMEOUT_S = 0.5
DRAFT = IssueDraft(title="Retro: checkout down", body="## What happened\nIt broke.\n",
                   marker="tier2gate-retro-esc-conform", labels=("retro",))
INCIDENT = {"id": "01CONFORM", "name": "Checkout down", "reference": "INC-1"}


@dataclass
class Subject:
    """One adapter operation wired to its stand-in: what the kit needs and nothing else."""

    faults: FaultPlan
    secret: str  # what must never appear in an error
    call: Callable[[], Awaitable[object]]


Build = Callable[[AsyncExitStack, Path, ManualClock, ssl.SSLContext | None],
                 Awaitable[Subject]]


async def _slack(stack: AsyncExitStack, _tmp: Path, clock: ManualClock,
                 tls: ssl.SSLContext | None) -> Subject:
    fake = await stack.enter_async_context(FakeSlack(token=SLACK_TOKEN, ssl_context=tls))
    client = slack.Client(SLACK_TOKEN, fake.api_url, timeout_s=TIMEOUT_S, clock=clock)
    return Subject(fake.faults, SLACK_TOKEN, lambda: client.post_approval("C1", VIEW))


async def _pagerduty(stack: AsyncExitStack, tmp: Path, clock: ManualClock,
                     tls: ssl.SSLContext | None, *, events: bool) -> Subject:
    # The PagerDuty stand-in is always TLS; "untrusted" means the client lacks its CA.
    fake = await stack.enter_async_context(FakePagerDuty(
        token=PD_TOKEN, routing_key=ROUTING_KEY, ca_file=tmp / "pd-ca.pem"))
    client = pagerduty.Client(
        api_token=PD_TOKEN, from_email="t2g@example.com", api_url=fake.api_url,
        events_url=fake.events_url, tier2_service_id=None if events else "PT2SVC1",
        tier2_routing_key=ROUTING_KEY, ca_file=None if tls else fake.ca_file,
        timeout_s=TIMEOUT_S, clock=clock)
    stack.push_async_callback(client.close)
    request = PageRequest("esc-1", "tier2gate-esc-1", "Checkout down", "details")
    return Subject(fake.faults, ROUTING_KEY if events else PD_TOKEN,
                   lambda: client.page(request))


async def _pagerduty_rest(stack: AsyncExitStack, tmp: Path, clock: ManualClock,
                          tls: ssl.SSLContext | None) -> Subject:
    return await _pagerduty(stack, tmp, clock, tls, events=False)


async def _pagerduty_events(stack: AsyncExitStack, tmp: Path, clock: ManualClock,
                            tls: ssl.SSLContext | None) -> Subject:
    return await _pagerduty(stack, tmp, clock, tls, events=True)


async def _incident_io(stack: AsyncExitStack, _tmp: Path, clock: ManualClock,
                       tls: ssl.SSLContext | None) -> Subject:
    fake = await stack.enter_async_context(FakeIncidentIo(token=INC_TOKEN, ssl_context=tls))
    fake.incidents[INCIDENT["id"]] = INCIDENT
    client = incident_io.Client(api_token=INC_TOKEN, api_url=fake.api_url,
                                timeout_s=TIMEOUT_S, clock=clock)
    stack.push_async_callback(client.close)
    return Subject(fake.faults, INC_TOKEN, lambda: client.fetch_incident(INCIDENT["id"]))


async def _tracker(stack: AsyncExitStack, clock: ManualClock, tls: ssl.SSLContext | None,
                   kind: str) -> Subject:
    fake: FakeGitLab | FakeGitHub | FakeJira
    if kind == "gitlab":
        fake, token, secret, project = FakeGitLab(GITLAB_TOKEN), GITLAB_TOKEN, GITLAB_TOKEN, \
            "ops/retros"
    elif kind == "github":
        fake, token, secret, project = FakeGitHub(GITHUB_TOKEN), GITHUB_TOKEN, GITHUB_TOKEN, \
            "acme/ops"
    else:
        fake, token, secret, project = (FakeJira(JIRA_TOKEN, email=JIRA_EMAIL),
                                        f"{JIRA_EMAIL}:{JIRA_TOKEN}", JIRA_TOKEN, "OPS")
    await fake.start(ssl_context=tls)
    stack.push_async_callback(fake.close)
    clients: dict[str, type[gitlab.Client | github.Client | jira.Client]] = {
        "gitlab": gitlab.Client, "github": github.Client, "jira": jira.Client}
    made = clients[kind]
    client = made(fake.url, token, project, timeout_s=TIMEOUT_S, clock=clock)
    stack.callback(client.close)
    if tls is None:
        await client.find_by_marker("tier2gate-warm-up")  # Jira connects on first use
    return Subject(fake.plan, secret, lambda: client.create(DRAFT))


async def _gitlab(stack: AsyncExitStack, _tmp: Path, clock: ManualClock,
                  tls: ssl.SSLContext | None) -> Subject:
    return await _tracker(stack, clock, tls, "gitlab")


async def _github(stack: AsyncExitStack, _tmp: Path, clock: ManualClock,
                  tls: ssl.SSLContext | None) -> Subject:
    return await _tracker(stack, clock, tls, "github")


async def _jira(stack: AsyncExitStack, _tmp: Path, clock: ManualClock,
                tls: ssl.SSLContext | None) -> Subject:
    return await _tracker(stack, clock, tls, "jira")


DESK_TOKEN = "deskCONFORMtok3n88"


async def _zendesk(stack: AsyncExitStack, _tmp: Path, clock: ManualClock,
                   tls: ssl.SSLContext | None) -> Subject:
    fake = FakeZendesk(JIRA_EMAIL, DESK_TOKEN)
    await fake.start(ssl_context=tls)
    stack.push_async_callback(fake.close)
    fake.add_ticket("42")
    client = zendesk.Client(fake.url, JIRA_EMAIL, DESK_TOKEN, timeout_s=TIMEOUT_S, clock=clock)
    stack.callback(client.close)
    return Subject(fake.faults, DESK_TOKEN,
                   lambda: client.add_note("42", "Approved.", "tier2gate:esc-1:approved"))


async def _jsm(stack: AsyncExitStack, _tmp: Path, clock: ManualClock,
               tls: ssl.SSLContext | None) -> Subject:
    fake = FakeJsm(JIRA_EMAIL, DESK_TOKEN)
    await fake.start(ssl_context=tls)
    stack.push_async_callback(fake.close)
    fake.add_ticket("SD-1")
    client = jsm.Client(fake.url, JIRA_EMAIL, DESK_TOKEN, timeout_s=TIMEOUT_S, clock=clock)
    stack.callback(client.close)
    return Subject(fake.faults, DESK_TOKEN,
                   lambda: client.add_note("SD-1", "Approved.", "tier2gate:esc-1:approved"))


SUBJECTS: dict[str, Build] = {
    "slack": _slack, "pagerduty-rest": _pagerduty_rest, "pagerduty-events": _pagerduty_events,
    "incident.io": _incident_io, "gitlab": _gitlab, "github": _github, "jira": _jira,
    "zendesk": _zendesk, "jsm": _jsm,
}
EVERY_ADAPTER = pytest.mark.parametrize("adapter", SUBJECTS)


@asynccontextmanager
async def subject(adapter: str, tmp_path: Path, tls: ssl.SSLContext | None = None
                  ) -> AsyncIterator[Subject]:
    async with AsyncExitStack() as stack:
        yield await SUBJECTS[adapter](stack, tmp_path, ManualClock(START), tls)


async def failure(made: Subject, fault: Fault) -> Retry | Permanent:
    """Run the operation with `fault` on its next request; the error it raised, checked for
    the secret in its whole printable chain."""
    made.faults.add(fault)
    with pytest.raises((Retry, Permanent)) as caught:
        await made.call()
    made.faults.clear()
    printed = "".join(traceback.format_exception(caught.value))
    assert made.secret not in printed, printed
    error = caught.value
    assert isinstance(error, Retry | Permanent)
    return error


def echo(status: int, secret: str) -> Fault:
    """A vendor error that echoes the secret back, in each vendor's error fields at once."""
    words = f"token {secret} rejected"
    return Fault(status=status, body=json.dumps({
        "message": words, "errorMessages": [words], "error": {"message": words}}))


@EVERY_ADAPTER
@pytest.mark.parametrize(("status", "kind"), [
    *[(s, Permanent) for s in (400, 401, 403, 404, 409, 422)],
    *[(s, Retry) for s in (408, 425, 429, 500, 502, 503, 504)],
])
async def test_every_status_class(adapter: str, tmp_path: Path, status: int,
                                  kind: type[Exception]) -> None:
    async with subject(adapter, tmp_path) as made:
        caught = await failure(made, echo(status, made.secret))
    assert type(caught) is kind, caught
    assert f"HTTP {status}" in str(caught)


@EVERY_ADAPTER
@pytest.mark.parametrize(("retry_after", "wait_s"), [
    ("7", 7.0),
    (format_datetime(to_datetime(START + 30), usegmt=True), 30.0),  # against the injected clock
])
async def test_429_honours_retry_after_in_seconds_and_as_a_date(
        adapter: str, tmp_path: Path, retry_after: str, wait_s: float) -> None:
    async with subject(adapter, tmp_path) as made:
        caught = await failure(made, Fault(status=429, retry_after=retry_after))
    assert isinstance(caught, Retry) and caught.after_s == wait_s


@EVERY_ADAPTER
async def test_a_hang_past_the_timeout_is_retried(adapter: str, tmp_path: Path) -> None:
    async with subject(adapter, tmp_path) as made:
        caught = await failure(made, Fault(delay_s=2.5))
    assert isinstance(caught, Retry) and "no answer in time" in str(caught)


@EVERY_ADAPTER
async def test_a_reset_connection_is_retried(adapter: str, tmp_path: Path) -> None:
    async with subject(adapter, tmp_path) as made:
        # two: aiohttp resends an idempotent GET once by itself (RFC 9112 9.3.1)
        made.faults.add(Fault(reset=True))
        caught = await failure(made, Fault(reset=True))
    assert isinstance(caught, Retry) and "connection failed" in str(caught)


@pytest.fixture(scope="module")
def untrusted_tls() -> ssl.SSLContext:
    """A server certificate from a CA that the client was not given."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    return context


@EVERY_ADAPTER
async def test_an_untrusted_certificate_is_permanent_and_names_the_setting(
        adapter: str, tmp_path: Path, untrusted_tls: ssl.SSLContext) -> None:
    async with subject(adapter, tmp_path, tls=untrusted_tls) as made:
        with pytest.raises(Permanent, match=r"TLS certificate not trusted.*tls\.ca_file"):
            await made.call()


@pytest.mark.parametrize(("code", "kind"), [
    *[(c, Retry) for c in ("ratelimited", "internal_error", "fatal_error",
                           "service_unavailable", "request_timeout")],
    *[(c, Permanent) for c in ("not_in_channel", "channel_not_found", "is_archived",
                               "restricted_action", "missing_scope", "invalid_auth",
                               "msg_too_long", "invalid_blocks")],
])
async def test_slack_ok_false_bodies_are_classified_and_carry_the_code(
        tmp_path: Path, code: str, kind: type[Exception]) -> None:
    async with AsyncExitStack() as stack:
        fake = await stack.enter_async_context(FakeSlack(token=SLACK_TOKEN))
        client = slack.Client(SLACK_TOKEN, fake.api_url, clock=ManualClock(START))
        fake.fail("chat.postMessage", code)
        with pytest.raises(kind) as caught:
            await client.post_approval("C1", VIEW)
    assert isinstance(caught.value, Retry | Permanent)
    assert caught.value.code == code and code in str(caught.value)


async def test_an_expired_trigger_id_on_views_open_carries_its_code(tmp_path: Path) -> None:
    async with FakeSlack(token=SLACK_TOKEN) as fake:
        fake.fail("views.open", "expired_trigger_id")
        client = slack.Client(SLACK_TOKEN, fake.api_url, clock=ManualClock(START))
        with pytest.raises(Permanent) as caught:
            await client.ask_decline_reason("1.2.3", "esc-1", MessageRef("C1", "1.2"))
    assert caught.value.code == "expired_trigger_id"
