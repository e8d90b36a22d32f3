"""The incident.io API client against the fake over real HTTP: the incident, and every failure."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from daemon.integrations.incident_io import Client
from daemon.settings import ConfigError, IncidentIoSettings, TlsSettings
from daemon.standins.faults import Fault
from daemon.standins.incident_io import FakeIncidentIo
from daemon.workers.retry import Permanent, Retry

PAYLOADS = Path(__file__).parents[1] / "payloads" / "incident_io"
TOKEN = "inc_l1ve_T0kenX7pQ"
EXAMPLE = json.loads((PAYLOADS / "openapi_example_public_incident_created_v2.json").read_text())
INCIDENT: dict[str, Any] = EXAMPLE["public_incident.incident_created_v2"]


@pytest.fixture
async def fake() -> AsyncIterator[FakeIncidentIo]:
    async with FakeIncidentIo(token=TOKEN) as server:
        server.incidents[INCIDENT["id"]] = INCIDENT
        yield server


@pytest.fixture
async def client(fake: FakeIncidentIo) -> AsyncIterator[Client]:
    made = Client(api_token=TOKEN, api_url=fake.api_url, timeout_s=0.5)
    yield made
    await made.close()


def assert_secret_free(exc: BaseException) -> None:
    assert TOKEN not in f"{exc} {exc!r}" and TOKEN[-4:] not in f"{exc} {exc!r}"


async def test_fetch_incident_returns_the_incident_object(fake: FakeIncidentIo,
                                                          client: Client) -> None:
    assert await client.fetch_incident(INCIDENT["id"]) == INCIDENT
    [(path, headers)] = fake.requests
    assert path == f"/v2/incidents/{INCIDENT['id']}"
    assert headers["Authorization"] == f"Bearer {TOKEN}"


async def test_an_unknown_incident_is_permanent(fake: FakeIncidentIo, client: Client) -> None:
    with pytest.raises(Permanent, match="404"):
        await client.fetch_incident("01NOPE")


async def test_the_id_cannot_escape_the_path(fake: FakeIncidentIo, client: Client) -> None:
    with pytest.raises(Permanent, match="404"):
        await client.fetch_incident("../../v2/incidents/x")
    [(path, _)] = fake.requests
    assert path == "/v2/incidents/../../v2/incidents/x"  # one encoded segment, not a traversal


async def test_a_wrong_token_is_permanent_and_secret_free(fake: FakeIncidentIo) -> None:
    wrong = Client(api_token="wr0ngT0kenAbCdEfG", api_url=fake.api_url)
    try:
        with pytest.raises(Permanent, match="401") as caught:
            await wrong.fetch_incident(INCIDENT["id"])
    finally:
        await wrong.close()
    assert "wr0ngT0kenAbCdEfG" not in str(caught.value)


@pytest.mark.parametrize(("status", "kind"), [
    (400, Permanent), (401, Permanent), (403, Permanent), (404, Permanent),
    (500, Retry), (502, Retry), (503, Retry),
])
async def test_status_is_classified(fake: FakeIncidentIo, client: Client, status: int,
                                    kind: type[Exception]) -> None:
    fake.faults.add(Fault(status=status, body=json.dumps({"echo": TOKEN})))
    with pytest.raises(kind, match=str(status)) as caught:
        await client.fetch_incident(INCIDENT["id"])
    assert_secret_free(caught.value)


async def test_429_comes_back_at_once_with_retry_after(fake: FakeIncidentIo,
                                                       client: Client) -> None:
    fake.faults.add(Fault(status=429, retry_after_s=7))
    started = time.monotonic()
    with pytest.raises(Retry) as caught:
        await client.fetch_incident(INCIDENT["id"])
    assert time.monotonic() - started < 1.0
    assert caught.value.after_s == 7
    assert_secret_free(caught.value)


async def test_a_hang_past_the_timeout_is_retry(fake: FakeIncidentIo, client: Client) -> None:
    fake.faults.add(Fault(delay_s=3.0))
    started = time.monotonic()
    with pytest.raises(Retry, match="no answer in time") as caught:
        await client.fetch_incident(INCIDENT["id"])
    assert time.monotonic() - started < 2.0
    assert_secret_free(caught.value)


async def test_a_connection_reset_is_retry(fake: FakeIncidentIo, client: Client) -> None:
    # aiohttp itself resends an idempotent request once when the connection drops (RFC 9112
    # section 9.3.1), so it takes two resets in a row to reach us.
    fake.faults.add(Fault(reset=True), times=2)
    with pytest.raises(Retry, match="connection failed") as caught:
        await client.fetch_incident(INCIDENT["id"])
    assert len(fake.requests) == 2
    assert_secret_free(caught.value)


async def test_a_single_reset_is_absorbed_by_aiohttps_one_resend(fake: FakeIncidentIo,
                                                                 client: Client) -> None:
    fake.faults.add(Fault(reset=True))
    assert await client.fetch_incident(INCIDENT["id"]) == INCIDENT
    assert len(fake.requests) == 2


@pytest.mark.parametrize("body", ["not json", "{}", '{"incident": "x"}'])
async def test_an_unreadable_200_is_retry(fake: FakeIncidentIo, client: Client,
                                          body: str) -> None:
    fake.faults.add(Fault(status=200, body=body))
    with pytest.raises(Retry, match="200"):
        await client.fetch_incident(INCIDENT["id"])


async def test_from_settings_uses_the_secret(fake: FakeIncidentIo) -> None:
    client = Client.from_settings(
        IncidentIoSettings(api_token=SecretStr(TOKEN), api_url=fake.api_url), TlsSettings()
    )
    try:
        assert (await client.fetch_incident(INCIDENT["id"]))["id"] == INCIDENT["id"]
    finally:
        await client.close()


def test_from_settings_without_a_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="api_token"):
        Client.from_settings(IncidentIoSettings(), TlsSettings())


def test_an_unreadable_ca_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tls\.ca_file"):
        Client(api_token=TOKEN, ca_file=tmp_path / "missing.pem")
