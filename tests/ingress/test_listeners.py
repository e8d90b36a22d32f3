"""The private read side: what each listener serves, who may use the admin one, and the
headers every answer carries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from daemon.admin_auth import AdminAccess, is_loopback
from daemon.settings import AdminSettings, ConfigError, load_settings
from tests.harness import AppClient, base_settings, running

READ_SIDE = ("/", "/api/escalations", "/metrics")
TOKEN = "admin-token-RECOGNISABLE-0123456789"


@asynccontextmanager
async def clients(tmp_path: Path, **admin: Any) -> AsyncIterator[tuple[AppClient, AppClient]]:
    async with running(tmp_path, base_settings(admin=admin) if admin else None) as harness:
        yield harness.client, harness.admin


@pytest.mark.parametrize("path", READ_SIDE)
async def test_the_read_side_is_not_on_the_public_listener(tmp_path: Path, path: str) -> None:
    async with clients(tmp_path) as (public, admin):
        assert (await public.get(path)).status == 404
        assert (await admin.get(path)).status == 200


async def test_the_public_listener_keeps_the_webhooks_and_bare_probes(tmp_path: Path) -> None:
    async with clients(tmp_path) as (public, admin):
        assert (await public.get("/healthz")).status == 200
        ready = await public.get("/readyz")
        assert (ready.status, await ready.json()) == (200, {"status": "ready"})
        for path in ("/webhooks/pagerduty", "/webhooks/incident-io", "/slack/interactions",
                     "/slack/commands"):
            assert (await public.post(path, data=b"{}")).status != 404, path
            assert (await admin.post(path, data=b"{}")).status in (404, 405), path


async def test_a_non_loopback_admin_listener_without_credentials_answers_401(
        tmp_path: Path) -> None:
    async with clients(tmp_path, host="0.0.0.0", token=TOKEN) as (_public, admin):
        for path in (*READ_SIDE, "/readyz", "/healthz"):
            refused = await admin.get(path)
            assert refused.status == 401, path
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")
            assert TOKEN not in await refused.text()
        wrong = await admin.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401
        for path in READ_SIDE:
            allowed = await admin.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert allowed.status == 200, path


async def test_the_named_proxy_identity_header_opens_the_admin_listener(
        tmp_path: Path) -> None:
    async with clients(tmp_path, host="10.0.0.5",
                       proxy_user_header="X-Forwarded-User") as (_public, admin):
        assert (await admin.get("/")).status == 401
        assert (await admin.get("/", headers={"X-Forwarded-User": ""})).status == 401
        assert (await admin.get("/", headers={"X-Auth-Request-User": "mallory"})).status == 401
        assert (await admin.get("/", headers={"X-Forwarded-User": "smoc@example.com"})
                ).status == 200


async def test_with_neither_token_nor_proxy_a_non_loopback_admin_refuses_everything(
        tmp_path: Path) -> None:
    async with clients(tmp_path, host="0.0.0.0") as (_public, admin):
        assert (await admin.get("/")).status == 401
        assert (await admin.get("/", headers={"Authorization": "Bearer "})).status == 401


@pytest.mark.parametrize(("settings", "said"), [
    (AdminSettings(), "loopback: no credentials needed"),
    (AdminSettings(host="::1"), "loopback: no credentials needed"),
    (AdminSettings(host="0.0.0.0", token=TOKEN),
     "Authorization: Bearer <admin.token>"),
    (AdminSettings(host="admin.internal", proxy_user_header="X-Forwarded-User"),
     "the X-Forwarded-User header of the authenticating proxy"),
    (AdminSettings(host="0.0.0.0"),
     "no admin.token and no admin.proxy_user_header: every request is refused"),
])
def test_startup_says_how_the_admin_listener_is_guarded(settings: AdminSettings, said: str
                                                        ) -> None:
    described = AdminAccess.from_settings(settings).describe()
    assert described == said
    assert TOKEN not in described


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("", False), ("::", False), ("10.0.0.5", False),
    ("localhost.evil.example", False), ("admin.internal", False),
])
def test_only_addresses_no_other_machine_reaches_count_as_loopback(host: str, loopback: bool
                                                                   ) -> None:
    assert is_loopback(host) is loopback


def test_a_short_admin_token_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no config/tier2gate.yaml here
    monkeypatch.delenv("TIER2GATE_CONFIG", raising=False)
    monkeypatch.setenv("TIER2GATE_ADMIN__TOKEN", "short")
    with pytest.raises(ConfigError, match=r"TIER2GATE_ADMIN__TOKEN: .*at least 16") as error:
        load_settings()
    assert "short" not in str(error.value)


@pytest.mark.parametrize("listener", ["public", "admin"])
@pytest.mark.parametrize("path", ["/", "/healthz", "/nowhere"])
async def test_every_answer_forbids_framing_and_sniffing_and_hides_the_version(
        tmp_path: Path, listener: str, path: str) -> None:
    async with clients(tmp_path) as (public, admin):
        response = await (public if listener == "public" else admin).get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "default-src 'none'" in csp
        assert "script-src" not in csp  # no script may run at all
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Server"] == "tier2gate"
        assert "aiohttp" not in str(response.headers).lower()


async def test_a_cross_site_post_cannot_start_a_drill_on_the_loopback_admin_listener(
        tmp_path: Path) -> None:
    """Through `kubectl port-forward` / `ssh -L` the dashboard is the operator's own
    127.0.0.1:8081, with no credentials. A web page the operator has open may send a simple
    cross-site POST there (no CORS preflight): it must not start a drill (a DRILL request to
    the real SMOC)."""
    async with running(tmp_path) as h:
        response = await h.admin.post("/api/drills", headers={
            "Origin": "https://attacker.example", "Sec-Fetch-Site": "cross-site",
            "Content-Type": "text/plain"}, data=b"")
        assert response.status in (401, 403), response.status
        assert "drill" not in await h.work()


async def test_a_rebound_host_name_cannot_read_the_loopback_admin_listener(tmp_path: Path
                                                                         ) -> None:
    """DNS rebinding: attacker.example resolved to 127.0.0.1 would let the operator's browser
    read http://attacker.example:8081/api/escalations same-origin; only loopback host names
    are answered."""
    async with running(tmp_path) as h:
        response = await h.admin.get("/api/escalations",
                                     headers={"Host": "attacker.example:8081"})
        assert response.status in (400, 403, 421), response.status


async def test_the_operator_on_a_loopback_name_reads_and_a_same_origin_post_works(
        tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        for host in ("localhost:8081", "127.0.0.1:8081", "[::1]:8081"):
            assert (await h.admin.get("/healthz", headers={"Host": host})).status == 200
        same = await h.admin.post("/api/drills", json={}, headers={
            "Origin": "http://localhost:8081", "Host": "localhost:8081",
            "Sec-Fetch-Site": "same-origin"})
        assert same.status not in (403, 421), same.status
