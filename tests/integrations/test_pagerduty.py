"""The real PagerDuty client (python-pagerduty in threads) against the HTTPS fake.

Covers who the SMOC is, paging exactly once per key on both paths, and the conformance checks
every adapter passes: classification of each status, Retry-After, hangs, resets, TLS, and no
secret in any error text.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from daemon.clock import ManualClock
from daemon.integrations.base import PageRequest, PageResult
from daemon.integrations.pagerduty import ZONE_CACHE_S, Client
from daemon.settings import ConfigError, PagerDutySettings, TlsSettings
from daemon.standins.faults import Fault
from daemon.standins.pagerduty import SAMPLES as STANDIN_SAMPLES
from daemon.standins.pagerduty import FakePagerDuty
from daemon.workers.retry import Permanent, Retry

SAMPLES = Path(__file__).parents[1] / "payloads" / "pagerduty" / "rest_api"
TOKEN = "u+s3cr3tT0kenQZ9x"
ROUTING_KEY = "R0ut1ngKeyW7vq2Lm4Np8Rs6Tt0Uu3Vv9"
FROM = "tier2gate@example.com"
SCHEDULE = "PSMOC01"
SERVICE = "PTIER02"
REQUEST = PageRequest(
    escalation_id="esc-7f3k", key="tier2gate-esc-7f3k", title="ACME: checkout down (INC-42)",
    details="Criteria: revenue impact. Approved by @smoc at 03:12 UTC.",
    links={"Incident": "https://acme.pagerduty.com/incidents/Q1", "Runbook": "https://rb/x"},
)

Make = Callable[..., Client]
Operation = Callable[[Make], Awaitable[object]]


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[FakePagerDuty]:
    async with FakePagerDuty(token=TOKEN, routing_key=ROUTING_KEY,
                             ca_file=tmp_path / "pagerduty-ca.pem") as server:
        server.set_oncall(SCHEDULE, "PUSER01", "smoc@example.com")
        yield server


@pytest.fixture
async def make(fake: FakePagerDuty) -> AsyncIterator[Make]:
    made: list[Client] = []

    def build(**overrides: Any) -> Client:
        args: dict[str, Any] = {
            "api_token": TOKEN, "from_email": FROM, "api_url": fake.api_url,
            "events_url": fake.events_url, "smoc_schedule_id": SCHEDULE,
            "tier2_service_id": SERVICE, "tier2_routing_key": ROUTING_KEY,
            "ca_file": fake.ca_file, "timeout_s": 5.0,
        } | overrides
        client = Client(**args)
        made.append(client)
        return client

    yield build
    for client in made:
        await client.close()


def assert_secret_free(exc: BaseException) -> None:
    text = f"{exc} {exc!r} {getattr(exc, 'reason', '')}"
    for secret in (TOKEN, ROUTING_KEY, TOKEN[-4:], ROUTING_KEY[-4:]):
        assert secret not in text


# --- the SMOC --------------------------------------------------------------------------------

async def test_smoc_email_from_the_published_samples(fake: FakePagerDuty, make: Make) -> None:
    oncalls = json.loads((SAMPLES / "get_oncalls_200.json").read_text())
    user = json.loads((SAMPLES / "get_user_200.json").read_text())
    fake.set_oncalls_body(oncalls)
    # The two OpenAPI examples name different users (PT23IWX vs PXPGF42): serve the user
    # sample for the id the on-call sample references.
    fake.set_user_body("PT23IWX", user)
    client = make(smoc_schedule_id="PI7DH85")
    assert await client.smoc_email() == "125.greenholt.earline@graham.name"
    first, second = fake.requests
    assert (first.method, first.path) == ("GET", "/oncalls")
    assert sorted(first.query) == [("earliest", "true"), ("include[]", "users"),
                                   ("schedule_ids[]", "PI7DH85")]
    assert first.headers["Authorization"] == f"Token token={TOKEN}"
    assert (second.method, second.path) == ("GET", "/users/PT23IWX")


async def test_smoc_email_comes_from_the_included_user_in_one_call(
        fake: FakePagerDuty, make: Make) -> None:
    assert await make().smoc_email() == "smoc@example.com"
    assert [r.path for r in fake.requests] == ["/oncalls"]


async def test_smoc_email_takes_the_smoc_schedule_at_its_lowest_level(
        fake: FakePagerDuty, make: Make) -> None:
    def entry(schedule: str, level: int, email: str) -> dict[str, Any]:
        return {"user": {"id": email[:5], "type": "user", "email": email},
                "schedule": {"id": schedule, "type": "schedule_reference"},
                "escalation_level": level, "start": None, "end": None}

    fake.set_oncalls_body({"oncalls": [
        entry("POTHER1", 1, "other@example.com"),
        entry(SCHEDULE, 3, "third@example.com"),
        entry(SCHEDULE, 1, "first@example.com"),
        entry(SCHEDULE, 2, "second@example.com"),
    ], "limit": 25, "offset": 0, "more": False, "total": None})
    assert await make().smoc_email() == "first@example.com"


async def test_smoc_email_is_none_when_nobody_is_on_call(fake: FakePagerDuty,
                                                          make: Make) -> None:
    assert await make(smoc_schedule_id="PEMPTY1").smoc_email() is None
    assert len(fake.requests) == 1


async def test_smoc_email_is_none_without_a_schedule_and_asks_nothing(
        fake: FakePagerDuty, make: Make) -> None:
    assert await make(smoc_schedule_id=None).smoc_email() is None
    assert fake.requests == []


async def test_smoc_email_without_an_api_token_is_permanent(fake: FakePagerDuty,
                                                            make: Make) -> None:
    with pytest.raises(Permanent, match="api_token"):
        await make(api_token=None).smoc_email()


# --- paging ----------------------------------------------------------------------------------

async def test_page_creates_one_incident_with_the_key(fake: FakePagerDuty, make: Make) -> None:
    result = await make().page(REQUEST)
    [incident] = fake.pages
    assert result == PageResult(incident["id"], incident["html_url"], already_open=False)
    assert incident["incident_key"] == REQUEST.key and incident["status"] == "triggered"
    [sent] = fake.page_attempts
    assert sent == {"incident": {
        "type": "incident", "title": REQUEST.title,
        "service": {"id": SERVICE, "type": "service_reference"}, "urgency": "high",
        "incident_key": REQUEST.key,
        "body": {"type": "incident_body", "details": REQUEST.details},
    }}
    [post] = [r for r in fake.requests if r.method == "POST"]
    assert post.headers["From"] == FROM
    assert fake.alerts == []  # the REST path wins when both are configured


async def test_the_same_page_twice_is_one_incident_already_open(fake: FakePagerDuty,
                                                                make: Make) -> None:
    client = make()
    first = await client.page(REQUEST)
    again = await client.page(REQUEST)
    assert len(fake.pages) == 1 and len(fake.page_attempts) == 2
    assert again == PageResult(first.incident_id, first.url, already_open=True)


async def test_a_page_whose_answer_was_lost_is_found_on_retry(fake: FakePagerDuty,
                                                              make: Make) -> None:
    fake.faults.add(Fault(status=201, body="{}"))  # created, but the answer is unreadable
    client = make()
    fake.pages.append({"id": "Q999999", "html_url": "https://x/Q999999", "status": "triggered",
                       "incident_key": REQUEST.key, "service": {"id": SERVICE}})
    with pytest.raises(Retry, match="without a readable answer"):
        await client.page(REQUEST)
    assert await client.page(REQUEST) == PageResult("Q999999", "https://x/Q999999",
                                                    already_open=True)


async def test_a_resolved_incident_frees_the_key(fake: FakePagerDuty, make: Make) -> None:
    client = make()
    first = await client.page(REQUEST)
    fake.resolve(first.incident_id)
    second = await client.page(REQUEST)
    assert second.incident_id != first.incident_id and not second.already_open
    assert len(fake.pages) == 2


async def test_page_through_the_events_api_deduplicates_on_the_key(fake: FakePagerDuty,
                                                                   make: Make) -> None:
    client = make(tier2_service_id=None)
    assert await client.page(REQUEST) == PageResult(REQUEST.key)
    assert await client.page(REQUEST) == PageResult(REQUEST.key)
    [alert] = fake.alerts
    assert alert["dedup_key"] == REQUEST.key
    assert alert["payload"] == {
        "summary": REQUEST.title, "source": "tier2gate", "severity": "critical",
        "custom_details": {"details": REQUEST.details, "escalation_id": REQUEST.escalation_id},
    }
    assert alert["links"] == [{"href": "https://acme.pagerduty.com/incidents/Q1",
                               "text": "Incident"}, {"href": "https://rb/x", "text": "Runbook"}]
    assert len(fake.events) == 2 and fake.pages == []


async def test_page_with_nothing_to_page_is_permanent(fake: FakePagerDuty, make: Make) -> None:
    with pytest.raises(Permanent, match="no Tier 2 service or routing key configured"):
        await make(tier2_service_id=None, tier2_routing_key=None).page(REQUEST)
    assert fake.requests == []


async def test_page_without_a_from_email_is_permanent_before_asking(fake: FakePagerDuty,
                                                                    make: Make) -> None:
    with pytest.raises(Permanent, match="from_email"):
        await make(from_email=None).page(REQUEST)
    assert fake.requests == []


async def test_a_wrong_token_is_permanent_and_secret_free(fake: FakePagerDuty,
                                                          make: Make) -> None:
    wrong = "wr0ngT0kenAbCdEfG"
    with pytest.raises(Permanent, match="401") as caught:
        await make(api_token=wrong).page(REQUEST)
    assert wrong not in str(caught.value) and wrong[-4:] not in str(caught.value)
    assert fake.pages == []


# --- conformance: every operation, every failure ---------------------------------------------

async def _smoc(make: Make) -> object:
    return await make().smoc_email()


async def _incident(make: Make) -> object:
    return await make().page(REQUEST)


async def _event(make: Make) -> object:
    return await make(tier2_service_id=None).page(REQUEST)


OPERATIONS = pytest.mark.parametrize("operation", [_smoc, _incident, _event],
                                     ids=["oncalls", "incident", "event"])


@OPERATIONS
@pytest.mark.parametrize(("status", "kind"), [
    (400, Permanent), (401, Permanent), (403, Permanent), (404, Permanent),
    (500, Retry), (502, Retry), (503, Retry),
])
async def test_status_is_classified(fake: FakePagerDuty, make: Make, operation: Operation,
                                    status: int, kind: type[Exception]) -> None:
    echo = {"error": {"message": f"bad token {TOKEN}", "errors": [f"key {ROUTING_KEY}"]}}
    fake.faults.add(Fault(status=status, body=json.dumps(echo)))  # a server echoing secrets
    with pytest.raises(kind, match=str(status)) as caught:
        await operation(make)
    assert_secret_free(caught.value)
    assert fake.pages == [] and fake.alerts == []


@OPERATIONS
async def test_429_comes_back_at_once_with_retry_after(fake: FakePagerDuty, make: Make,
                                                       operation: Operation) -> None:
    fake.faults.add(Fault(status=429, retry_after_s=7))
    started = time.monotonic()
    with pytest.raises(Retry) as caught:
        await operation(make)
    assert time.monotonic() - started < 1.0  # the package alone would sleep 3 s, then forever
    assert caught.value.after_s == 7
    assert len(fake.requests) == 1
    assert_secret_free(caught.value)


async def test_429_without_retry_after_uses_ratelimit_reset(fake: FakePagerDuty,
                                                            make: Make) -> None:
    fake.rate_limit_next(reset_s=12)
    with pytest.raises(Retry) as caught:
        await make().smoc_email()
    assert caught.value.after_s == 12


@OPERATIONS
async def test_a_hang_past_the_timeout_is_retry(fake: FakePagerDuty, make: Make,
                                                operation: Operation) -> None:
    fake.faults.add(Fault(delay_s=3.0))
    started = time.monotonic()
    with pytest.raises(Retry, match="no answer in time") as caught:
        await operation(lambda **kw: make(**kw, timeout_s=0.5))
    assert time.monotonic() - started < 2.0
    assert_secret_free(caught.value)


@OPERATIONS
async def test_a_connection_reset_is_retry(fake: FakePagerDuty, make: Make,
                                           operation: Operation) -> None:
    fake.faults.add(Fault(reset=True))
    with pytest.raises(Retry, match="connection failed") as caught:
        await operation(make)
    assert len(fake.requests) == 1  # not retried inside the package
    assert_secret_free(caught.value)


@OPERATIONS
async def test_tls_is_refused_without_the_ca_file(fake: FakePagerDuty, make: Make,
                                                  operation: Operation) -> None:
    with pytest.raises(Permanent, match=r"TLS certificate not trusted.*tls\.ca_file") as caught:
        await operation(lambda **kw: make(**kw, ca_file=None))
    assert fake.requests == []
    assert_secret_free(caught.value)


# --- configuration ---------------------------------------------------------------------------

def test_a_plain_http_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="https://"):
        Client(api_token=TOKEN, from_email=FROM, api_url="http://127.0.0.1:9")


def test_an_unreadable_ca_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tls\.ca_file"):
        Client(api_token=TOKEN, from_email=FROM, ca_file=tmp_path / "missing.pem")


async def test_from_settings_uses_the_secrets_and_the_ca_file(fake: FakePagerDuty) -> None:
    client = Client.from_settings(
        PagerDutySettings(api_token=SecretStr(TOKEN), from_email=FROM, api_url=fake.api_url,
                          events_url=fake.events_url, smoc_schedule_id=SCHEDULE,
                          tier2_routing_key=SecretStr(ROUTING_KEY)),
        TlsSettings(ca_file=fake.ca_file),
    )
    try:
        assert await client.smoc_email() == "smoc@example.com"
        assert await client.page(REQUEST) == PageResult(REQUEST.key)
    finally:
        await client.close()


# --- responders: time zones and the Tier 2 engineer on call ------------------------------------

async def test_a_time_zone_is_read_once_and_a_failure_is_not_remembered(
        fake: FakePagerDuty, make: Make) -> None:
    fake.set_user("PTINA", "tina@example.com", time_zone="America/Los_Angeles")
    clock = ManualClock(1_800_000_000.0)
    client = make(clock=clock)
    fake.faults.add(Fault(status=503))
    with pytest.raises(Retry):
        await client.user_time_zone("PTINA")
    assert await client.user_time_zone("PTINA") == "America/Los_Angeles"
    assert await client.user_time_zone("PTINA") == "America/Los_Angeles"
    # the failure and one answer went out; the third call was answered from memory
    assert [r.path for r in fake.requests].count("/users/PTINA") == 2
    clock.advance(ZONE_CACHE_S + 1)
    await client.user_time_zone("PTINA")
    assert [r.path for r in fake.requests].count("/users/PTINA") == 3


async def test_the_published_user_sample_gives_its_time_zone(
        fake: FakePagerDuty, make: Make) -> None:
    fake.set_user_body("PXPGF42", json.loads((STANDIN_SAMPLES / "get_user_200.json").read_text()))
    assert await make().user_time_zone("PXPGF42") == "America/Lima"


async def test_the_tier2_engineer_on_call(fake: FakePagerDuty, make: Make) -> None:
    fake.set_oncall("PT2SCHED", "PTINA", "tina@example.com", time_zone="Europe/Berlin")
    assert await make(tier2_schedule_id="PT2SCHED").tier2_on_call() == ("PTINA", "tina")
    assert await make().tier2_on_call() is None  # no schedule configured: nobody to name
    assert await make(tier2_schedule_id="PEMPTY").tier2_on_call() is None
