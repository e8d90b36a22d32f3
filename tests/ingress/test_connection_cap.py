"""The cap on concurrent connections per listener (`daemon.connections`), real sockets.

The memory figure (1,000 greedy connections against the default cap) is a benchmark
(`bench/run --only slow`); here: connections over the cap are closed at once and counted,
logged once, an honest delivery gets through once others close, and the count goes back to 0.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from structlog.testing import capture_logs

from daemon.app import build_admin_app, build_app
from daemon.appkeys import METRICS
from daemon.clock import ManualClock
from daemon.connections import ConnectionCap
from daemon.ingress.signatures import sign_pagerduty
from daemon.listeners import Listeners
from daemon.metrics import Metrics
from daemon.store import Store
from daemon.store.sqlite import SqliteBackend
from tests.harness import HARNESS_START, PD_SECRET, base_settings, recent_pagerduty

CAP = 4
ADMIN_CAP = 2
EXTRA = 3
REFUSED_WITHIN_S = 1.0  # a refusal is immediate; the margin is for a busy shared CI machine
IDLE_S = 20.0  # admitted connections must stay open for the whole test


@asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[tuple[Listeners, Metrics]]:
    settings = base_settings(
        http={"host": "127.0.0.1", "port": 0, "idle_timeout_s": IDLE_S,
              "max_connections": CAP},
        admin={"host": "127.0.0.1", "port": 0, "max_connections": ADMIN_CAP})
    store = Store(SqliteBackend(tmp_path / "t.db", exclusive=True), ManualClock(HARNESS_START))
    public = build_app(settings, store)
    listeners = Listeners(public, build_admin_app(public))
    await listeners.start()
    try:
        yield listeners, public[METRICS]
    finally:
        await listeners.stop()


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


async def until(condition: object, limit_s: float = 5.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def closed_within(reader: asyncio.StreamReader, limit_s: float) -> bytes:
    """What the server said before it closed the connection (b"" for nothing, or a reset)."""
    try:
        return await asyncio.wait_for(reader.read(), limit_s)
    except ConnectionError:
        return b""


def signed_delivery() -> tuple[bytes, dict[str, str]]:
    body = json.dumps(recent_pagerduty("pagerduty/zulip_triggered_v3.json")).encode()
    return body, {"Content-Type": "application/json", "X-Webhook-Id": "w-cap",
                  "X-PagerDuty-Signature": sign_pagerduty(body, PD_SECRET)}


async def test_connections_over_the_cap_are_closed_at_once_until_others_close(
        tmp_path: Path) -> None:
    async with served(tmp_path) as (listeners, metrics):
        site = listeners.sites["public"]
        address = _address(listeners.public_url)
        # CAP greedy clients: a request head and part of a body, then nothing.
        held = [await asyncio.open_connection(*address) for _ in range(CAP)]
        for _, writer in held:
            writer.write(b"POST /webhooks/pagerduty HTTP/1.1\r\nHost: t\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        await until(lambda: site.cap.open == CAP)

        with capture_logs() as logs:
            started = time.monotonic()
            extra = [await asyncio.open_connection(*address) for _ in range(EXTRA)]
            for _, writer in extra:
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            said = await asyncio.gather(*(closed_within(reader, REFUSED_WITHIN_S)
                                          for reader, _ in extra))
            assert said == [b""] * EXTRA  # closed unread, no answer
            assert time.monotonic() - started < REFUSED_WITHIN_S
            # A signed delivery while full is refused too (the vendor retries).
            body, headers = signed_delivery()
            async with aiohttp.ClientSession() as session:
                with pytest.raises(aiohttp.ClientError):
                    await session.post(listeners.public_url + "/webhooks/pagerduty",
                                       data=body, headers=headers)
        refused = EXTRA + 1
        assert site.cap.refused == refused
        assert site.cap.open == CAP
        # One warning for the burst, not one per connection.
        warnings = [e for e in logs if e["event"] == "listener.connections_refused"]
        assert len(warnings) == 1
        assert warnings[0]["listener"] == "public"
        assert warnings[0]["max_connections"] == CAP

        # One greedy client goes away: the retried delivery is served.
        held[0][1].close()
        await until(lambda: site.cap.open == CAP - 1)
        async with aiohttp.ClientSession() as session, session.post(
                listeners.public_url + "/webhooks/pagerduty", data=body,
                headers=headers) as answer:
            assert answer.status == 202
        await until(lambda: site.cap.open == CAP - 1)  # the client closed its connection

        # Everyone leaves (a reset, too): the count goes back to 0, nothing leaks.
        for _, writer in held[1:-1]:
            writer.close()
        held[-1][1].transport.abort()
        await until(lambda: site.cap.open == 0)
        for _, writer in extra:
            writer.close()
        assert site.cap.open == 0
        scrape = metrics.render().decode()
        assert 'tier2gate_connections_open{listener="public"} 0.0' in scrape
        assert f'tier2gate_connections_refused_total{{listener="public"}} {refused}.0' in scrape


async def test_the_admin_listener_has_its_own_smaller_cap(tmp_path: Path) -> None:
    async with served(tmp_path) as (listeners, _metrics):
        admin, public = listeners.sites["admin"], listeners.sites["public"]
        address = _address(listeners.admin_url)
        held = [await asyncio.open_connection(*address) for _ in range(ADMIN_CAP)]
        await until(lambda: admin.cap.open == ADMIN_CAP)
        reader, writer = await asyncio.open_connection(*address)
        assert await closed_within(reader, REFUSED_WITHIN_S) == b""
        assert admin.cap.refused == 1
        # The public listener is not affected.
        async with aiohttp.ClientSession() as session, session.get(
                listeners.public_url + "/healthz") as answer:
            assert answer.status == 200
        assert public.cap.refused == 0
        for _, held_writer in [*held, (reader, writer)]:
            held_writer.close()
        await until(lambda: admin.cap.open == 0 and public.cap.open == 0)


async def test_refusals_are_logged_at_most_once_per_interval() -> None:
    refused: list[int] = []
    cap = ConnectionCap(lambda: asyncio.Protocol(), 0, listener="public",
                        on_refused=lambda: refused.append(1), log_interval_s=3600)

    class Transport(asyncio.Transport):
        aborted = False

        def abort(self) -> None:
            self.aborted = True

    with capture_logs() as logs:
        for _ in range(1000):
            transport = Transport()
            protocol = cap()
            protocol.connection_made(transport)
            assert transport.aborted
            protocol.connection_lost(None)
    assert len(refused) == 1000
    assert cap.open == 0
    assert [e["refused"] for e in logs if e["event"] == "listener.connections_refused"] == [1]
