"""Constants and helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import pytest

from daemon.domain.effects import DirectNote, Effect, TellUser, ThreadNote, payload_json
from daemon.markup import slack_mrkdwn
from daemon.store import Store

POSTGRES_URL = os.environ.get("TIER2GATE_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "") not in ("", "0", "false")
START = 1_795_000_000.0  # 2026-11-18T08:26:40Z, a Wednesday


def _postgres_reachable() -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
        await conn.close()

    try:
        # Its own thread and loop: callers may already be inside a running event loop.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, probe()).result()
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


_PG_PROBLEM: str | bool | None = False  # False = not probed yet


def postgres_or_skip() -> str:
    """The test PostgreSQL URL; skip with the reason when absent, but fail in CI."""
    global _PG_PROBLEM
    if _PG_PROBLEM is False:
        _PG_PROBLEM = _postgres_reachable()
    if _PG_PROBLEM:
        message = f"PostgreSQL at {POSTGRES_URL} is not reachable ({_PG_PROBLEM})"
        if IN_CI:
            pytest.fail(message + "; CI must run the PostgreSQL tests")
        pytest.skip(message + "; set TIER2GATE_TEST_POSTGRES_URL or start the server")
    return POSTGRES_URL



StoreFactory = Callable[[], Awaitable[Store]]


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    """Wait until `check()` is true; fail the test with a clear message if it never is."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.01)


def said(effect: Effect) -> str:
    """The chat text of a thread note, direct note or reply to a click, as Slack shows it."""
    assert isinstance(effect.payload, ThreadNote | DirectNote | TellUser), effect
    return slack_mrkdwn(effect.payload.text)


def stored(effect: Effect) -> dict[str, Any]:
    """An effect's payload as its job stores it."""
    return payload_json(effect.payload)
